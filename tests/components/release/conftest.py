"""The slice model's formats, converted once per test run for the release's format tests."""

import pytest


@pytest.fixture(scope="session")
def loaded_export(exported_model):
    import tensorflow as tf

    return tf.saved_model.load(exported_model)


@pytest.fixture(scope="session")
def int8_model(loaded_export, train_images_labels) -> bytes:
    from components.release import tflite

    return tflite.convert(loaded_export, tflite.FULL_INTEGER, tflite.calibration_sample(train_images_labels[0]))
