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


def test_eager_code_gets_the_very_floats_the_transform_graph_gives(transform_output):
    """Benchmarks scale pixels eagerly; the Trainer reads Transform's graph output. A division
    rewritten by the graph optimizer made 126 of the 256 values differ by one float32 step."""
    every_value = np.arange(256, dtype=np.int64).reshape(1, -1)
    raw = {features.IMAGE_KEY: tf.constant(np.resize(every_value, (1, features.NUM_PIXELS)))}
    graph = transform_output.transform_raw_features(raw)[features.transformed_name(features.IMAGE_KEY)].numpy()
    eager = preprocessing.scale_pixels(np.resize(every_value, (1, features.NUM_PIXELS))).numpy()
    np.testing.assert_array_equal(eager, graph)
