"""Batch normalization as one fused TensorFlow kernel (FusedBatchNormV3, oneDNN on this CPU).

Keras 3's BatchNormalization builds batch norm from a dozen elementwise ops and casts (moments in
float32, then scale and shift): in the Trainer's profile (benchmarks/trainer_profile.py) those
took 42% of the compute threads' op time, as much as every convolution together. This layer does
the same arithmetic with TensorFlow's fused kernel, forward and backward, for NHWC images and for
[batch, units] features (seen as 1 x 1 images). Same variables and defaults as Keras's layer
(momentum, epsilon 1e-3, gamma and beta, moving mean and variance). One difference: in training
the kernel updates the moving variance with the batch's unbiased (n - 1) variance, Keras with
the biased one: a relative difference of 1/n, n being batch x height x width (>= 128 here).
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="mnist_tfx")
class FusedBatchNorm(keras.layers.Layer):
    def __init__(self, momentum: float = 0.99, epsilon: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        self.momentum = momentum
        self.epsilon = epsilon

    def build(self, input_shape):
        channels = (int(input_shape[-1]),)
        self.gamma = self.add_weight(shape=channels, initializer="ones", name="gamma", dtype="float32", autocast=False)
        self.beta = self.add_weight(shape=channels, initializer="zeros", name="beta", dtype="float32", autocast=False)
        self.moving_mean = self.add_weight(
            shape=channels, initializer="zeros", name="moving_mean", dtype="float32", trainable=False, autocast=False
        )
        self.moving_variance = self.add_weight(
            shape=channels, initializer="ones", name="moving_variance", dtype="float32", trainable=False, autocast=False
        )

    def call(self, inputs, training=None):
        flat = len(inputs.shape) == 2
        x = tf.reshape(inputs, [-1, 1, 1, inputs.shape[-1]]) if flat else inputs
        x = tf.cast(x, self.compute_dtype)
        training = bool(training)
        y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            x,
            self.gamma,
            self.beta,
            mean=self.moving_mean,
            variance=self.moving_variance,
            epsilon=self.epsilon,
            is_training=training,
            exponential_avg_factor=1.0 - self.momentum if training else 1.0,
        )
        if training:  # the kernel returns the updated moving statistics
            self.moving_mean.assign(mean)
            self.moving_variance.assign(variance)
        return tf.reshape(y, [-1, inputs.shape[-1]]) if flat else y

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}
