"""preprocessing_fn run through tft_beam on real MNIST images."""

import numpy as np
import tensorflow as tf

from modules import features, preprocessing


def test_transform_scales_pixels_and_passes_label(transform_output, few_images):
    images, labels = few_images
    raw = {
        features.IMAGE_KEY: tf.constant(images.reshape(len(images), -1), tf.int64),
        features.LABEL_KEY: tf.constant(labels.reshape(-1, 1), tf.int64),
    }
    out = transform_output.transform_raw_features(raw)
    scaled = out[features.transformed_name(features.IMAGE_KEY)].numpy()
    assert scaled.dtype == np.float32 and scaled.shape == (len(images), features.NUM_PIXELS)
    np.testing.assert_allclose(scaled, images.reshape(len(images), -1) / 255.0, rtol=1e-6)
    assert scaled.min() == 0.0 and scaled.max() == 1.0
    np.testing.assert_array_equal(out[features.transformed_name(features.LABEL_KEY)].numpy().ravel(), labels)


def test_transformed_feature_names(transform_output):
    assert set(transform_output.transformed_feature_spec()) == {
        features.transformed_name(features.IMAGE_KEY),
        features.transformed_name(features.LABEL_KEY),
    }


def test_scale_pixels_is_exact_at_the_ends():
    np.testing.assert_array_equal(preprocessing.scale_pixels(tf.constant([0, 255], tf.int64)).numpy(), [0.0, 1.0])
