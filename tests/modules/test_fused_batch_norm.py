"""The fused batch norm layer computes what Keras's BatchNormalization computes."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from modules.fused_batch_norm import FusedBatchNorm


@pytest.mark.parametrize("shape", [(16, 7, 7, 8), (32, 12)])
def test_same_outputs_and_moving_statistics_as_keras(shape):
    x = tf.constant(np.random.default_rng(0).normal(2.0, 3.0, shape).astype(np.float32))
    fused, reference = FusedBatchNorm(momentum=0.9), keras.layers.BatchNormalization(momentum=0.9)
    fused.build(shape), reference.build(shape)
    for layer in (fused, reference):  # the same non-trivial scale and shift in both
        layer.gamma.assign(np.linspace(0.5, 1.5, shape[-1]))
        layer.beta.assign(np.linspace(-1.0, 1.0, shape[-1]))
    np.testing.assert_allclose(fused(x, training=True), reference(x, training=True), atol=1e-4)
    np.testing.assert_allclose(fused.moving_mean.numpy(), reference.moving_mean.numpy(), rtol=1e-5)
    n = np.prod(shape[:-1])  # the kernel keeps the unbiased variance: n / (n - 1) of Keras's step
    keras_step = reference.moving_variance.numpy() - 0.9
    np.testing.assert_allclose(fused.moving_variance.numpy() - 0.9, keras_step * n / (n - 1), rtol=1e-4)
    fused.moving_variance.assign(reference.moving_variance)  # inference: the same moving statistics
    np.testing.assert_allclose(fused(x, training=False), reference(x, training=False), atol=1e-4)
    assert not np.allclose(fused(x, training=False), fused(x, training=True), atol=1e-2)  # inference uses them


def test_gradients_match_keras():
    x = tf.constant(np.random.default_rng(1).normal(size=(8, 5, 5, 4)).astype(np.float32))
    weights = tf.constant(np.random.default_rng(2).normal(size=(8, 5, 5, 4)).astype(np.float32))
    grads = []
    for layer in (FusedBatchNorm(), keras.layers.BatchNormalization()):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x, training=True) * weights)
        grads.append(tape.gradient(loss, [x, layer.gamma, layer.beta]))
    for fused, reference in zip(*grads):
        np.testing.assert_allclose(fused, reference, atol=1e-3)


def test_bfloat16_compute_keeps_float32_variables():
    layer = FusedBatchNorm(dtype="mixed_bfloat16")
    y = layer(tf.ones([4, 3, 3, 2]), training=True)
    assert y.dtype == tf.bfloat16
    assert layer.moving_mean.dtype == "float32" and layer.gamma.dtype == "float32"
