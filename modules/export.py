"""Exports the serving SavedModel: the Keras model plus the Transform graph, with all signatures.

Keras 3 cannot save_format='tf' nor host the TFT layer inside a functional model, so a
tf.Module holds both and tf.saved_model.save writes it; the result loads in a process
that imports only TensorFlow.
"""

import json
import os
import shutil
import tempfile
from typing import Optional

import keras
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from modules import attributions, calibration, features, pictures
from modules.signatures import (
    ATTRIBUTIONS_OUTPUT,
    CLASSES_OUTPUT,
    CLASSIFY_CLASSES,
    CLASSIFY_INPUTS,
    CLASSIFY_METHOD,
    CLASSIFY_SCORES,
    CLASSIFY_SIGNATURE,
    DIGIT_FOUND_OUTPUT,
    EXAMPLES_INPUT,
    EXPLAIN_SIGNATURE,
    EXPLAIN_TARGETS_SIGNATURE,
    IMAGES_INPUT,
    IMAGES_SIGNATURE,
    NO_DIGIT_CLASS,
    PICTURES_INPUT,
    PICTURES_SIGNATURE,
    PROBABILITIES_OUTPUT,
    SEEN_IMAGES_OUTPUT,
    SERVING_SIGNATURE,
    TARGETS_COUNT_REFUSED,
    TARGETS_INPUT,
    TARGETS_OUTPUT,
    TARGETS_RANGE_REFUSED,
    TRANSFORM_SIGNATURE,
    TRANSFORMED_INPUT,
)

# Hyperparameters and per-epoch history travel with the model (TF Serving ignores assets.extra).
TRAINING_RECORD = os.path.join("assets.extra", "training.json")


def computes_in_float32(model: keras.Model) -> bool:
    """Whether every layer, members of an ensemble (cnn.averaged) included, computes in float32."""
    return all(
        computes_in_float32(layer) if isinstance(layer, keras.Model) else layer.dtype_policy.name == "float32"
        for layer in model.layers
    )


