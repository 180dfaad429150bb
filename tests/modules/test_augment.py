"""The training distortions on real digits: what each does, how many images get one, and that a
seed fixes them."""

import numpy as np
import tensorflow as tf

from modules import augment, features

KEY = features.transformed_name(features.IMAGE_KEY)
NONE = augment.Settings(translate=0.0, rotate_degrees=0.0, zoom=0.0, distort=0.0)


def _images(images):
    return tf.constant(images.reshape(-1, 28, 28, 1) / 255.0, tf.float32)


def _distort(images, settings, seed=(1, 2)):
    return augment.distort(_images(images), tf.constant(seed, tf.int64), settings).numpy()


def test_no_distortion_is_identity(few_images):
    images, _ = few_images
    np.testing.assert_allclose(_distort(images, NONE)[..., 0], images / 255.0, atol=1e-5)


def test_geometry_moves_every_digit_and_keeps_range(few_images):
    images, _ = few_images
    out = _distort(images, NONE._replace(translate=0.1, rotate_degrees=15.0, zoom=0.1))
    assert out.shape == (64, 28, 28, 1) and out.min() >= 0.0 and out.max() <= 1.0
    moved = np.abs(out[..., 0] - images / 255.0).mean(axis=(1, 2))
    assert (moved > 0.01).all()
    # The ink stays on the page, roughly: a shift of at most 2.8 px and a scale of 0.9-1.1.
    ink = out.sum(axis=(1, 2, 3)) / (images / 255.0).sum(axis=(1, 2))
    assert 0.7 < ink.min() and ink.max() < 1.3


def test_pen_and_scan_distortions_do_what_they_say(few_images):
    images, _ = few_images
    x = _images(images)
    seeds = tf.random.experimental.stateless_split(tf.constant([3, 4], tf.int64), 10)
    thicker, thinner, low, blurred, noisy = (
        v.numpy() for v in augment._pen_and_scan(x, seeds, NONE._replace(distort=1.0))
    )
    ink = x.numpy().sum()
    assert thicker.sum() > 1.5 * ink and thinner.sum() < 0.8 * ink
    assert abs(blurred.sum() - ink) < 0.05 * ink  # blur spreads ink, keeps it
    assert np.abs(blurred - x.numpy()).mean() > 0.02 and np.abs(low - x.numpy()).mean() > 0.02
    assert 0.0 < np.std(noisy - x.numpy()) < NONE.noise_std


def test_the_distorted_share_and_the_seed(few_images):
    images, _ = few_images
    many = np.concatenate([images] * 8)  # 512 digits
    settings = NONE._replace(distort=0.5)
    out = _distort(many, settings)
    changed = (np.abs(out[..., 0] - many / 255.0).max(axis=(1, 2)) > 1e-3).mean()
    assert 0.4 < changed < 0.6
    np.testing.assert_array_equal(out, _distort(many, settings))  # a seed gives the same images
    assert not np.array_equal(out, _distort(many, settings, seed=(1, 3)))


def test_augmenter_keeps_labels_and_the_flat_image(few_images):
    images, labels = few_images
    batch = ({KEY: tf.constant(images.reshape(64, -1) / 255.0, tf.float32)}, tf.constant(labels.reshape(-1, 1)))
    dataset = augment.seeded(tf.data.Dataset.from_tensors(batch), seed=7).map(
        augment.augmenter(NONE._replace(translate=0.1))
    )
    ((out, out_labels),) = list(dataset)
    assert out[KEY].shape == (64, features.NUM_PIXELS)
    np.testing.assert_array_equal(out_labels.numpy(), labels.reshape(-1, 1))
    # The images went through the distortion: shifted digits, not the input passed on.
    moved = np.abs(out[KEY].numpy() - images.reshape(64, -1) / 255.0).mean(axis=1)
    assert (moved > 1e-3).mean() > 0.9, moved


def test_seeded_batches_get_new_seeds_each_epoch_and_the_same_ones_each_run():
    def epochs(dataset):
        return [[s.numpy().tolist() for _, s in dataset] for _ in range(2)]

    first, second = (
        epochs(augment.seeded(tf.data.Dataset.range(3), 5)),
        epochs(augment.seeded(tf.data.Dataset.range(3), 5)),
    )
    assert first[0] != first[1] and first == second
    assert epochs(augment.seeded(tf.data.Dataset.range(3), 6)) != first
