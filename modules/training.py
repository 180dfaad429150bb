"""Builds and fits the model under a distribution strategy; returns the model and its history."""

import dataclasses
import logging
import math
import os
import time
from typing import List, Optional

import keras
import numpy as np
import tensorflow as tf

from modules import adversarial, calibration, cnn, custom_loop, privacy
from modules import strategy as strategies
from modules.hparams import HParams

log = logging.getLogger(__name__)


def model_settings(hparams: HParams, strategy: tf.distribute.Strategy, train_examples: int):
    """(steps per epoch, dtype policy) that build_model needs for its schedule and precision.
    Multi-worker rounds the steps down: every worker must run the same number of collective steps."""
    global_batch = hparams.batch_size * strategy.num_replicas_in_sync
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        steps_per_epoch = custom_loop.steps_per_epoch(train_examples, global_batch)
    else:
        steps_per_epoch = math.ceil(train_examples / global_batch)
    # Private training computes in float32: per-example gradients in bfloat16 would be clipped and
    # summed at 8 bits of precision.
    precision = "float32" if hparams.private else hparams.precision
    return steps_per_epoch, strategies.precision_policy(precision, strategy)


class EpochTimer(keras.callbacks.Callback):
    """Wall seconds of each epoch (training and validation): this machine's speed drifts between
    epochs, so throughput is judged per epoch (benchmarks/compare.py), not only over the whole fit.
    Logs one line per epoch with its metrics (the runner's console shows these)."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs
        self.seconds: List[float] = []
        self._started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(round(time.perf_counter() - self._started, 2))
        metrics = " ".join(f"{k}={float(v):.4f}" for k, v in sorted((logs or {}).items()))
        log.info("epoch %d/%d %.0fs: %s", epoch + 1, self.epochs, self.seconds[-1], metrics)


def train(
    train_dataset: tf.data.Dataset,
    eval_dataset: tf.data.Dataset,
    hparams: HParams,
    strategy: tf.distribute.Strategy,
    train_examples: int,
    log_dir: Optional[str] = None,
):
    """(model, history): hparams.ensemble models trained one after another (train_one, seeds seed,
    seed + 1, ...) on the same datasets, as one model averaging their probabilities
    (cnn.averaged); the history holds the members' epochs one after another."""
    members, history = [], {}
    for index in range(hparams.ensemble):
        member_log_dir = os.path.join(log_dir, f"member-{index}") if log_dir and hparams.ensemble > 1 else log_dir
        member_hparams = dataclasses.replace(hparams, seed=hparams.seed + index)
        model, member_history = train_one(
            train_dataset, eval_dataset, member_hparams, strategy, train_examples, member_log_dir
        )
        members.append(model)
        for key, values in member_history.items():
            history.setdefault(key, []).extend(values)
    return cnn.averaged(members), history


def train_one(
    train_dataset: tf.data.Dataset,
    eval_dataset: tf.data.Dataset,
    hparams: HParams,
    strategy: tf.distribute.Strategy,
    train_examples: int,
    log_dir: Optional[str] = None,
):
    """Fits up to hparams.epochs full passes over train_dataset, validating on eval_dataset;
    stops early when eval loss stalls and keeps the best epoch's weights (model.fit path; the
    multi-worker loop runs all epochs). The history also holds each epoch's wall seconds."""
    steps_per_epoch, policy = model_settings(hparams, strategy, train_examples)
    logging.info("precision %s (requested %s)", policy, hparams.precision)
    keras.utils.set_random_seed(hparams.seed)  # weights and dropout; data.datasets seeds the input
    with strategy.scope():
        build = cnn.build_privacy_tutorial_model if hparams.network == "privacy_tutorial" else cnn.build_model
        model = build(hparams, steps_per_epoch, policy)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return model, custom_loop.fit(model, train_dataset, eval_dataset, hparams, strategy, train_examples, log_dir)
    fitted = model
    if hparams.adversarial_share:
        with strategy.scope():
            fitted = adversarial.AdversarialTraining(
                model, hparams.adversarial_share, hparams.adversarial_budget, hparams.adversarial_steps
            )
            cnn.compile_model(fitted, hparams, steps_per_epoch)
    if hparams.private:
        with strategy.scope():
            fitted = privacy.PrivateTraining(
                model,
                hparams.dp_noise_multiplier,
                hparams.dp_l2_clip,
                hparams.batch_size * strategy.num_replicas_in_sync,
            )
            # Loss only, for the validation loss early stopping reads: no training metrics (PrivateTraining).
            cnn.compile_model(fitted, hparams, steps_per_epoch, metrics=None)
    # Eval loss, not accuracy: on 5k images accuracy moves in steps of 0.02% and stalls by chance.
    timer = EpochTimer(hparams.epochs)
    callbacks = [
        timer,
        keras.callbacks.EarlyStopping(
            monitor="val_loss", mode="min", restore_best_weights=True, patience=hparams.early_stopping_patience
        ),
    ]
    if log_dir:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=log_dir, update_freq="epoch"))
    # verbose=0: the EpochTimer logs one line per epoch instead of Keras' own printing.
    history = fitted.fit(
        train_dataset, validation_data=eval_dataset, epochs=hparams.epochs, callbacks=callbacks, verbose=0
    )
    return model, {**history.history, "epoch_seconds": timer.seconds}


def predict_with_labels(model, dataset: tf.data.Dataset):
    """(probabilities [n, 10] float64, labels [n] int) over one pass of a (features, label) dataset."""
    probabilities, labels = [], []
    for x, y in dataset:
        probabilities.append(np.asarray(model(x, training=False), np.float64))
        labels.append(np.reshape(y.numpy(), -1))
    return np.concatenate(probabilities), np.concatenate(labels).astype(int)


def calibrate(model, eval_ds):
    """(temperature, its record): temperature scaling fitted on the eval split, with the expected
    calibration error there before and after (modules/calibration.py)."""
    probabilities, labels = predict_with_labels(model, eval_ds)
    temperature = calibration.fit_temperature(probabilities, labels)
    return temperature, {
        "temperature": round(temperature, 4),
        "fitted_on": f"eval ({len(labels)} examples)",
        "eval_ece_before": round(calibration.expected_calibration_error(probabilities, labels), 5),
        "eval_ece_after": round(
            calibration.expected_calibration_error(calibration.with_temperature(probabilities, temperature), labels), 5
        ),
    }
