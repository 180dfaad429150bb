"""modules/privacy.py: DP-SGD's per-example clipping and noise, and the epsilon it spends."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from modules import cnn, features, privacy, strategy, training
from modules.hparams import HParams

KEY = features.transformed_name(features.IMAGE_KEY)
TUTORIAL = {"network": "privacy_tutorial", "private": True}


def _pixels(images):
    return (images.reshape(len(images), features.NUM_PIXELS) / 255.0).astype("float32")


@pytest.fixture(scope="module")
def private_model():
    keras.utils.set_random_seed(3)
    return cnn.build_privacy_tutorial_model(HParams(), steps_per_epoch=10)


def test_clipping_matches_each_examples_own_gradient_taken_alone(private_model, train_images_labels):
    images, labels = train_images_labels
    x, y = _pixels(images[:6]), labels[:6].reshape(-1, 1).astype("int64")
    _, _, gradients = privacy.per_example_gradients(private_model, {KEY: x}, y)
    clip = 0.5
    summed, norms = privacy.clipped_sum(gradients, clip)
    # Directly: one example at a time, its own tape, its global norm, scaled in NumPy.
    expected = [np.zeros(v.shape, np.float64) for v in private_model.trainable_variables]
    for i in range(len(x)):
        with tf.GradientTape() as tape:
            p = private_model({KEY: x[i : i + 1]}, training=True)
            loss = -tf.math.log(p[0, int(y[i, 0])])
        own = [g.numpy().astype(np.float64) for g in tape.gradient(loss, private_model.trainable_variables)]
        norm = math.sqrt(sum(float(np.sum(g**2)) for g in own))
        assert norms[i].numpy() == pytest.approx(norm, rel=1e-4)
        for total, g in zip(expected, own):
            total += g * min(1.0, clip / norm)
    assert (norms.numpy() > clip).any()  # the clip bites on at least one example here
    for got, want in zip(summed, expected):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-6)


def test_the_noise_has_the_stated_deviation_and_is_divided_by_the_batch():
    summed = [tf.zeros([200_000])]
    noisy = privacy.noisy_mean(summed, clip=2.0, noise_multiplier=1.5, batch_size=10)[0].numpy()
    assert np.std(noisy) == pytest.approx(2.0 * 1.5 / 10, rel=0.01) and abs(np.mean(noisy)) < 0.002


def _independent_epsilon(noise, q, steps, delta, orders):
    """RDP of the Poisson-sampled Gaussian at integer orders (Mironov, Talwar and Zhang 2019,
    section 3.3), composed over the steps and converted to (epsilon, delta) with Canonne, Kamath
    and Steinke's bound (2020, proposition 12), written from the papers, not from dp-accounting."""
    best = math.inf
    for a in orders:
        terms = [
            math.lgamma(a + 1)
            - math.lgamma(k + 1)
            - math.lgamma(a - k + 1)
            + (a - k) * math.log1p(-q)
            + k * math.log(q)
            + (k * k - k) / (2 * noise**2)
            for k in range(a + 1)
        ]
        top = max(terms)
        rdp = steps * (top + math.log(sum(math.exp(t - top) for t in terms))) / (a - 1)
        best = min(best, rdp + math.log1p(-1 / a) - math.log(delta * a) / (a - 1))
    return best


def test_the_accountants_epsilon_matches_an_independent_computation():
    # TensorFlow Privacy's tutorial setting: 60,000 examples, batch 256, noise 1.1, 60 epochs.
    orders = range(2, 129)
    expected = _independent_epsilon(1.1, 256 / 60000, privacy.steps(60000, 256, 60), 1e-5, orders)
    assert privacy.epsilon(1.1, 256, 60000, 60, orders=orders) == pytest.approx(expected, rel=1e-6)
    # The fractional orders besides find a slightly tighter bound, never a looser one.
    assert expected * 0.95 < privacy.epsilon(1.1, 256, 60000, 60) <= expected


def test_more_noise_spends_less_and_no_noise_spends_everything():
    assert privacy.epsilon(2.0, 256, 55000, 15) < privacy.epsilon(1.0, 256, 55000, 15)
    assert privacy.epsilon(0.0, 256, 55000, 15) == math.inf


def test_a_run_that_would_spend_too_much_is_refused_in_words():
    with pytest.raises(ValueError, match=r"dp_noise_multiplier 0.3 with batch 256, 55000 examples and 60 epochs"):
        privacy.check(0.3, 256, 55000, 60)
    assert privacy.check(1.1, 256, 55000, 15) < privacy.MAX_EPSILON


@pytest.mark.parametrize(
    "values, message",
    [
        ({"private": True}, r"private training needs network='privacy_tutorial': the CNN's BatchNorm"),
        ({**TUTORIAL, "dp_noise_multiplier": 0.0}, r"dp_noise_multiplier 0.0 adds no noise: epsilon would be"),
        ({**TUTORIAL, "dp_l2_clip": 0.0}, r"dp_l2_clip 0.0 must be above 0"),
        ({**TUTORIAL, "adversarial_share": 0.5}, r"private training trains one model without adversarial"),
        ({**TUTORIAL, "ensemble": 2}, r"private training trains one model"),
    ],
)
def test_private_settings_that_cannot_work_are_refused_before_training(values, message):
    with pytest.raises(ValueError, match=message):
        HParams(**values)


def test_private_training_trains_the_network_without_batch_norm(train_images_labels):
    images, labels = train_images_labels

    def dataset(rows):
        return tf.data.Dataset.from_tensor_slices(
            ({KEY: _pixels(images[rows])}, labels[rows].reshape(-1, 1).astype("int64"))
        ).batch(64)

    hparams = HParams(
        epochs=2, batch_size=64, precision="float32", distort=0.0, network="privacy_tutorial", private=True, seed=4
    )
    model, history = training.train(
        dataset(slice(0, 512)), dataset(slice(512, 640)), hparams, strategy.choose_strategy("default"), 512
    )
    assert not isinstance(model, privacy.PrivateTraining)
    assert not any("normalization" in type(layer).__name__.lower() for layer in model.layers)
    assert len(history["loss"]) == 2 and np.isfinite(history["loss"]).all() and "accuracy" in history
    keras.utils.set_random_seed(hparams.seed)
    initial = cnn.build_privacy_tutorial_model(hparams, steps_per_epoch=8).get_weights()
    assert any(not np.allclose(a, b) for a, b in zip(initial, model.get_weights()))
