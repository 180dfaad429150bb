"""modules/adversarial.py: PGD on the [0, 1] scale, and the training step that mixes its examples in."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from modules import adversarial, cnn, features, strategy, training
from modules.hparams import HParams

KEY = features.transformed_name(features.IMAGE_KEY)


def _pixels(images):
    return (images.reshape(len(images), features.NUM_PIXELS) / 255.0).astype("float32")


def _linear(weights):
    """softmax(x W): a model whose loss gradient has a known sign."""
    w = tf.constant(weights, tf.float32)
    return lambda x: tf.nn.softmax(tf.matmul(x, w))


def test_fgsm_on_a_linear_model_moves_each_pixel_by_the_budget_against_the_label():
    # Two pixels, two classes: class 0 reads pixel 0, class 1 pixel 1. Against label 0 the loss
    # rises as pixel 0 falls and pixel 1 rises.
    predict = _linear([[4.0, 0.0], [0.0, 4.0]])
    x = tf.constant([[0.5, 0.5], [0.05, 0.98]])
    moved = adversarial.pgd(predict, x, tf.constant([0, 0]), 0.1, steps=1, start=tf.zeros_like(x))
    # One step of 2.5 budgets, projected back into the box and into [0, 1].
    np.testing.assert_allclose(moved.numpy(), [[0.4, 0.6], [0.0, 1.0]], atol=1e-6)


def test_pgd_stays_in_the_budget_and_in_range_and_breaks_a_trained_cnn(trained_model, test_images_labels):
    images, labels = test_images_labels
    x, y = _pixels(images[:64]), labels[:64]

    def predict(pixels):
        return trained_model({KEY: pixels}, training=False)

    clean = np.mean(np.argmax(predict(x), axis=1) == y)
    start = adversarial.random_start(x.shape, 0.2, seed=1)
    attacked = adversarial.pgd(predict, x, y, 0.2, steps=10, start=start).numpy()
    assert np.abs(attacked - x).max() <= 0.2 + 1e-6 and attacked.min() >= 0.0 and attacked.max() <= 1.0
    under_attack = np.mean(np.argmax(predict(attacked), axis=1) == y)
    # A one-epoch CNN without defences: most of its right answers fall at 0.2.
    assert clean > 0.8 and under_attack < clean / 2, (clean, under_attack)


def test_a_mixed_batch_attacks_its_share_and_keeps_the_rest_and_the_labels(trained_model, test_images_labels):
    images, labels = test_images_labels
    x = {KEY: tf.constant(_pixels(images[:10]))}
    mixed = adversarial.mixed_batch(trained_model, x, tf.constant(labels[:10].reshape(-1, 1)), 0.3, 0.1, steps=3)
    changed = np.abs(mixed[KEY].numpy() - x[KEY].numpy()).max(axis=1)
    assert (changed[:3] > 0).all() and (changed[3:] == 0).all()
    assert changed.max() <= 0.1 + 1e-6
    # A share that rounds to no image (a last batch of one) leaves the batch as it is.
    one = {KEY: x[KEY][:1]}
    same = adversarial.mixed_batch(trained_model, one, tf.constant(labels[:1].reshape(-1, 1)), 0.3, 0.1, steps=3)
    np.testing.assert_array_equal(same[KEY].numpy(), one[KEY].numpy())


def test_adversarial_training_trains_the_model_it_wraps_and_returns_it(train_images_labels):
    images, labels = train_images_labels

    def dataset(rows):
        return tf.data.Dataset.from_tensor_slices(
            ({KEY: _pixels(images[rows])}, labels[rows].reshape(-1, 1).astype("int64"))
        ).batch(32)

    hparams = HParams(
        epochs=1,
        batch_size=32,
        precision="float32",
        distort=0.0,
        dropout=0.0,
        adversarial_share=0.5,
        adversarial_steps=2,
    )
    model, history = training.train(
        dataset(slice(0, 128)), dataset(slice(128, 160)), hparams, strategy.choose_strategy("default"), 128
    )
    assert not isinstance(model, adversarial.AdversarialTraining)
    assert len(history["loss"]) == 1 and np.isfinite(history["loss"][0]) and "val_accuracy" in history
    # The same seed, data and steps without the attack train other weights: the attack was trained on.
    plain, _ = training.train(
        dataset(slice(0, 128)),
        dataset(slice(128, 160)),
        dataclasses.replace(hparams, adversarial_share=0.0),
        strategy.choose_strategy("default"),
        128,
    )
    keras.utils.set_random_seed(hparams.seed)
    initial = cnn.build_model(hparams, steps_per_epoch=4).get_weights()
    assert any(not np.allclose(a, b) for a, b in zip(initial, model.get_weights()))
    assert any(not np.allclose(a, b, atol=1e-4) for a, b in zip(plain.get_weights(), model.get_weights()))


@pytest.mark.parametrize(
    "values, message",
    [
        ({"adversarial_share": 0.5, "adversarial_budget": 1.5}, r"adversarial_budget 1.5 is outside \(0, 1\]"),
        ({"adversarial_share": 0.5, "adversarial_budget": 0.0}, r"adversarial_budget 0.0 is outside \(0, 1\]"),
        ({"adversarial_share": 1.2}, r"adversarial_share 1.2 is a share of each batch: 0 to 1"),
        ({"adversarial_share": 0.5, "adversarial_steps": 0}, r"adversarial_steps must be at least 1"),
    ],
)
def test_an_attack_setting_outside_its_range_is_refused_before_training(values, message):
    with pytest.raises(ValueError, match=message):
        HParams(**values)