def float32_copy(model: keras.Model) -> keras.Model:
    """The same model and weights computing in float32 (an ensemble's members each copied so).

    Mixed precision (bfloat16) speeds up training only; the served model computes in float32 so
    that any CPU or GPU runs it, and TFLite can convert it (it has no bfloat16 Conv2D)."""
    if computes_in_float32(model):
        return model

    def clone(layer):
        if isinstance(layer, keras.Model):
            return float32_copy(layer)
        config = layer.get_config()
        config["dtype"] = "float32"
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def build_signatures(
    model, tf_transform_output, temperature: float = 1.0, explain_signatures: bool = True, explain_steps: int = 0
) -> tuple:
    """Returns (module to save, {signature name: concrete function}). temperature: every signature's
    probabilities are softmax(log p / temperature) (modules/calibration.py); 1 leaves them as is.
    explain_signatures: False leaves out explain_images and explain_images_for (to measure their cost);
    explain_steps: their path intervals (0: attributions.STEPS)."""
    steps = explain_steps or attributions.STEPS
    module = tf.Module()
    module.model = float32_copy(model)
    module.temperature = tf.Variable(float(temperature), trainable=False, dtype=tf.float32, name="temperature")
    module.tft_layer = tf_transform_output.transform_features_layer()
    raw_spec = tf_transform_output.raw_feature_spec()
    serving_spec = {k: v for k, v in raw_spec.items() if k not in features.NOT_SERVED_KEYS}
    image_key = features.transformed_name(features.IMAGE_KEY)
    examples_spec = tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)
    images_spec = tf.TensorSpec([None, features.IMAGE_HEIGHT, features.IMAGE_WIDTH], tf.uint8, name=IMAGES_INPUT)

    def predict_transformed(transformed_images):
        """The Transform graph's image feature [n, 784] -> the served (calibrated) probabilities."""
        probabilities = module.model({image_key: transformed_images}, training=False)
        return tf.nn.softmax(tf.math.log(tf.maximum(probabilities, calibration.TINY)) / module.temperature, axis=-1)

    def predict_raw(raw_features):
        """Raw features (as tf.Example parsing gives them) -> probabilities, via the Transform graph."""
        return predict_transformed(module.tft_layer(raw_features)[image_key])

    def transformed_pixels(images):
        """uint8 [n, 28, 28] -> the Transform graph's image feature [n, 784], from the same int64
        [n, 784] feature tf.Example parsing yields."""
        pixels = tf.reshape(tf.cast(images, tf.int64), [-1, features.NUM_PIXELS])
        return module.tft_layer({features.IMAGE_KEY: pixels})[image_key]

    def explain(images, targets=None):
        """Integrated gradients of each row's target class (None: the predicted one), from a black
        image (modules/attributions.py).
        The path runs through the Transform graph's output: its scaling is affine, so the attributions
        are those of the path in pixels, and they add up to the served probability's rise from black."""
        x = transformed_pixels(images)
        probabilities = predict_transformed(x)
        if targets is None:
            targets = tf.argmax(probabilities, axis=-1)
        in_range = tf.logical_and(targets >= 0, targets < features.NUM_CLASSES)
        checks = [
            tf.debugging.Assert(tf.reduce_all(in_range), [tf.constant(TARGETS_RANGE_REFUSED + ":"), targets]),
            tf.debugging.Assert(
                tf.equal(tf.shape(targets)[0], tf.shape(images)[0]),
                [tf.constant(TARGETS_COUNT_REFUSED + ": (targets, images) ="), tf.shape(targets), tf.shape(images)],
            ),
        ]
        with tf.control_dependencies(checks):
            targets = tf.identity(targets)
        black = transformed_pixels(tf.zeros([1, features.IMAGE_HEIGHT, features.IMAGE_WIDTH], tf.uint8))[0]
        maps = attributions.batch_integrated_gradients(predict_transformed, x, black, targets, steps)
        return {
            PROBABILITIES_OUTPUT: probabilities,
            CLASSES_OUTPUT: tf.argmax(probabilities, axis=-1),
            TARGETS_OUTPUT: targets,
            ATTRIBUTIONS_OUTPUT: tf.reshape(maps, [-1, features.IMAGE_HEIGHT, features.IMAGE_WIDTH]),
        }

    @tf.function(input_signature=[examples_spec])
    def serve_examples(examples):
        """Serialized tf.Example (no label needed) -> class probabilities [batch, 10]."""
        return {PROBABILITIES_OUTPUT: predict_raw(tf.io.parse_example(examples, serving_spec))}

    @tf.function(input_signature=[images_spec])
    def serve_images(images):
        """uint8 pixels [batch, 28, 28] -> probabilities [batch, 10] and the predicted class [batch].

        The pixels become the same int64 [batch, 784] feature tf.Example parsing yields, so both
        signatures run the identical Transform graph and model."""
        probabilities = predict_transformed(transformed_pixels(images))
        return {PROBABILITIES_OUTPUT: probabilities, CLASSES_OUTPUT: tf.argmax(probabilities, axis=-1)}

    @tf.function(input_signature=[images_spec])
    def explain_images(images):
        """uint8 pixels [batch, 28, 28] -> probabilities, classes, and the attributions [batch, 28, 28]
        of the predicted class (float32; they add up to its probability's rise from a black image)."""
        return explain(images)

    @tf.function(input_signature=[images_spec, tf.TensorSpec([None], tf.int64, name=TARGETS_INPUT)])
    def explain_images_for(images, targets):
        """As explain_images, for the class given per row in targets (int64 0-9) [batch]."""
        return explain(images, targets)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=PICTURES_INPUT)])
    def serve_pictures(encoded):
        """Encoded pictures (PNG, JPEG, BMP, one-frame GIF; any size, grey or colour, either polarity) [batch]
        -> MNIST's 28x28 by modules/pictures.py, then as serve_images; also the 28x28 images the
        model saw and whether each held a digit (none: class NO_DIGIT_CLASS)."""
        seen, found = pictures.batch_from_bytes(encoded)
        predicted = serve_images(seen)
        return {
            PROBABILITIES_OUTPUT: predicted[PROBABILITIES_OUTPUT],
            CLASSES_OUTPUT: tf.where(found, predicted[CLASSES_OUTPUT], tf.constant(NO_DIGIT_CLASS, tf.int64)),
            SEEN_IMAGES_OUTPUT: seen,
            DIGIT_FOUND_OUTPUT: found,
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=CLASSIFY_INPUTS)])
    def classify(inputs):
        """TF Serving's Classify API: serialized tf.Example -> every class label (as text) and its
        score, [batch, 10] each."""
        scores = predict_raw(tf.io.parse_example(inputs, serving_spec))
        labels = tf.strings.as_string(tf.range(features.NUM_CLASSES))
        return {CLASSIFY_CLASSES: tf.tile(labels[tf.newaxis, :], [tf.shape(scores)[0], 1]), CLASSIFY_SCORES: scores}

    @tf.function(input_signature=[examples_spec])
    def transform_features(examples):
        """Serialized tf.Example -> transformed features, for the Evaluator."""
        return module.tft_layer(tf.io.parse_example(examples, raw_spec))

    functions = {
        SERVING_SIGNATURE: serve_examples.get_concrete_function(),
        IMAGES_SIGNATURE: serve_images.get_concrete_function(),
        PICTURES_SIGNATURE: serve_pictures.get_concrete_function(),
        CLASSIFY_SIGNATURE: classify.get_concrete_function(),
        TRANSFORM_SIGNATURE: transform_features.get_concrete_function(),
    }

    # Not signatures (servers do not list them): the CNN on the Transform's output, and the Transform
    # on uint8 pixels, for converters whose runtimes cannot run the Transform's int64 casts (the
    # full-integer TFLite model for phones and microcontrollers, components/release/tflite.py).
    # The probabilities are the CNN's own, before the temperature: its softmax(log p / T) needs a
    # LOG that TFLite Micro has only in float. The class is the same (the temperature is positive).
    @tf.function(input_signature=[tf.TensorSpec([None, features.NUM_PIXELS], tf.float32, name=TRANSFORMED_INPUT)])
    def predict_transformed_uncalibrated(transformed):
        probabilities = module.model({image_key: transformed}, training=False)
        # int32: TFLite Micro's ARG_MAX writes no int64.
        return {
            PROBABILITIES_OUTPUT: probabilities,
            CLASSES_OUTPUT: tf.argmax(probabilities, axis=-1, output_type=tf.int32),
        }

    module.predict_transformed_uncalibrated = predict_transformed_uncalibrated
    module.transform_images = tf.function(transformed_pixels, input_signature=[images_spec])
    if explain_signatures:
        functions[EXPLAIN_SIGNATURE] = explain_images.get_concrete_function()
        functions[EXPLAIN_TARGETS_SIGNATURE] = explain_images_for.get_concrete_function()
    return module, functions


