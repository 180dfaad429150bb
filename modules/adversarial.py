"""Adversarial examples on the Transform's [0, 1] pixel scale: projected gradient descent (PGD,
Madry et al. 2018) under an L-infinity budget, and the batches of PGD adversarial training.

pgd is plain TensorFlow: the Trainer runs it inside its training step (HParams.adversarial_share),
and the release runs it on the served SavedModel as the cross-check of the Adversarial Robustness
Toolbox's attacks (components/release/adversarial.py)."""

from typing import Callable

import keras
import tensorflow as tf

from modules import features
from modules.hparams import check_budget

# A probability this small stands for 0 in the loss's log: the gradient of -log p stays finite.
TINY = 1e-30
# Madry et al.'s step: 2.5 budgets spread over the steps, so a path can cross the L-infinity box
# and come back; smaller steps stall at the start, larger ones bounce between its corners.
STEP_MULTIPLE = 2.5

Predict = Callable[[tf.Tensor], tf.Tensor]  # [n, 784] pixels in [0, 1] -> probabilities [n, 10]


def step_size(budget: float, steps: int) -> float:
    return STEP_MULTIPLE * budget / steps


def loss(probabilities: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """Cross-entropy per example, from probabilities (the models here end in a softmax)."""
    labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
    picked = tf.gather(tf.cast(probabilities, tf.float32), labels, axis=1, batch_dims=1)
    return -tf.math.log(tf.maximum(picked, TINY))


def pgd(predict: Predict, x: tf.Tensor, labels: tf.Tensor, budget: float, steps: int, start: tf.Tensor) -> tf.Tensor:
    """x moved to raise predict's loss on labels: from x + start (uniform noise in [-budget, budget],
    the random start), `steps` signed-gradient steps of step_size, each projected back into the
    budget's box around x and into [0, 1]. steps=1 from a zero start is FGSM with the step's size."""
    x = tf.cast(x, tf.float32)
    size = step_size(budget, steps)
    low, high = tf.maximum(x - budget, 0.0), tf.minimum(x + budget, 1.0)
    adversarial = tf.clip_by_value(x + start, low, high)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            tape.watch(adversarial)
            total = tf.reduce_sum(loss(predict(adversarial), labels))
        gradient = tape.gradient(total, adversarial)
        adversarial = tf.clip_by_value(adversarial + size * tf.sign(gradient), low, high)
    return tf.stop_gradient(adversarial)


def random_start(shape, budget: float, seed=None) -> tf.Tensor:
    return tf.random.uniform(shape, -budget, budget, seed=seed)


def mixed_batch(model: keras.Model, x: dict, labels: tf.Tensor, share: float, budget: float, steps: int) -> dict:
    """The training batch with its first round(share * size) images replaced by their PGD examples
    against the model as it is, in inference mode: BatchNorm's moving statistics, not the batch's,
    and none written by the attack (early in training those statistics lag the weights, so the
    first epochs' attacks are weaker than the later ones). The labels stay: the model learns the
    right class for the attacked picture. The rest of the batch stays clean, so clean accuracy is
    still trained for."""
    key = features.transformed_name(features.IMAGE_KEY)
    images = tf.cast(x[key], tf.float32)
    count = tf.cast(tf.round(share * tf.cast(tf.shape(images)[0], tf.float32)), tf.int32)
    head = images[:count]

    def predict(pixels):
        return model({key: pixels}, training=False)

    attacked = tf.cond(  # a share that rounds to no image (a last batch of one) attacks nothing
        count > 0,
        lambda: pgd(predict, head, labels[:count], budget, steps, random_start(tf.shape(head), budget)),
        lambda: head,
    )
    return {**x, key: tf.concat([tf.cast(attacked, x[key].dtype), x[key][count:]], axis=0)}


class AdversarialTraining(keras.Model):
    """Wraps a compiled model for model.fit: each training step first replaces a share of the batch
    by PGD examples (mixed_batch), then takes the model's own step on it. Validation is clean.
    The wrapped model holds the weights; it is what gets exported."""

    def __init__(self, model: keras.Model, share: float, budget: float, steps: int):
        super().__init__()
        self.inner = model
        self.share, self.budget, self.steps = float(share), check_budget(budget), int(steps)

    def call(self, inputs, training=False):
        return self.inner(inputs, training=training)

    def train_step(self, data):
        x, labels = data[0], data[1]
        return super().train_step((mixed_batch(self.inner, x, labels, self.share, self.budget, self.steps), labels))
