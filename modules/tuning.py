"""Tuner's entry point: a small KerasTuner search whose best values flow into Trainer."""

import dataclasses

import keras_tuner
from tfx import v1 as tfx

from modules import cnn, data, strategy, training
from modules.hparams import MAX_TRIALS_KEY, HParams, from_custom_config


def search_space(hp: keras_tuner.HyperParameters) -> dict:
    """The HParams fields worth searching on MNIST, each with values known to train."""
    return {
        "peak_learning_rate": hp.Choice("peak_learning_rate", [1e-3, 3e-3]),
        "dropout": hp.Choice("dropout", [0.25, 0.4]),
    }


def build_tuned_model(base: HParams, hp: keras_tuner.HyperParameters, steps_per_epoch: int, policy: str):
    return cnn.build_model(dataclasses.replace(base, **search_space(hp)), steps_per_epoch, policy)


# Tuner calls this (dotted path modules.tuning.tuner_fn).
def tuner_fn(fn_args) -> tfx.components.TunerFnResult:
    base = from_custom_config(fn_args.custom_config)
    dist = strategy.choose_strategy(base.strategy, base.tpu)
    _, train_ds, eval_ds, train_examples = data.transformed_datasets(
        fn_args.train_files, fn_args.eval_files, fn_args.transform_graph_path, base, dist.num_replicas_in_sync
    )
    steps, policy = training.model_settings(base, dist, train_examples)
    tuner = keras_tuner.RandomSearch(
        lambda hp: build_tuned_model(base, hp, steps, policy),
        objective=keras_tuner.Objective("val_accuracy", "max"),
        max_trials=int(fn_args.custom_config[MAX_TRIALS_KEY]),
        distribution_strategy=dist,
        directory=fn_args.working_dir,
        project_name="mnist",
        seed=0,
    )
    return tfx.components.TunerFnResult(
        tuner=tuner, fit_kwargs={"x": train_ds, "validation_data": eval_ds, "epochs": base.epochs, "verbose": 2}
    )
