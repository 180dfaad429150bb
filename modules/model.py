"""Trainer's entry point: translates TFX's FnArgs into calls of the plain functions beside it."""

import logging
import os
import time

from modules import data, export, privacy, strategy, training
from modules.hparams import from_custom_config


# Trainer calls this (dotted path modules.model.run_fn).
def run_fn(fn_args) -> None:
    hparams = from_custom_config(fn_args.custom_config, getattr(fn_args, "hyperparameters", None))
    logging.info("training with %s", hparams)
    # First: MultiWorkerMirroredStrategy must exist before TensorFlow's runtime starts.
    dist = strategy.choose_strategy(hparams.strategy, hparams.tpu)
    tf_transform_output, train_ds, eval_ds, train_examples = data.transformed_datasets(
        fn_args.train_files, fn_args.eval_files, fn_args.transform_graph_path, hparams, dist.num_replicas_in_sync
    )
    if hparams.private:  # before training: settings that spend too much privacy are refused here
        if dist.num_replicas_in_sync != 1:
            raise ValueError(f"private training runs on one replica; {type(dist).__name__} has more")
        privacy.check(hparams.dp_noise_multiplier, hparams.batch_size, train_examples, hparams.epochs)
    started = time.time()
    model, history = training.train(train_ds, eval_ds, hparams, dist, train_examples, log_dir=fn_args.model_run_dir)
    fit_seconds = round(time.time() - started, 1)
    temperature, calibrated = training.calibrate(model, eval_ds)
    record = {
        "hparams": hparams.to_dict(),
        "train_examples": train_examples,
        "strategy": type(dist).__name__,
        "fit_seconds": fit_seconds,
        "history": {k: [float(x) for x in v] for k, v in history.items()},
        "calibration": calibrated,
        # (epsilon, delta) over the epochs run (early stopping may run fewer than hparams.epochs).
        "privacy": privacy.record(
            hparams.dp_noise_multiplier,
            hparams.dp_l2_clip,
            hparams.batch_size,
            train_examples,
            len(history["epoch_seconds"]),
        )
        if hparams.private
        else None,
    }
    export.export_on_chief(
        model,
        tf_transform_output,
        fn_args.serving_model_dir,
        strategy.is_chief(os.environ.get("TF_CONFIG")),
        record,
        temperature=temperature,
    )
