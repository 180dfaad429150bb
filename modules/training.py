"""Builds and fits the model under a distribution strategy; returns the model and its history."""
from typing import Optional

import keras
import tensorflow as tf

from modules import cnn
from modules.hparams import HParams


def train(train_dataset: tf.data.Dataset, eval_dataset: tf.data.Dataset, hparams: HParams,
          strategy: tf.distribute.Strategy, log_dir: Optional[str] = None):
    """Fits hparams.epochs full passes over train_dataset, validating on eval_dataset."""
    with strategy.scope():
        model = cnn.build_model(hparams)
    callbacks = []
    if log_dir:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=log_dir, update_freq="epoch"))
    # verbose=2: one line per epoch in the Trainer log, no progress bars.
    history = model.fit(train_dataset, validation_data=eval_dataset, epochs=hparams.epochs,
                        callbacks=callbacks, verbose=2)
    return model, history.history
