"""Version discovery, loading and swapping over a real push directory."""

import os
import shutil
import threading
import time

import pytest

from modules import push_layout
from modules.push_layout import version_dirs
from serving.server import repository as repository_module
from serving.server.errors import ServingError
from serving.server.repository import ModelConfig, ModelRepository, configs_from_file
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


def _wait_for(condition, timeout: float = 60.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_a_failing_scan_is_counted_and_the_poller_goes_on(tmp_path, exported_model, monkeypatch):
    base = str(tmp_path / "mnist")
    publish(exported_model, base, 1)
    repository = ModelRepository([ModelConfig("mnist", base)])
    real_version_dirs, armed, failed = repository_module.version_dirs, [], []

    def fails_once_after_start(path):
        if armed and not failed:  # the first background scan
            failed.append(path)
            raise FileNotFoundError(f"{path}/7 vanished between listing and reading")
        return real_version_dirs(path)

    monkeypatch.setattr(repository_module, "version_dirs", fails_once_after_start)
    repository.start(poll_seconds=0.05)
    armed.append(True)
    try:
        publish(exported_model, base, 2)
        assert _wait_for(lambda: repository.servable("mnist").version == 2)
        assert repository.scan_failures == 1 and repository.polling()
    finally:
        repository.stop()


def test_versions_churning_under_load_never_fail_a_request(tmp_path, exported_model, test_images_labels):
    """Version directories created, renamed and removed in a tight loop (some with a broken
    saved_model.pb, some with names that are no version) while a client predicts: no request fails,
    the poller lives, and a final good version is picked up."""
    base = str(tmp_path / "mnist")
    publish(exported_model, base, 1)
    repository = ModelRepository([ModelConfig("mnist", base)])
    repository.start(poll_seconds=0.01)
    images = test_images_labels[0][:4]
    failures, predictions, done = [], [0], threading.Event()

    def client():
        while not done.is_set():
            try:
                repository.servable("mnist").predict("predict_images", {"images": images})
                predictions[0] += 1
            except Exception as e:  # noqa: BLE001  every failure is the test's business
                failures.append(repr(e))

    thread = threading.Thread(target=client)
    thread.start()
    try:
        deadline = time.time() + 5
        n = 10
        while time.time() < deadline:
            n += 1
            churn = os.path.join(base, str(n))
            os.makedirs(churn)
            with open(os.path.join(churn, push_layout.SAVED_MODEL_FILE), "wb") as f:
                f.write(b"not a SavedModel")
            os.makedirs(os.path.join(base, "\u0663"), exist_ok=True)  # '٣': isdigit(), but no version
            os.rename(churn, churn + "x")
            shutil.rmtree(churn + "x")
        assert repository.polling()  # alive after the churn
        publish(exported_model, base, n + 1)
        assert _wait_for(lambda: repository.servable("mnist").version == n + 1)
    finally:
        done.set()
        thread.join()
        repository.stop()
    assert failures == [] and predictions[0] > 0
    assert n > 20  # the loop did churn
