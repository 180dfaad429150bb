"""training.train with HParams.ensemble: members trained one after another, served as their mean."""

import numpy as np
import pytest
import tensorflow as tf

from modules import features, strategy, training
from modules.hparams import HParams

KEY = features.transformed_name(features.IMAGE_KEY)


def _pixels(images):
    return (images.reshape(len(images), features.NUM_PIXELS) / 255.0).astype("float32")


def _dataset(images, labels):
    return tf.data.Dataset.from_tensor_slices(({KEY: _pixels(images)}, labels.reshape(-1, 1).astype("int64"))).batch(32)


def _members(model):
    return [layer for layer in model.layers if hasattr(layer, "layers")]


def test_an_ensemble_trains_each_member_and_predicts_their_mean(train_images_labels):
    images, labels = train_images_labels
    train_ds, eval_ds = _dataset(images[:256], labels[:256]), _dataset(images[256:320], labels[256:320])
    hparams = HParams(epochs=2, batch_size=32, ensemble=2, seed=5, precision="float32", distort=0.0)
    model, history = training.train(train_ds, eval_ds, hparams, strategy.choose_strategy("default"), 256)
    members = _members(model)
    assert len(members) == 2 and len(history["loss"]) == len(history["epoch_seconds"]) == 4
    x = {KEY: _pixels(images[:16])}
    by_member = [np.asarray(member(x, training=False)) for member in members]
    assert not np.allclose(by_member[0], by_member[1], atol=1e-3)  # seeds 5 and 6: two different models
    np.testing.assert_allclose(np.asarray(model(x, training=False)), np.mean(by_member, axis=0), atol=1e-6)
    # Compiled (keras_baseline evaluates it): its accuracy metric is the mean prediction's.
    eval_x = {KEY: _pixels(images[256:320])}
    expected = float(np.mean(np.asarray(model(eval_x, training=False)).argmax(axis=1) == labels[256:320]))
    assert model.evaluate(eval_ds, verbose=0)[1] == pytest.approx(expected, abs=1e-6)


def test_one_model_is_returned_as_trained(train_images_labels):
    images, labels = train_images_labels
    train_ds, eval_ds = _dataset(images[:64], labels[:64]), _dataset(images[64:96], labels[64:96])
    hparams = HParams(epochs=1, batch_size=32, precision="float32")
    model, history = training.train(train_ds, eval_ds, hparams, strategy.choose_strategy("default"), 64)
    assert _members(model) == [] and len(history["loss"]) == 1


def _train_tiny(images, labels, seed: int):
    """The Trainer's own steps on 512 real digits: data.batches (shuffled, distorted from the seed),
    then training.train with the model's dropout and initial weights from the same seed."""
    from modules import augment, data

    hparams = HParams(epochs=2, batch_size=64, seed=seed, precision="float32")
    examples = tf.data.Dataset.from_tensor_slices(({KEY: _pixels(images)}, labels.reshape(-1, 1).astype("int64")))
    train_ds = data.batches(examples, 64, shuffle_buffer=512, augmentation=augment.settings(hparams), seed=seed)
    eval_ds = _dataset(images[:64], labels[:64])
    model, _ = training.train(train_ds, eval_ds, hparams, strategy.choose_strategy("default"), len(images))
    return model.get_weights()


def test_the_same_seed_trains_the_same_weights_bit_for_bit_in_one_process(train_images_labels):
    """What "one seed, one model" promises: on one machine and one TensorFlow build, the same seed
    and data give identical weights, whatever the process trained before. Another seed gives
    another model. (Across CPUs or library builds, float rounding in the kernels may differ.)"""
    images, labels = train_images_labels[0][:512], train_images_labels[1][:512]
    first = _train_tiny(images, labels, seed=3)
    _train_tiny(images, labels, seed=4)  # something else in between: no state may leak into the next
    second = _train_tiny(images, labels, seed=3)
    assert len(first) == len(second)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    other = _train_tiny(images, labels, seed=4)
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))
