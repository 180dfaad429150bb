"""Trainer's entry point: translates TFX's FnArgs into calls of the plain functions beside it."""
import logging

import tensorflow_transform as tft

from modules import data, export, strategy, training
from modules.hparams import HParams

HPARAMS_KEY = "hparams"  # the custom_config key that carries HParams.to_dict()


# Trainer calls this (dotted path modules.model.run_fn).
def run_fn(fn_args) -> None:
    hparams = HParams.from_dict((fn_args.custom_config or {}).get(HPARAMS_KEY, {}))
    logging.info("training with %s", hparams)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    spec = tf_transform_output.transformed_feature_spec()
    dist = strategy.choose_strategy()
    global_batch = hparams.batch_size * dist.num_replicas_in_sync
    train_ds = data.input_fn(fn_args.train_files, spec, global_batch, hparams.shuffle_buffer)
    eval_ds = data.input_fn(fn_args.eval_files, spec, global_batch)
    model, _ = training.train(train_ds, eval_ds, hparams, dist, log_dir=fn_args.model_run_dir)
    export.export_serving_model(model, tf_transform_output, fn_args.serving_model_dir)
