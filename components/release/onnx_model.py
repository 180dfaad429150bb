"""The blessed model as ONNX (`model.onnx`), converted from the `predict_images` signature by
tf2onnx and run by ONNX Runtime: uint8 [batch, 28, 28] in, probabilities (temperature included) and
the int64 class out, like the signature. The draw-a-digit page runs the same file in the browser
(ONNX Runtime Web, serving/web/)."""

import contextlib
import os
from typing import Callable, Dict

import numpy as np
import tensorflow as tf

from modules import features, signatures

# ONNX opset 17: ONNX Runtime 1.12 and later run it, ONNX Runtime Web's builds included.
OPSET = 17
TF_LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"


@contextlib.contextmanager
def _tf_log_level_kept():
    """tf2onnx sets TF_CPP_MIN_LOG_LEVEL in os.environ when imported (to 3), which would silence
    TensorFlow's C++ log for the rest of the process and every process it starts: restored after."""
    before = os.environ.get(TF_LOG_LEVEL)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(TF_LOG_LEVEL, None)
        else:
            os.environ[TF_LOG_LEVEL] = before


def convert(loaded) -> bytes:
    """The ONNX model (serialized) of a loaded SavedModel's predict_images."""
    with _tf_log_level_kept():
        return _convert(loaded)


def _convert(loaded) -> bytes:
    import tf2onnx

    function = loaded.signatures[signatures.IMAGES_SIGNATURE]
    # The outputs take the signature's names (classes, probabilities), the input its own (images).
    proto, _ = tf2onnx.convert.from_function(
        tf.function(lambda images: function(images=images)),
        input_signature=[
            tf.TensorSpec([None, features.IMAGE_HEIGHT, features.IMAGE_WIDTH], tf.uint8, name=signatures.IMAGES_INPUT)
        ],
        opset=OPSET,
    )
    return proto.SerializeToString()


def runner(model: bytes) -> Callable[[np.ndarray], Dict[str, np.ndarray]]:
    """A function: uint8 images [n, 28, 28] -> {classes, probabilities}, run by ONNX Runtime on the CPU."""
    import onnxruntime

    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])

    def run(images: np.ndarray) -> Dict[str, np.ndarray]:
        classes, probabilities = session.run(
            [signatures.CLASSES_OUTPUT, signatures.PROBABILITIES_OUTPUT], {signatures.IMAGES_INPUT: images}
        )
        return {signatures.CLASSES_OUTPUT: classes, signatures.PROBABILITIES_OUTPUT: probabilities}

    return run
