"""Version discovery, loading and swapping over a real push directory."""

import os

import pytest

from modules import push_layout
from modules.push_layout import version_dirs
from serving.errors import ServingError
from serving.repository import ModelConfig, ModelRepository, configs_from_file
from tests.serving.conftest import publish


def test_only_complete_integer_versions_count(tmp_path, exported_model):
    base = str(tmp_path / "mnist")
    publish(exported_model, base, 3)
    os.makedirs(os.path.join(base, ".staging-4"))  # a push in progress
    os.makedirs(os.path.join(base, "5"))  # no saved_model.pb (yet)
    os.makedirs(os.path.join(base, "latest"))
    assert version_dirs(base) == {3: os.path.join(base, "3")}


def test_newest_version_serves_and_a_broken_one_does_not_replace_it(tmp_path, exported_model):
    base = str(tmp_path / "mnist")
    publish(exported_model, base, 1)
    repository = ModelRepository([ModelConfig("mnist", base)])
    repository.poll_once()
    assert repository.servable("mnist").version == 1
    broken = os.path.join(base, "2")
    os.makedirs(broken)
    with open(os.path.join(broken, "saved_model.pb"), "wb") as f:
        f.write(b"not a SavedModel")
    repository.poll_once()
    assert repository.servable("mnist").version == 1
    states = {s.version: s for s in repository.states("mnist")}
    assert states[1].state == "AVAILABLE"
    assert states[2].state == "END" and "failed to load" in states[2].error
    publish(exported_model, base, 3)
    repository.poll_once()
    assert repository.servable("mnist").version == 3
    assert {s.version: s.state for s in repository.states("mnist")}[1] == "END"  # unloaded once 3 served


def test_unknown_model_and_version_are_not_found(tmp_path, exported_model):
    base = str(tmp_path / "mnist")
    publish(exported_model, base, 1)
    repository = ModelRepository([ModelConfig("mnist", base)])
    repository.poll_once()
    for name, version in [("other", None), ("mnist", 2)]:
        with pytest.raises(ServingError) as e:
            repository.servable(name, version)
        assert e.value.http_status == 404


def test_models_config_round_trips_with_relative_paths(tmp_path):
    path = tmp_path / "models.config"
    path.write_text(push_layout.render_models_config([("mnist", "mnist"), ("other", "/abs/other")], versions_served=2))
    assert configs_from_file(str(path)) == [
        ModelConfig("mnist", str(tmp_path / "mnist"), 2),
        ModelConfig("other", "/abs/other", 2),
    ]
