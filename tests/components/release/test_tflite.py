"""The TFLite files, run by LiteRT's standalone interpreter: each kind converts from the float32
export and answers like the SavedModel; the full-integer model's input is the Transform's pixels
in int8."""

import numpy as np
import pytest
import tensorflow as tf

from components.release import tflite
from modules import signatures

ROWS = 1000


@pytest.fixture(scope="module")
def by_saved_model(loaded_export, test_images_labels):
    signature = loaded_export.signatures[signatures.IMAGES_SIGNATURE]
    return signature(images=tf.constant(test_images_labels[0][:ROWS]))[signatures.CLASSES_OUTPUT].numpy()


@pytest.mark.parametrize("kind", [tflite.DYNAMIC_RANGE, tflite.FLOAT16])
def test_float_input_kinds_agree_with_the_savedmodel(kind, loaded_export, test_images_labels, by_saved_model):
    images = test_images_labels[0][:ROWS]
    flatbuffer = tflite.convert(loaded_export, kind)
    classes = tflite.predict_classes(flatbuffer, kind, images)
    assert np.mean(classes == by_saved_model) >= 0.998


def test_the_kinds_are_smaller_than_float32_in_the_expected_order(loaded_export, int8_model):
    dynamic, half = (len(tflite.convert(loaded_export, kind)) for kind in (tflite.DYNAMIC_RANGE, tflite.FLOAT16))
    # float16 weights take half of float32's; int8 weights a quarter (the Dense layer dominates).
    assert len(int8_model) < 0.6 * half and dynamic < 0.6 * half


def test_the_full_integer_model_takes_the_transforms_pixels_as_int8(
    loaded_export, int8_model, test_images_labels, by_saved_model
):
    scale, zero_point = tflite.input_quantization(int8_model)
    # Calibrated on the Transform's output, pixel / 255 in [0, 1]: int8 = pixel - 128 exactly.
    assert scale == pytest.approx(1 / 255) and zero_point == -128
    images = test_images_labels[0][:ROWS]
    fed = tflite.device_inputs(loaded_export, int8_model, images)
    assert fed.dtype == np.int8 and fed.shape == (ROWS, 784)
    np.testing.assert_array_equal(fed.astype(np.int16) + 128, images.reshape(ROWS, -1))
    classes = tflite.predict_classes(int8_model, tflite.FULL_INTEGER, fed)
    assert np.mean(classes == by_saved_model) >= 0.99
    probabilities = tflite.runner(int8_model, tflite.FULL_INTEGER)(fed[:5])[signatures.PROBABILITIES_OUTPUT]
    assert probabilities.min() >= 0 and np.allclose(probabilities.sum(axis=1), 1, atol=0.05)


def test_an_empty_calibration_sample_is_refused_in_plain_words(loaded_export):
    with pytest.raises(tflite.ConversionError, match="tflite_int8: the calibration sample is empty"):
        tflite.convert(loaded_export, tflite.FULL_INTEGER, np.zeros([0, 28, 28], np.uint8))


def test_a_savedmodel_without_the_transformed_function_is_refused_in_plain_words(tmp_path):
    older = tf.Module()  # a model exported before predict_transformed_uncalibrated existed
    older.predict = tf.function(
        lambda images: {signatures.CLASSES_OUTPUT: tf.zeros(tf.shape(images)[:1], tf.int64)},
        input_signature=[tf.TensorSpec([None, 28, 28], tf.uint8)],
    )
    path = str(tmp_path / "older")
    tf.saved_model.save(older, path, signatures={signatures.IMAGES_SIGNATURE: older.predict.get_concrete_function()})
    with pytest.raises(tflite.ConversionError, match="no predict_transformed_uncalibrated"):
        tflite.convert(tf.saved_model.load(path), tflite.FULL_INTEGER, np.zeros([4, 28, 28], np.uint8))


def test_the_calibration_sample_is_a_fixed_subset_of_the_training_images(train_images_labels):
    images = train_images_labels[0][:2000]
    sample = tflite.calibration_sample(images, rows=300)
    assert sample.shape == (300, 28, 28)
    np.testing.assert_array_equal(sample, tflite.calibration_sample(images, rows=300))
    assert len(tflite.calibration_sample(images[:100], rows=300)) == 100
