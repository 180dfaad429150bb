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


def test_the_noise_has_the_stated_deviation_and_is_divided_by_the_expected_batch():
    summed = [tf.zeros([200_000])]
    generator = tf.random.Generator.from_non_deterministic_state()
    noisy = privacy.noisy_mean(summed, clip=2.0, noise_multiplier=1.5, expected_batch=10, generator=generator)
    assert np.std(noisy[0].numpy()) == pytest.approx(2.0 * 1.5 / 10, rel=0.01) and abs(np.mean(noisy[0])) < 0.002


def test_an_example_with_a_gradient_that_is_not_finite_adds_nothing():
    gradients = [tf.constant([[3.0, 4.0], [np.inf, 0.0], [0.6, 0.8]])]
    summed, _ = privacy.clipped_sum(gradients, clip=1.0)
    np.testing.assert_allclose(summed[0].numpy(), [0.6 + 0.6, 0.8 + 0.8], atol=1e-6)


def test_poisson_batches_sample_each_example_independently_and_anew_each_epoch():
    images = np.arange(1000, dtype=np.float32)[:, None] * np.ones([1, features.NUM_PIXELS], np.float32)
    labels = (np.arange(1000) % 10).reshape(-1, 1)
    dataset = privacy.poisson_batches(images, labels, expected_batch=50)
    epochs = [[x[KEY][:, 0].numpy().astype(int) for x, _ in dataset] for _ in range(2)]
    assert [len(epoch) for epoch in epochs] == [20, 20] and int(dataset.cardinality()) == 20
    sizes = [len(rows) for epoch in epochs for rows in epoch]
    assert len(set(sizes)) > 1 and 30 < np.mean(sizes) < 70  # random sizes around the expected 50
    assert all(len(set(rows)) == len(rows) for epoch in epochs for rows in epoch)  # without replacement
    assert not all(np.array_equal(a, b) for a, b in zip(*epochs))  # not the seed's: new every epoch


def test_a_step_moves_the_weights_by_at_most_the_clip_and_its_noise_is_not_the_seeds(
    private_model, train_images_labels
):
    images, labels = train_images_labels
    x, y = {KEY: tf.constant(_pixels(images[:16]))}, tf.constant(labels[:16].reshape(-1, 1).astype("int64"))

    def one_step(noise_multiplier):
        keras.utils.set_random_seed(0)
        model = cnn.build_privacy_tutorial_model(HParams(), steps_per_epoch=1)
        before = [w.copy() for w in model.get_weights()]
        wrapper = privacy.PrivateTraining(model, noise_multiplier, clip=0.01, expected_batch=16)
        wrapper.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0))
        wrapper.train_on_batch(x, y)
        return [a - b for a, b in zip(model.get_weights(), before)]

    update = one_step(0.0)  # no noise: the mean of 16 clipped gradients
    assert 0 < math.sqrt(sum(float(np.sum(u**2)) for u in update)) <= 0.01 + 1e-6
    first, second = one_step(1.0), one_step(1.0)  # the same seed, the same data
    assert not all(np.allclose(a, b) for a, b in zip(first, second))


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

    hparams = HParams(epochs=2, batch_size=64, distort=0.0, network="privacy_tutorial", private=True, seed=4)
    train_ds = privacy.poisson_batches(_pixels(images[:512]), labels[:512].reshape(-1, 1).astype("int64"), 64)
    model, history = training.train(
        train_ds, dataset(slice(512, 640)), hparams, strategy.choose_strategy("default"), 512
    )
    assert not isinstance(model, privacy.PrivateTraining)
    assert not any("normalization" in type(layer).__name__.lower() for layer in model.layers)
    assert all(layer.dtype_policy.name == "float32" for layer in model.layers)
    # No training loss or accuracy: those, on the training examples without noise, epsilon does not cover.
    assert "loss" not in history and "accuracy" not in history
    assert len(history["val_loss"]) == len(history["epoch_seconds"]) == 2 and np.isfinite(history["val_loss"]).all()
    assert set(history) == {"val_loss", "epoch_seconds", "dp_noise_multiplier"}
    keras.utils.set_random_seed(hparams.seed)
    initial = cnn.build_privacy_tutorial_model(hparams, steps_per_epoch=8).get_weights()
    assert any(not np.allclose(a, b) for a, b in zip(initial, model.get_weights()))