def export_serving_model(
    model,
    tf_transform_output,
    export_dir: str,
    temperature: float = 1.0,
    explain_signatures: bool = True,
    explain_steps: int = 0,
) -> None:
    module, signatures = build_signatures(model, tf_transform_output, temperature, explain_signatures, explain_steps)
    tf.saved_model.save(module, export_dir, signatures=signatures)
    set_method_name(export_dir, CLASSIFY_SIGNATURE, CLASSIFY_METHOD)


def set_method_name(export_dir: str, signature: str, method_name: str) -> None:
    """TensorFlow 2 saves every signature as a Predict one; TF Serving's Classify API needs its
    signature's method_name to say classify, so the SavedModel proto is rewritten with it."""
    path = os.path.join(export_dir, "saved_model.pb")
    saved_model = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(path, "rb") as f:
        saved_model.ParseFromString(f.read())
    saved_model.meta_graphs[0].signature_def[signature].method_name = method_name
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(saved_model.SerializeToString())


def write_training_record(export_dir: str, record: dict) -> None:
    path = os.path.join(export_dir, TRAINING_RECORD)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(record, indent=2))


def read_training_record(export_dir: str) -> dict:
    path = os.path.join(export_dir, TRAINING_RECORD)
    if not tf.io.gfile.exists(path):
        return {}
    with tf.io.gfile.GFile(path) as f:
        return json.loads(f.read())


def export_on_chief(
    model,
    tf_transform_output,
    export_dir: str,
    chief: bool,
    training_record: Optional[dict] = None,
    temperature: float = 1.0,
) -> None:
    """Under multi-worker training every worker must save (saving runs collective ops), but only
    the chief's copy is kept: the others write to a temporary directory and delete it."""
    if chief:
        export_serving_model(model, tf_transform_output, export_dir, temperature)
        if training_record is not None:
            write_training_record(export_dir, training_record)
        return
    scratch = tempfile.mkdtemp(prefix="worker_export_")
    try:
        export_serving_model(model, tf_transform_output, scratch, temperature)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
