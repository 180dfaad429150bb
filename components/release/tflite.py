"""The blessed model as a quantized TensorFlow Lite file, and its accuracy on the test split.

Converted from the `predict_images` signature (uint8 [batch, 28, 28] in; probabilities and
class out), so the Transform step travels inside the .tflite as it does in the SavedModel.
Dynamic-range quantization: weights int8, activations float.

Converted from the loaded signature's concrete function, which freezes the variables into the
flatbuffer: `from_saved_model` on this tf.Module-based SavedModel keeps them as resource
variables that the interpreter never initializes (all outputs NaN; measured here).
"""

import numpy as np
import tensorflow as tf

from modules import signatures


def convert(saved_model_dir: str, output_path: str) -> int:
    """Writes the .tflite; returns its size in bytes."""
    loaded = tf.saved_model.load(saved_model_dir)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [loaded.signatures[signatures.IMAGES_SIGNATURE]], loaded
    )
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    flatbuffer = converter.convert()
    with open(output_path, "wb") as f:
        f.write(flatbuffer)
    return len(flatbuffer)


def predict_classes(tflite_path: str, images: np.ndarray, batch_size: int = 250) -> np.ndarray:
    interpreter = tf.lite.Interpreter(model_path=tflite_path)
    runner = interpreter.get_signature_runner()  # the one signature: predict_images
    classes = [
        runner(**{signatures.IMAGES_INPUT: images[i : i + batch_size].astype(np.uint8)})[signatures.CLASSES_OUTPUT]
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(classes)


def accuracy(tflite_path: str, images: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(predict_classes(tflite_path, images) == labels))
