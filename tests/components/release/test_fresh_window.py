"""The fresh-window gate on a real exported model: released when nothing is served or when it beats
the served version on the held-out fresh rows, refused when it does not."""

import os

import pytest

from components.release import fresh_window
from modules import idx
from tests.serving.conftest import publish


def _span_with_fresh(tmp_path, images, labels):
    folder = str(tmp_path / "span-2")
    images_path, labels_path = idx.pair_paths(folder, idx.FRESH_PAIR)
    os.makedirs(folder)
    idx.write_images(images_path, images)
    idx.write_labels(labels_path, labels)
    return folder


def test_no_fresh_pair_means_no_gate(tmp_path, exported_model):
    assert fresh_window.judge(str(tmp_path), exported_model, str(tmp_path / "push")) is None


def test_the_gate_passes_with_nothing_served_and_refuses_a_tie(tmp_path, exported_model, test_images_labels):
    images, labels = test_images_labels[0][:300], test_images_labels[1][:300]
    folder = _span_with_fresh(tmp_path, images, labels)
    push = str(tmp_path / "push" / "mnist")
    first = fresh_window.judge(folder, exported_model, push)
    assert first["passed"] and first["served_version"] is None and first["examples"] == 300
    assert 0.5 < first["candidate_accuracy"] <= 1.0
    publish(exported_model, push, 7)
    tie = fresh_window.judge(folder, exported_model, push)
    assert tie["served_version"] == 7 and tie["served_accuracy"] == tie["candidate_accuracy"]
    assert not tie["passed"] and "not better, not released" in tie["reason"]


@pytest.fixture(scope="module")
def untrained_model(tmp_path_factory, transform_output):
    """The project's CNN exported with its initial weights: a served model any trained one beats."""
    from modules import cnn, export
    from modules.hparams import HParams

    model = cnn.build_model(HParams(batch_size=64), steps_per_epoch=1)
    path = str(tmp_path_factory.mktemp("untrained") / "model")
    export.export_serving_model(model, transform_output, path)
    return path


def test_a_candidate_that_beats_the_served_model_passes_and_the_reverse_is_refused(
    tmp_path, exported_model, untrained_model, test_images_labels
):
    folder = _span_with_fresh(tmp_path, test_images_labels[0][:300], test_images_labels[1][:300])
    weak, strong = str(tmp_path / "weak" / "mnist"), str(tmp_path / "strong" / "mnist")
    publish(untrained_model, weak, 3)
    publish(exported_model, strong, 4)
    better = fresh_window.judge(folder, exported_model, weak)
    assert better["passed"] and better["candidate_accuracy"] > better["served_accuracy"]
    worse = fresh_window.judge(folder, untrained_model, strong)
    assert not worse["passed"] and worse["served_version"] == 4
    assert worse["served_accuracy"] == better["candidate_accuracy"]
