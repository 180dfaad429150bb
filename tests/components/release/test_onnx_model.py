"""ONNX: tf2onnx's model of predict_images, run by ONNX Runtime, answers like the SavedModel."""

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
