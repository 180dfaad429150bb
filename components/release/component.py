"""Release, a Python function component in the Pusher's place: a blessed model goes to TF Serving's
push directory complete or not at all, with its TFLite twin, model card and models.config.

Only a model the Evaluator blessed is released. The version directory holds the SavedModel,
`model.tflite` (quantized, evaluated on the test split), `model_card.md` and `release.json`,
and appears under its integer name in one rename (safe_push). `models.config` for TF Serving is
written beside the model's folder. The PushedModel artifact carries TFX Pusher's properties
(pushed, pushed_destination, pushed_version), so tools that read those keep working.
"""
import glob
import json
import os
import tempfile
import time

import numpy as np
import tensorflow as tf
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2
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
from tfx.utils import path_utils

from components.release import metrics, model_card, safe_push, tflite
from modules import export, features
from serving import models_config
from serving.repository import version_dirs

CARD_FILE = "model_card.md"
RELEASE_FILE = "release.json"
MODELS_CONFIG_FILE = "models.config"
TEST_SPLIT = "test"


def read_test_split(examples) -> tuple:
    """The test split's raw images (uint8 [n, 28, 28]) and labels, as ExampleGen wrote them."""
    files = glob.glob(os.path.join(artifact_utils.get_split_uri([examples], TEST_SPLIT), "*"))
    spec = {features.IMAGE_KEY: tf.io.FixedLenFeature([features.NUM_PIXELS], tf.int64),
            features.LABEL_KEY: tf.io.FixedLenFeature([1], tf.int64)}
    images, labels = [], []
    for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(1000):
        parsed = tf.io.parse_example(batch, spec)
        images.append(parsed[features.IMAGE_KEY].numpy().reshape(-1, features.IMAGE_HEIGHT, features.IMAGE_WIDTH))
        labels.append(parsed[features.LABEL_KEY].numpy()[:, 0])
    return np.concatenate(images).astype(np.uint8), np.concatenate(labels)


def describe_schema(schema_uri: str) -> dict:
    schema = tfdv.load_schema_text(os.path.join(schema_uri, "schema.pbtxt"))
    described = {}
    for feature in schema.feature:
        shape = [d.size for d in feature.shape.dim] or ["scalar"]
        domain = ""
        if feature.HasField("int_domain"):
            domain = f", values {feature.int_domain.min}..{feature.int_domain.max}"
        described[feature.name] = f"{schema_pb2.FeatureType.Name(feature.type)} shape {shape}{domain}"
    return described


def already_pushed(push_base_dir: str, model_uri: str):
    """The version directory already holding this Model artifact (a re-run that blessed the same
    model again), or None: re-pushing it would only make TF Serving reload identical weights."""
    for version, path in sorted(version_dirs(push_base_dir).items(), reverse=True):
        release = os.path.join(path, RELEASE_FILE)
        if os.path.isfile(release):
            with open(release) as f:
                if json.load(f).get("lineage", {}).get("model") == model_uri:
                    return version, path
    return None


def _dir_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)


def _thresholds(evaluation_uri: str) -> dict:
    from tensorflow_model_analysis.writers import eval_config_writer

    eval_config = eval_config_writer.load_eval_run(evaluation_uri)[0]
    found = {"min_accuracy": None, "max_accuracy_drop": None}
    for spec in eval_config.metrics_specs:
        for metric in spec.metrics:
            for per_slice in metric.per_slice_thresholds:
                threshold = per_slice.threshold
                if threshold.value_threshold.HasField("lower_bound"):
                    found["min_accuracy"] = threshold.value_threshold.lower_bound.value
                if threshold.change_threshold.HasField("absolute"):
                    found["max_accuracy_drop"] = -threshold.change_threshold.absolute.value
    return found


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
) -> None:
    if not model_blessing.get_int_custom_property("blessed"):
        pushed_model.set_int_custom_property("pushed", 0)
        print(f"model {model.uri} is NOT BLESSED: nothing released")
        return
    existing = already_pushed(push_base_dir, model.uri)
    if existing:
        version, destination = existing
        print(f"model {model.uri} is already served as version {version}: nothing copied")
    else:
        version, destination = _release(model, evaluation, examples, statistics, schema, model_blessing,
                                        push_base_dir, model_name)
    # TF Serving's models.config, next to the model's folder: <push root>/models.config.
    push_root = os.path.dirname(os.path.abspath(push_base_dir))
    safe_push.write_atomically(os.path.join(push_root, MODELS_CONFIG_FILE),
                               models_config.render([(model_name, os.path.abspath(push_base_dir))]))
    pushed_model.set_int_custom_property("pushed", 1)
    pushed_model.set_string_custom_property("pushed_destination", destination)
    pushed_model.set_string_custom_property("pushed_version", str(version))
    with open(os.path.join(destination, RELEASE_FILE)) as f:
        release = f.read()
    tf.io.gfile.makedirs(pushed_model.uri)
    with tf.io.gfile.GFile(os.path.join(pushed_model.uri, RELEASE_FILE), "w") as f:
        f.write(release)


def _release(model, evaluation, examples, statistics, schema, model_blessing, push_base_dir: str, model_name: str):
    """Converts, evaluates and describes the model, then pushes it; returns (version, directory)."""
    saved_model = path_utils.serving_model_path(model.uri)
    evaluated = metrics.read(evaluation.uri)
    with tempfile.TemporaryDirectory() as scratch:
        tflite_path = os.path.join(scratch, tflite.FILE_NAME)
        tflite_bytes = tflite.convert(saved_model, tflite_path)
        images, labels = read_test_split(examples)
        tflite_result = {"size_bytes": tflite_bytes, "accuracy": tflite.accuracy(tflite_path, images, labels),
                         "examples": int(len(labels))}
        split_counts = {}
        for split in artifact_utils.decode_split_names(statistics.split_names):
            split_stats = tfdv.load_stats_binary(os.path.join(
                artifact_utils.get_split_uri([statistics], split), "FeatureStats.pb"))
            split_counts[split] = int(split_stats.datasets[0].num_examples)
        training = export.read_training_record(saved_model)
        version = safe_push.next_version(push_base_dir)
        card = {
            "model_name": model_name, "version": version,
            "pushed_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "data": {"span": examples.get_int_custom_property("span"), "uri": examples.uri,
                     "split_counts": split_counts},
            "schema": describe_schema(schema.uri),
            "training": {**training, "epochs_run": len(training.get("history", {}).get("loss", [])) or "?"},
            "metrics": evaluated, "tflite": tflite_result, "saved_model_size_bytes": _dir_bytes(saved_model),
            "thresholds": _thresholds(evaluation.uri),
            "lineage": {"model": model.uri, "evaluation": evaluation.uri, "blessing": model_blessing.uri},
        }
        card_path, release_path = os.path.join(scratch, CARD_FILE), os.path.join(scratch, RELEASE_FILE)
        with open(card_path, "w") as f:
            f.write(model_card.render(card))
        with open(release_path, "w") as f:
            json.dump(card, f, indent=2, default=str)
        destination = safe_push.push(saved_model, push_base_dir, version=version, extra_files={
            tflite.FILE_NAME: tflite_path, CARD_FILE: card_path, RELEASE_FILE: release_path})
    print(f"released version {version} to {destination}: accuracy "
          f"{evaluated['candidate']['overall'].get(metrics.ACCURACY):.4f}, TFLite {tflite_result['accuracy']:.4f} "
          f"({tflite_bytes / 1e6:.2f} MB)")
    return version, destination
