"""Differentially private training: DP-SGD (Abadi et al. 2016) and the privacy it spends.

Each training step takes every example's own gradient, scales it down to an L2 norm of at most
`clip`, sums them, adds Gaussian noise of standard deviation noise_multiplier x clip to every
coordinate, and divides by the batch size; the optimizer (the model's own, Adam here) applies
that. No example can move the model by more than the clip, and the noise hides whether it
was there. The privacy spent is (epsilon, delta): Google's `dp-accounting` (its Renyi DP
accountant) composes the Poisson-subsampled Gaussian mechanism over every step, with sampling
rate batch / examples, as TensorFlow Privacy's compute_dp_sgd_privacy does; and the training
batches are Poisson samples (poisson_batches), as that accountant assumes.

TensorFlow Privacy itself is not used: its last release (0.9.0) pins NumPy 1.x and
TensorFlow Probability 0.22 (TensorFlow 2.14's), and its Keras optimizers are Keras 2's.

BatchNorm normalizes each example with its batch's statistics, so one example reaches every
other example's gradient and per-example clipping would not bound it: a private model has none
(HParams network "privacy_tutorial": cnn.build_privacy_tutorial_model).
"""

import math
from typing import List, Tuple

import keras
import numpy as np
import tensorflow as tf

from modules import adversarial, features

DELTA = 1e-5  # below 1 / examples (55,000 here), as a meaningful delta must be
# Above this the bound says little: exp(20) is a factor of five hundred million between the odds of
# any outcome with and without one example. A run set up to spend more is refused before training.
MAX_EPSILON = 20.0
# Renyi orders the accountant minimises over: dp-accounting's own default set.
ORDERS = [1 + x / 10.0 for x in range(1, 100)] + list(range(11, 64)) + [128, 256, 512]


def steps(examples: int, batch_size: int, epochs: int) -> int:
    return epochs * math.ceil(examples / batch_size)


def epsilon(
    noise_multiplier: float, batch_size: int, examples: int, epochs: int, delta: float = DELTA, orders=ORDERS
) -> float:
    """The epsilon at delta that DP-SGD spends with these settings, from dp-accounting's RDP accountant."""
    import dp_accounting

    if noise_multiplier <= 0:
        return math.inf
    sampled = dp_accounting.PoissonSampledDpEvent(
        min(1.0, batch_size / examples), dp_accounting.GaussianDpEvent(noise_multiplier)
    )
    accountant = dp_accounting.rdp.RdpAccountant(list(orders))
    accountant.compose(dp_accounting.SelfComposedDpEvent(sampled, steps(examples, batch_size, epochs)))
    return float(accountant.get_epsilon(delta))


def check(noise_multiplier: float, batch_size: int, examples: int, epochs: int) -> float:
    """The epsilon the run will spend; a plain ValueError before training when the settings give no
    privacy worth the name (HParams refuses a multiplier of 0 or a clip of 0 before that)."""
    spent = epsilon(noise_multiplier, batch_size, examples, epochs)
    if spent > MAX_EPSILON:
        raise ValueError(
            f"dp_noise_multiplier {noise_multiplier} with batch {batch_size}, {examples} examples and "
            f"{epochs} epochs spends epsilon {spent:.1f} at delta {DELTA}, above {MAX_EPSILON}: no privacy "
            "worth the name. Raise the noise multiplier, or train fewer epochs or smaller batches"
        )
    return spent


def record(noise_multiplier: float, clip: float, batch_size: int, examples: int, epochs: int) -> dict:
    """The training record's "privacy" (release.json, the model card)."""
    return {
        "epsilon": round(epsilon(noise_multiplier, batch_size, examples, epochs), 3),
        "delta": DELTA,
        "noise_multiplier": noise_multiplier,
        "l2_clip": clip,
        "batch_size": batch_size,
        "examples": examples,
        "epochs": epochs,
        "accountant": "dp-accounting RDP, Poisson-subsampled Gaussian",
    }


def per_example_gradients(model: keras.Model, x: dict, labels) -> Tuple[tf.Tensor, tf.Tensor, List[tf.Tensor]]:
    """(probabilities [b, 10], per-example losses [b], one [b, *shape] gradient per trainable
    variable): every example's own gradient, vectorised over the batch (tf.vectorized_map: about
    9x a plain step here, where tape.jacobian took 450x)."""
    key = features.transformed_name(features.IMAGE_KEY)

    def one(example):
        pixels, label = example
        with tf.GradientTape() as tape:
            probabilities = model({key: pixels[None]}, training=True)
            loss = adversarial.loss(probabilities, label[None])
        return probabilities[0], loss[0], tape.gradient(loss, model.trainable_variables)

    return tf.vectorized_map(one, (x[key], labels))


