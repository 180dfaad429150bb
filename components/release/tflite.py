"""The blessed model as TensorFlow Lite files, scored with LiteRT's standalone interpreter
(`ai-edge-litert`, the runtime a phone ships), not TensorFlow's bundled one.

Three kinds, each a file in the version directory (modules/push_layout.py):
- dynamic range (`model.tflite`): weights int8, activations float; converted from the
  `predict_images` signature, so it takes uint8 [batch, 28, 28] and the Transform step travels inside;
- float16 (`model_float16.tflite`): weights float16, computed in float32; also from `predict_images`;
- full integer (`model_int8.tflite`): weights and activations int8, calibrated on a sample of the
  training split, for integer-only hardware and TFLite Micro (components/release/micro.py).
  Converted from the SavedModel's `predict_transformed_uncalibrated` function (the CNN on the
  Transform's output, modules/export.py), because integer-only runtimes cannot run the Transform's
  int64 casts: the Transform's scaling becomes the input's quantization instead. Input int8
  [batch, 784] (the Transform's pixels, quantized by the input's scale and zero point: for
  pixel / 255 that is pixel - 128); output the CNN's int8 probabilities, before the temperature
  (TFLite Micro has no int8 LOG for it; the class is the same), and the int32 class.

Converted from the loaded functions' concrete functions, which freezes the variables into the
flatbuffer: `from_saved_model` on this tf.Module-based SavedModel keeps them as resource
variables that the interpreter never initializes (all outputs NaN).
"""

from typing import Callable, Dict, Iterator, Optional

import numpy as np
import tensorflow as tf

from modules import features, push_layout, signatures

DYNAMIC_RANGE, FLOAT16, FULL_INTEGER = push_layout.TFLITE, push_layout.TFLITE_FLOAT16, push_layout.TFLITE_INT8
KINDS = (DYNAMIC_RANGE, FLOAT16, FULL_INTEGER)
FILES = {
    DYNAMIC_RANGE: push_layout.TFLITE_FILE,
    FLOAT16: push_layout.TFLITE_FLOAT16_FILE,
    FULL_INTEGER: push_layout.TFLITE_INT8_FILE,
}
DESCRIPTIONS = {
    DYNAMIC_RANGE: "TFLite, dynamic range (int8 weights, float activations)",
    FLOAT16: "TFLite, float16 weights",
    FULL_INTEGER: "TFLite, full integer (int8 weights and activations)",
}
# Rows of the training split the full-integer model's activation ranges are calibrated on: a fixed
# sample (calibration_sample) of its first CALIBRATION_POOL rows.
CALIBRATION_ROWS = 500
CALIBRATION_POOL = 5000


class ConversionError(ValueError):
    """A format cannot be made or checked; the message names the format and the reason."""


def convert(loaded, kind: str, calibration_images: Optional[np.ndarray] = None) -> bytes:
    """The .tflite flatbuffer of one kind from a loaded SavedModel (tf.saved_model.load).
    calibration_images (uint8 [n, 28, 28]) is required for FULL_INTEGER, ignored otherwise."""
    if kind == FULL_INTEGER:
        return _full_integer(loaded, calibration_images)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [loaded.signatures[signatures.IMAGES_SIGNATURE]], loaded
    )
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if kind == FLOAT16:
        converter.target_spec.supported_types = [tf.float16]
    elif kind != DYNAMIC_RANGE:
        raise ValueError(f"unknown TFLite kind {kind!r}; one of {KINDS}")
    return converter.convert()


def _full_integer(loaded, calibration_images) -> bytes:
    if calibration_images is None or len(calibration_images) == 0:
        raise ConversionError(f"{FULL_INTEGER}: the calibration sample is empty (no training images)")
    if not hasattr(loaded, "predict_transformed_uncalibrated") or not hasattr(loaded, "transform_images"):
        raise ConversionError(
            f"{FULL_INTEGER}: the SavedModel has no predict_transformed_uncalibrated function "
            "(exported before it existed)"
        )
    transformed = loaded.transform_images(tf.constant(calibration_images, tf.uint8)).numpy()

    def representative() -> Iterator[Dict[str, np.ndarray]]:
        for row in transformed:
            yield {signatures.TRANSFORMED_INPUT: row[np.newaxis, :]}

    function = loaded.predict_transformed_uncalibrated.get_concrete_function()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], loaded)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def _interpreter(flatbuffer: bytes):
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_content=flatbuffer)


def input_quantization(flatbuffer: bytes):
    """(scale, zero point) of the full-integer model's input."""
    runner = _interpreter(flatbuffer).get_signature_runner()
    return tuple(runner.get_input_details()[signatures.TRANSFORMED_INPUT]["quantization"])


def device_inputs(loaded, flatbuffer: bytes, images: np.ndarray) -> np.ndarray:
    """What a device feeds the full-integer model for uint8 images [n, 28, 28]: the loaded
    SavedModel's own Transform of the pixels, quantized with the model's input scale and zero point
    (int8 [n, 784])."""
    transformed = loaded.transform_images(tf.constant(images, tf.uint8)).numpy()
    scale, zero_point = input_quantization(flatbuffer)
    return np.clip(np.round(transformed / scale) + zero_point, -128, 127).astype(np.int8)


def runner(flatbuffer: bytes, kind: str) -> Callable[[np.ndarray], Dict[str, np.ndarray]]:
    """A function: a batch of inputs (uint8 images, or device_inputs for FULL_INTEGER) -> {classes,
    probabilities as float}, run by LiteRT."""
    signature = _interpreter(flatbuffer).get_signature_runner()
    name = signatures.TRANSFORMED_INPUT if kind == FULL_INTEGER else signatures.IMAGES_INPUT
    scale, zero_point = signature.get_output_details()[signatures.PROBABILITIES_OUTPUT]["quantization"]

    def run(batch: np.ndarray) -> Dict[str, np.ndarray]:
        out = signature(**{name: batch})
        probabilities = out[signatures.PROBABILITIES_OUTPUT].astype(np.float32)
        if scale:  # int8 probabilities back to [0, 1]
            probabilities = (probabilities - zero_point) * scale
        return {
            signatures.CLASSES_OUTPUT: out[signatures.CLASSES_OUTPUT],
            signatures.PROBABILITIES_OUTPUT: probabilities,
        }

    return run


def predict_classes(flatbuffer: bytes, kind: str, inputs: np.ndarray, batch_size: int = 250) -> np.ndarray:
    run = runner(flatbuffer, kind)
    return np.concatenate(
        [run(inputs[i : i + batch_size])[signatures.CLASSES_OUTPUT] for i in range(0, len(inputs), batch_size)]
    )


def calibration_sample(train_images: np.ndarray, rows: int = CALIBRATION_ROWS, seed: int = 0) -> np.ndarray:
    """A fixed random sample of the training images, the full-integer model's calibration set."""
    if len(train_images) == 0:
        return train_images
    chosen = np.random.default_rng(seed).choice(len(train_images), size=min(rows, len(train_images)), replace=False)
    return train_images[np.sort(chosen)].reshape(-1, features.IMAGE_HEIGHT, features.IMAGE_WIDTH)
