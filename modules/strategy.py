"""Chooses the tf.distribute strategy for this machine (no tfx, no Keras)."""
import tensorflow as tf


def choose_strategy() -> tf.distribute.Strategy:
    """MirroredStrategy when more than one GPU is visible, the default strategy otherwise."""
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()
