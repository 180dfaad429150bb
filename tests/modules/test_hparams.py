import dataclasses

import pytest

from modules.hparams import HParams, custom_config, from_custom_config


def test_round_trips_through_a_dict():
    hp = HParams(epochs=3, batch_size=64)
    assert HParams.from_dict(hp.to_dict()) == hp


def test_unknown_key_is_an_error():
    with pytest.raises(ValueError, match=r"unknown hyperparameters \['epoch'\]"):
        HParams.from_dict({"epoch": 3})


def test_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        HParams().epochs = 1


def test_custom_config_round_trips_and_tuned_values_override_it():
    config = custom_config(HParams(epochs=3, dropout=0.4).to_dict(), "f00d", max_trials=2)
    assert config["code_version"] == "f00d" and config["max_trials"] == 2
    assert from_custom_config(config) == HParams(epochs=3, dropout=0.4)
    tuned = {"space": [], "values": {"dropout": 0.25, "peak_learning_rate": 1e-3}}
    assert from_custom_config(config, tuned) == HParams(epochs=3, dropout=0.25, peak_learning_rate=1e-3)
    assert from_custom_config(None) == HParams()


def test_an_ensemble_of_no_models_is_an_error():
    with pytest.raises(ValueError, match="ensemble must be at least 1 model, got 0"):
        HParams(ensemble=0)
