"""ONNX: tf2onnx's model of predict_images, run by ONNX Runtime, answers like the SavedModel."""

import os
import sys

import numpy as np
import tensorflow as tf

from components.release import onnx_model
from modules import signatures


def test_onnx_runtime_gives_the_savedmodel_s_answers(loaded_export, test_images_labels):
    images = test_images_labels[0][:500]
    answers = onnx_model.runner(onnx_model.convert(loaded_export))(images)
    expected = loaded_export.signatures[signatures.IMAGES_SIGNATURE](images=tf.constant(images))
    np.testing.assert_array_equal(answers[signatures.CLASSES_OUTPUT], expected[signatures.CLASSES_OUTPUT].numpy())
    assert (
        np.max(np.abs(answers[signatures.PROBABILITIES_OUTPUT] - expected[signatures.PROBABILITIES_OUTPUT].numpy()))
        < 1e-4
    )


def test_converting_leaves_tensorflow_s_log_level_as_it_was(loaded_export, monkeypatch):
    # tf2onnx sets TF_CPP_MIN_LOG_LEVEL when imported: processes started later (the pipeline's
    # components, a test's subprocess) would lose TensorFlow's C++ log.
    monkeypatch.delenv(onnx_model.TF_LOG_LEVEL, raising=False)
    for name in [m for m in sys.modules if m == "tf2onnx" or m.startswith("tf2onnx.")]:
        monkeypatch.delitem(sys.modules, name)  # imported afresh, as in a new process
    onnx_model.convert(loaded_export)
    assert onnx_model.TF_LOG_LEVEL not in os.environ
    monkeypatch.setenv(onnx_model.TF_LOG_LEVEL, "1")
    onnx_model.convert(loaded_export)
    assert os.environ[onnx_model.TF_LOG_LEVEL] == "1"
