"""Exports the serving SavedModel: the Keras model plus the Transform graph, with all signatures.

Keras 3 cannot save_format='tf' nor host the TFT layer inside a functional model, so a
tf.Module holds both and tf.saved_model.save writes it; the result loads in a process
that imports only TensorFlow.
"""
import shutil
import tempfile

import tensorflow as tf

from modules import features

SERVING_SIGNATURE = "serving_default"
TRANSFORM_SIGNATURE = "transform_features"
EXAMPLES_INPUT = "examples"
PROBABILITIES_OUTPUT = "probabilities"


def build_signatures(model, tf_transform_output) -> tuple:
    """Returns (module to save, {signature name: concrete function})."""
    module = tf.Module()
    module.model = model
    module.tft_layer = tf_transform_output.transform_features_layer()
    raw_spec = tf_transform_output.raw_feature_spec()
    serving_spec = {k: v for k, v in raw_spec.items() if k != features.LABEL_KEY}
    image_key = features.transformed_name(features.IMAGE_KEY)
    examples_spec = tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)

    @tf.function(input_signature=[examples_spec])
    def serve_examples(examples):
        """Serialized tf.Example (no label needed) -> class probabilities [batch, 10]."""
        transformed = module.tft_layer(tf.io.parse_example(examples, serving_spec))
        probabilities = module.model({image_key: transformed[image_key]}, training=False)
        return {PROBABILITIES_OUTPUT: probabilities}

    @tf.function(input_signature=[examples_spec])
    def transform_features(examples):
        """Serialized tf.Example -> transformed features, for the Evaluator."""
        return module.tft_layer(tf.io.parse_example(examples, raw_spec))

    return module, {
        SERVING_SIGNATURE: serve_examples.get_concrete_function(),
        TRANSFORM_SIGNATURE: transform_features.get_concrete_function(),
    }


def export_serving_model(model, tf_transform_output, export_dir: str) -> None:
    module, signatures = build_signatures(model, tf_transform_output)
    tf.saved_model.save(module, export_dir, signatures=signatures)


def export_on_chief(model, tf_transform_output, export_dir: str, chief: bool) -> None:
    """Under multi-worker training every worker must save (saving runs collective ops), but only
    the chief's copy is kept: the others write to a temporary directory and delete it."""
    if chief:
        export_serving_model(model, tf_transform_output, export_dir)
        return
    scratch = tempfile.mkdtemp(prefix="worker_export_")
    try:
        export_serving_model(model, tf_transform_output, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
