"""Integrated gradients (Sundararajan, Taly and Yan, 2017) in TensorFlow ops, so the SavedModel
answers "which pixels drove this answer" itself and any TF Serving serves it.

For an image x, a baseline b (black: MNIST's background) and the served probability F of a target
class, pixel i's attribution is (x_i - b_i) times the mean of dF/dx_i along the straight path
from b to x. The mean is the trapezoidal rule over STEPS intervals, every point of one image's
path in one batch through the model. The attributions of an image add up to F(x) - F(b)
(completeness), up to the rule's error, which falls with the square of STEPS where F is smooth
and with STEPS where a ReLU switches on the path.
"""

from typing import Callable

import tensorflow as tf

# Path intervals, the export setting: at 64 the test model's maps of 16 MNIST test digits add up to
# within 0.007 of the probability's rise (tests/modules/test_attributions.py allows 1/64), and a row
# costs a forward and a backward pass over a batch of 65 images (benchmarks/explain_cost.py).
STEPS = 64


def path_weights(steps: int) -> "tuple[tf.Tensor, tf.Tensor]":
    """(alphas [steps + 1] from 0 to 1, the trapezoidal rule's weights [steps + 1], summing to 1)."""
    alphas = tf.linspace(0.0, 1.0, steps + 1)
    weights = tf.concat([[0.5], tf.ones([steps - 1]), [0.5]], 0) / steps
    return alphas, weights


def integrated_gradients(
    probability: Callable[[tf.Tensor], tf.Tensor], x: tf.Tensor, baseline: tf.Tensor, target: tf.Tensor, steps: int
) -> tf.Tensor:
    """One image's attributions. probability: [n, ...] inputs -> [n, classes] probabilities; x and
    baseline: one input [...]; target: the class (int). Returns float32 [...], x's shape."""
    alphas, weights = path_weights(steps)
    shape = tf.concat([[steps + 1], tf.ones([tf.rank(x)], tf.int32)], 0)
    path = baseline[tf.newaxis] + tf.reshape(alphas, shape) * (x - baseline)[tf.newaxis]
    with tf.GradientTape() as tape:
        tape.watch(path)
        chosen = tf.gather(probability(path), target, axis=1)
    gradients = tape.gradient(chosen, path)
    mean_gradient = tf.tensordot(weights, gradients, axes=1)
    return (x - baseline) * mean_gradient


def saved_model_explainer(saved_model) -> Callable:
    """A function: (uint8 images [n, 28, 28], classes [n]) -> attributions float32 [n, 28, 28], through
    a served SavedModel's explain_images_for signature (KeyError: the model has none). saved_model:
    its directory, or the model tf.saved_model.load returned (loaded once for several users)."""
    from modules import signatures

    loaded = tf.saved_model.load(saved_model) if isinstance(saved_model, str) else saved_model
    signature = loaded.signatures[signatures.EXPLAIN_TARGETS_SIGNATURE]

    def explain(images, classes):
        out = signature(images=tf.constant(images, tf.uint8), targets=tf.constant(classes, tf.int64))
        return out[signatures.ATTRIBUTIONS_OUTPUT].numpy()

    return explain


def batch_integrated_gradients(probability, xs: tf.Tensor, baseline: tf.Tensor, targets: tf.Tensor, steps: int):
    """integrated_gradients for each row of xs [batch, ...] and targets [batch], one row at a time
    (a row's path is one batch of steps + 1 inputs, so memory does not grow with the batch)."""
    return tf.map_fn(
        lambda row: integrated_gradients(probability, row[0], baseline, row[1], steps),
        (xs, targets),
        fn_output_signature=tf.TensorSpec(xs.shape[1:], tf.float32),
        parallel_iterations=1,
    )
