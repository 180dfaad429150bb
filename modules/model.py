"""Trainer's entry point: translates TFX's FnArgs into calls of the plain functions beside it."""
import dataclasses
import logging
import os
import time

import tensorflow_transform as tft

from modules import data, export, strategy, training
from modules.hparams import HParams

HPARAMS_KEY = "hparams"  # the custom_config key that carries HParams.to_dict()


def hparams_from(fn_args) -> HParams:
    """custom_config's HParams, overridden by the Tuner's best values when the Tuner ran."""
    hparams = HParams.from_dict((fn_args.custom_config or {}).get(HPARAMS_KEY, {}))
    tuned = (getattr(fn_args, "hyperparameters", None) or {}).get("values", {})
    return dataclasses.replace(hparams, **tuned)


def datasets(fn_args, hparams: HParams, replicas: int, tf_transform_output):
    """(train, eval, number of train records) from Transform's output, batched for the replicas."""
    spec = tf_transform_output.transformed_feature_spec()
    global_batch = hparams.batch_size * replicas
    train_examples = data.count_records(fn_args.train_files)
    cache = data.fits_in_cache(train_examples)
    train_ds = data.input_fn(fn_args.train_files, spec, global_batch, hparams.shuffle_buffer,
                             augment=data.augmenter(hparams.translate, hparams.rotate_degrees, hparams.zoom),
                             cache=cache, records=train_examples)
    eval_ds = data.input_fn(fn_args.eval_files, spec, global_batch, cache=cache,
                            records=data.count_records(fn_args.eval_files))
    return train_ds, eval_ds, train_examples


# Trainer calls this (dotted path modules.model.run_fn).
def run_fn(fn_args) -> None:
    hparams = hparams_from(fn_args)
    logging.info("training with %s", hparams)
    # First: MultiWorkerMirroredStrategy must exist before TensorFlow's runtime starts.
    dist = strategy.choose_strategy(hparams.strategy, hparams.tpu)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    train_ds, eval_ds, train_examples = datasets(fn_args, hparams, dist.num_replicas_in_sync, tf_transform_output)
    started = time.time()
    model, history = training.train(train_ds, eval_ds, hparams, dist, train_examples, log_dir=fn_args.model_run_dir)
    record = {"hparams": hparams.to_dict(), "train_examples": train_examples, "strategy": type(dist).__name__,
              "fit_seconds": round(time.time() - started, 1),
              "history": {k: [float(x) for x in v] for k, v in history.items()}}
    export.export_on_chief(model, tf_transform_output, fn_args.serving_model_dir,
                           strategy.is_chief(os.environ.get("TF_CONFIG")), record)
