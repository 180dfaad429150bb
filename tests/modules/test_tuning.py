"""The Tuner's search space and how its result reaches Trainer."""
import dataclasses

import keras_tuner
from tfx.components.trainer.fn_args_utils import FnArgs

from modules import model, tuning
from modules.hparams import HParams


def test_search_space_names_hparams_fields():
    space = tuning.search_space(keras_tuner.HyperParameters())
    assert set(space) <= {f.name for f in dataclasses.fields(HParams)}
    HParams(**space)  # every default of the space is a valid setting


def test_tuned_values_override_custom_config():
    fn_args = FnArgs(custom_config={model.HPARAMS_KEY: {"epochs": 3, "dropout": 0.4}},
                     hyperparameters={"space": [], "values": {"dropout": 0.25, "peak_learning_rate": 1e-3}})
    assert model.hparams_from(fn_args) == HParams(epochs=3, dropout=0.25, peak_learning_rate=1e-3)


def test_without_tuner_custom_config_stands():
    fn_args = FnArgs(custom_config={model.HPARAMS_KEY: {"epochs": 3}})
    assert model.hparams_from(fn_args) == HParams(epochs=3)