def clipped_sum(gradients: List[tf.Tensor], clip: float) -> Tuple[List[tf.Tensor], tf.Tensor]:
    """(the sum over the batch of each example's gradient scaled to an L2 norm of at most clip, over
    all variables together; each example's norm before clipping [b]). An example whose gradient
    is not finite contributes nothing (inf x 0 would make the whole sum NaN)."""
    finite = tf.reduce_all(
        tf.stack([tf.reduce_all(tf.math.is_finite(tf.reshape(g, [tf.shape(g)[0], -1])), axis=1) for g in gradients]),
        axis=0,
    )
    gradients = [tf.where(tf.reshape(finite, [-1] + [1] * (len(g.shape) - 1)), g, tf.zeros_like(g)) for g in gradients]
    squares = [tf.reduce_sum(tf.reshape(tf.square(g), [tf.shape(g)[0], -1]), axis=1) for g in gradients]
    norms = tf.sqrt(tf.add_n(squares))
    scale = tf.minimum(1.0, clip / tf.maximum(norms, 1e-12))
    summed = [
        tf.reduce_sum(g * tf.reshape(tf.cast(scale, g.dtype), [-1] + [1] * (len(g.shape) - 1)), axis=0)
        for g in gradients
    ]
    return summed, norms


def noisy_mean(
    summed: List[tf.Tensor], clip: float, noise_multiplier: float, expected_batch: int, generator: tf.random.Generator
) -> List[tf.Tensor]:
    """(clipped sum + N(0, (noise_multiplier x clip)^2) per coordinate) / the expected batch size (a
    Poisson sample's size is itself random, and dividing by it would depend on the data). The
    generator must not be reproducible from anything published: see PrivateTraining."""
    return [
        (s + generator.normal(tf.shape(s), stddev=noise_multiplier * clip, dtype=s.dtype)) / float(expected_batch)
        for s in summed
    ]


def poisson_batches(
    images: np.ndarray, labels: np.ndarray, expected_batch: int, augmentation=None, seed: int = 0
) -> tf.data.Dataset:
    """An epoch of ceil(n / expected_batch) training batches, each a Poisson sample: every example
    in independently with probability expected_batch / n, drawn from the operating system's
    entropy rather than the run's seed (a published seed would make the sample public, and the
    accountant's subsampling amplification rests on the sample being secret). An empty sample
    (probability about e^-expected_batch) would be a batch of none. augmentation distorts the
    batches as in training without privacy (seeded: the distortions need no secrecy)."""
    from modules import augment

    count = len(labels)
    rate, batches = expected_batch / count, math.ceil(count / expected_batch)
    key = features.transformed_name(features.IMAGE_KEY)

    def samples():
        rng = np.random.default_rng()  # new entropy every epoch
        for _ in range(batches):
            yield np.flatnonzero(rng.random(count) < rate)

    pixels, targets = tf.constant(images, tf.float32), tf.constant(labels)
    dataset = tf.data.Dataset.from_generator(samples, output_signature=tf.TensorSpec([None], tf.int64))
    dataset = dataset.map(lambda rows: ({key: tf.gather(pixels, rows)}, tf.gather(targets, rows)))
    if augmentation is not None:
        dataset = augment.distorted(dataset, augmentation, seed)
    return dataset.apply(tf.data.experimental.assert_cardinality(batches)).prefetch(tf.data.AUTOTUNE)


class PrivateTraining(keras.Model):
    """Wraps a compiled model without BatchNorm for model.fit on poisson_batches: each training step
    is DP-SGD's (per-example gradients, clipped, summed, noised, divided by the expected batch)
    applied by this wrapper's optimizer. The noise comes from a generator seeded by the operating
    system, not by HParams.seed: noise anyone could replay from the model card would hide nothing.
    The step reports no training loss or accuracy (those, computed on the training examples
    without noise, are not covered by epsilon); validation is the plain model's on the eval split.
    The wrapped model holds the weights; it is what gets exported."""

    def __init__(self, model: keras.Model, noise_multiplier: float, clip: float, expected_batch: int):
        super().__init__()
        self.inner = model
        self.noise_multiplier, self.clip, self.expected_batch = (
            float(noise_multiplier),
            float(clip),
            int(expected_batch),
        )
        self.noise = tf.random.Generator.from_non_deterministic_state()

    def call(self, inputs, training=False):
        return self.inner(inputs, training=training)

    def train_step(self, data):
        x, labels = data[0], data[1]
        _, _, gradients = per_example_gradients(self.inner, x, labels)
        summed, _ = clipped_sum(gradients, self.clip)
        noisy = noisy_mean(summed, self.clip, self.noise_multiplier, self.expected_batch, self.noise)
        self.optimizer.apply_gradients(zip(noisy, self.inner.trainable_variables))
        # Keras needs a value; anything computed from the training examples would need its own noise.
        return {"dp_noise_multiplier": tf.constant(self.noise_multiplier)}
