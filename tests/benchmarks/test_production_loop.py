"""The production loop on a slice (benchmarks/production_loop.py with small numbers): every step is
the project's own command. Trains and pushes; serves with request logging; an in-distribution
window must stay quiet; the first window of thicker strokes must be flagged for skew, drift and
online accuracy; the labels become span 2; the Evaluator blesses the retrained model on MNIST's
test rows and on the span's held-out fresh rows (better than the served one there); it is pushed
while the old one keeps answering, and beats it on shifted traffic neither trained on."""

import argparse
import json
import os

import pytest

from benchmarks import production_loop
from components.release.metrics import ACCURACY
from modules import idx
from tests.timeouts import E2E_TIMEOUT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(E2E_TIMEOUT)]
TRAIN_RECORDS = 4000


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    work = tmp_path_factory.mktemp("loop")
    args = argparse.Namespace(
        work=str(work),
        train_records=TRAIN_RECORDS,
        test_records=1000,
        epochs=3,
        # 3 epochs on 4k records: 0.977 on the 1k test records, 0.982 retrained with the labels; a
        # drop of 0.01 leaves room for the difference between two trainings.
        max_accuracy_drop=0.01,
        pipeline_arg=["--min-accuracy=0.9", "--hparam=bn_momentum=0.9", "--attack-examples=0", "--formats=none"],
        window_rows=1000,
        clean_windows=1,
        shifted_windows=1,
        clean_labelled_share=0.2,
        shifted_labelled_share=0.7,
        evaluation_rows=1000,
        shift="thicker",
    )
    return work, production_loop.run(args)


def test_in_distribution_windows_stay_quiet(loop):
    _, result = loop
    clean = [w for w in result["windows"] if w["traffic"] == "in-distribution"]
    assert len(clean) == 1 and all(w["rows"] == 1000 for w in clean)
    assert [w["flagged"] for w in clean] == [[]]
    assert all(w["monitor_exit_status"] == 0 and w["feedback_exit_status"] == 0 for w in clean)
    # Measured, not merely unflagged: the monitor had the training statistics to compare with.
    assert all(w["checks"]["pixel_skew"] is not None for w in clean)


def test_the_first_shifted_window_is_flagged_for_skew_drift_and_accuracy(loop):
    _, result = loop
    first = next(w for w in result["windows"] if w["traffic"] == "thicker strokes")
    assert {"pixel_skew", "pixel_drift", "online_accuracy"} <= set(first["flagged"])
    assert first["monitor_exit_status"] == 1
    assert result["summary"]["shifted_windows_until_skew_and_accuracy_flagged"] == 1


def test_the_labels_become_span_2_with_mnist_and_a_held_out_part(loop):
    work, result = loop
    span = result["span"]
    labelled = sum(w["labelled_rows"] for w in result["windows"])
    assert result["span_exit_status"] == 0 and span["span"] == 2
    assert span["fresh_training_rows"] + span["fresh_held_out_rows"] == labelled
    assert span["train_records"] == TRAIN_RECORDS + span["fresh_training_rows"] and span["test_records"] == 1000
    fresh_images, _ = idx.read_span_pair(idx.span_dir(os.path.join(work, "data"), 2), idx.FRESH_PAIR)
    assert len(fresh_images) == span["fresh_held_out_rows"]


def test_the_retrained_model_is_pushed_while_serving_and_beats_the_old_on_shifted_traffic(loop):
    work, result = loop
    second = result["second_run"]
    assert second["span"] == 2 and second["blessed"] and second["pushed"]
    assert result["requests_during_retraining"]["failed"] == 0 and result["requests_during_retraining"]["ok"] > 0
    with open(os.path.join(work, "serving", "mnist", second["pushed_version"], "release.json")) as f:
        released = json.load(f)
    # The Evaluator blessed it on both slices of the test split: MNIST's rows and the fresh ones.
    fresh = released["metrics"]["fresh"]
    assert fresh["candidate"]["example_count"] == result["span"]["fresh_held_out_rows"]
    assert fresh["candidate"][ACCURACY] > fresh["baseline"][ACCURACY]
    assert released["thresholds"]["fresh_min_gain"] > 0
    assert released["metrics"]["candidate"]["overall"]["example_count"] == 1000
    accuracy = result["shifted_online_accuracy"]
    assert accuracy["new"]["accuracy"] > accuracy["old"]["accuracy"]
