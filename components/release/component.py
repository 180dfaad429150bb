"""Release, a Python function component in the Pusher's place: a blessed model goes to TF Serving's
push directory complete or not at all, with its other formats, model card and models.config.

Only a model the Evaluator blessed is released (for a span made from production feedback the
blessing includes beating the latest blessed model on the span's held-out fresh rows:
pipeline/blessing.py).
The version directory holds the SavedModel, the other formats each checked on the test split
(TFLite three ways, TFLite Micro's C source, ONNX: components/release/formats.py; one that fails
is left out and the record says why), `model_card.md` (with its accuracy under handwriting
distortions and under attack: components/release/robustness.py, adversarial.py),
`explanations.png` (components/release/explanations.py) and `release.json`, and appears under its integer name in
one rename (safe_push); the layout is modules/push_layout.py. `models.config` for TF Serving is
written beside the model's folder.

The conversions run here rather than in a component of their own: they are wanted only for a
blessed model, their files belong in the version directory that appears in one rename, and a run
that finds its model already pushed skips them (the record with every format's numbers travels
with the PushedModel artifact in ML Metadata). Each format's conversion and check is a plain
function (components/release/formats.py), tested without TFX.
The PushedModel artifact carries TFX Pusher's properties (pushed, pushed_destination,
pushed_version), so tools that read those keep working.
"""

import logging
import os
import tempfile

import tensorflow as tf
from tfx import v1 as tfx
from tfx.types import artifact_utils
from tfx.types.standard_artifacts import (
    Examples,
    ExampleStatistics,
    Model,
    ModelBlessing,
    ModelEvaluation,
    PushedModel,
    Schema,
)

from components import tfx_files
from components.release import (
    adversarial,
    confidence,
    explanations,
    formats,
    inputs,
    record,
    robustness,
    safe_push,
    tflite,
)
from modules import attributions, push_layout

log = logging.getLogger(__name__)


def _baseline(version_dir):
    """(the replaced version as loaded, its images predictor); None for what cannot be had (no
    version, or one pushed by something else without the predict_images signature): the release
    goes on."""
    if not version_dir:
        return None, None
    try:
        loaded = tf.saved_model.load(version_dir)
    except (OSError, ValueError) as error:
        log.warning("the previous version %s cannot be loaded: %s", version_dir, error)
        return None, None
    try:
        return loaded, confidence.images_predictor(loaded)
    except (KeyError, ValueError) as error:
        log.warning("robustness: the previous version %s is not scored: %s", version_dir, error)
        return loaded, None


def release(
    model,
    evaluation,
    model_blessing,
    examples,
    statistics,
    schema,
    push_base_dir: str,
    model_name: str,
    attack_examples: int,
    requested_formats=push_layout.FORMATS,
):
    """Converts, evaluates and describes the model, then pushes it; returns (version, directory).
    attack_examples: test digits the adversarial table attacks (0: no table). requested_formats:
    the formats converted beside the SavedModel (push_layout.FORMATS)."""
    saved_model = tfx_files.serving_model_path(model.uri)
    version = safe_push.next_version(push_base_dir)
    images, labels = inputs.test_split(examples.uri)
    loaded = tf.saved_model.load(saved_model)  # once, for the predictor, the converters and the explainer
    predict = confidence.images_predictor(loaded)
    probabilities = predict(images)
    served = push_layout.version_dirs(push_base_dir)
    previous = served[max(served)] if served else None
    baseline_loaded, baseline = _baseline(previous)
    robust = robustness.release_record(images, labels, predict, probabilities, baseline, previous if baseline else None)
    attacked = adversarial.release_record(
        loaded,
        images,
        labels,
        attack_examples,
        baseline_loaded,
        os.path.basename(previous) if baseline_loaded is not None else None,
    )
    with tempfile.TemporaryDirectory() as scratch:
        formats_record, format_files = formats.release_record(
            saved_model,
            images,
            labels,
            probabilities,
            predict,
            tflite.calibration_sample(inputs.train_images(examples.uri, tflite.CALIBRATION_POOL)),
            scratch,
            loaded=loaded,
            requested=requested_formats,
        )
        explained_png = os.path.join(scratch, push_layout.EXPLANATIONS_FILE)
        explained = explanations.release_record(
            attributions.saved_model_explainer(loaded), images, labels, probabilities, explained_png
        )
        released = record.build(
            model_name=model_name,
            version=version,
            saved_model_dir=saved_model,
            model_uri=model.uri,
            evaluation_uri=evaluation.uri,
            blessing_uri=model_blessing.uri,
            examples_uri=examples.uri,
            span=examples.get_int_custom_property("span"),
            statistics_uri=statistics.uri,
            splits=artifact_utils.decode_split_names(statistics.split_names),
            schema_uri=schema.uri,
            formats_record=formats_record,
            confidence_record=confidence.result(probabilities, labels),
            robustness_record=robust,
            adversarial_record=attacked,
            explanations_record=explained,
        )
        extra_files = {
            **format_files,
            push_layout.EXPLANATIONS_FILE: explained_png,
            **record.card_files(released, scratch),
        }
        destination = safe_push.push(saved_model, push_base_dir, version=version, extra_files=extra_files)
    log.info(record.summary_line(released, destination))
    return version, destination


@tfx.dsl.components.component
def Release(
    model: tfx.dsl.components.InputArtifact[Model],
    model_blessing: tfx.dsl.components.InputArtifact[ModelBlessing],
    evaluation: tfx.dsl.components.InputArtifact[ModelEvaluation],
    examples: tfx.dsl.components.InputArtifact[Examples],
    statistics: tfx.dsl.components.InputArtifact[ExampleStatistics],
    schema: tfx.dsl.components.InputArtifact[Schema],
    pushed_model: tfx.dsl.components.OutputArtifact[PushedModel],
    push_base_dir: tfx.dsl.components.Parameter[str],
    model_name: tfx.dsl.components.Parameter[str],
    attack_examples: tfx.dsl.components.Parameter[int],
    formats: tfx.dsl.components.Parameter[str],
) -> None:
    if not model_blessing.get_int_custom_property("blessed"):
        pushed_model.set_int_custom_property("pushed", 0)
        log.info("model %s is NOT BLESSED: nothing released", model.uri)
        return
    existing = safe_push.already_pushed(push_base_dir, model.uri)
    if existing:
        version, destination = existing
        log.info("model %s is already served as version %s: nothing copied", model.uri, version)
    else:
        version, destination = release(
            model,
            evaluation,
            model_blessing,
            examples,
            statistics,
            schema,
            push_base_dir,
            model_name,
            attack_examples,
            push_layout.requested_formats(formats),
        )
    push_layout.update_models_config(
        push_layout.models_config_path(push_base_dir),
        lambda previous: push_layout.render_models_config(
            [(model_name, os.path.abspath(push_base_dir))], previous=previous, pushed_version=int(version)
        ),
    )
    pushed_model.set_int_custom_property("pushed", 1)
    pushed_model.set_string_custom_property("pushed_destination", destination)
    pushed_model.set_string_custom_property("pushed_version", str(version))
    # The release record travels with the PushedModel artifact too, for tools that read only ML Metadata.
    tf.io.gfile.makedirs(pushed_model.uri)
    tf.io.gfile.copy(
        os.path.join(destination, push_layout.RELEASE_FILE),
        os.path.join(pushed_model.uri, push_layout.RELEASE_FILE),
        overwrite=True,
    )
