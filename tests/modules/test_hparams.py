import pytest

from modules.hparams import HParams


def test_round_trips_through_a_dict():
    hp = HParams(epochs=3, batch_size=64)
    assert HParams.from_dict(hp.to_dict()) == hp


def test_unknown_key_is_an_error():
    with pytest.raises(ValueError, match=r"unknown hyperparameters \['epoch'\]"):
        HParams.from_dict({"epoch": 3})


def test_is_frozen():
    with pytest.raises(Exception):
        HParams().epochs = 1
