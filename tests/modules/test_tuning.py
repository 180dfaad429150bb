"""The Tuner's search space: real choices over HParams fields, each of which builds a model."""

import dataclasses

import keras_tuner

from modules import tuning
from modules.hparams import HParams


def test_search_space_offers_real_choices_over_hparams_fields():
    hp = keras_tuner.HyperParameters()
    space = tuning.search_space(hp)
    assert space, "an empty search space would make the Tuner a no-op"
    assert set(space) <= {f.name for f in dataclasses.fields(HParams)}
    choices_by_name = {p["config"]["name"]: p["config"]["values"] for p in hp.get_config()["space"]}
    for name in space:
        choices = choices_by_name[name]
        assert len(choices) >= 2, f"{name} has a single value: nothing to search"
        for value in choices:  # every point of the space is a valid setting
            HParams(**{**HParams().to_dict(), name: value})


def test_the_tuned_model_uses_the_chosen_dropout():
    hp = keras_tuner.HyperParameters()
    tuning.search_space(hp)
    hp.values["dropout"] = 0.25
    model = tuning.build_tuned_model(HParams(), hp, steps_per_epoch=10, policy="float32")
    assert model.output_shape == (None, 10)
    assert [layer.rate for layer in model.layers if layer.__class__.__name__ == "Dropout"] == [0.25]
