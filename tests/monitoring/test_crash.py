"""SIGKILL in the middle of a feedback write and of a span write: what is left is the old state or
the new one, never a half-written file a later run trips on, and the later run completes."""

import os
import signal
import subprocess
import sys
import time

import numpy as np

from modules import idx
from monitoring import feedback, span
from tests.monitoring.conftest import MODEL_NAME, write_log
from tests.monitoring.test_span import _store
from tests.timeouts import COMMAND_TIMEOUT

# Each script does its write with the slow part paused, so the test can kill it midway.
_SLOW_FEEDBACK = """
import sys, time, numpy as np
from monitoring import feedback
real = np.savez_compressed
def half_then_hang(f, **arrays):
    f.write(b"PK half an npz")
    f.flush()
    time.sleep(600)
np.savez_compressed = half_then_hang
feedback.add_feedback(open(sys.argv[1]).read(), sys.argv[2], sys.argv[3], "mnist")
"""

_SLOW_SPAN = """
import sys, time
from modules import idx
from monitoring import span
real = idx.write_labels
def write_then_hang(path, labels):
    real(path, labels)
    time.sleep(600)
idx.write_labels = write_then_hang
span.write_span(sys.argv[1], sys.argv[2], 0.3)
"""


def _kill_when(proc: subprocess.Popen, ready, what: str) -> None:
    deadline = time.time() + COMMAND_TIMEOUT
    while not ready() and time.time() < deadline:
        assert proc.poll() is None, f"the {what} ended before it could be killed"
        time.sleep(0.05)
    assert ready(), f"the {what} never got midway"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


def test_a_feedback_write_killed_midway_stores_nothing_and_the_next_call_stores_all(tmp_path, test_images_labels):
    prefix, store = str(tmp_path / "logs" / "requests"), str(tmp_path / "store")
    ids = write_log(prefix, test_images_labels[0][:4])
    labels = tmp_path / "labels.csv"
    labels.write_text("request_id,label\n" + "".join(f"{i},{k}\n" for k, i in enumerate(ids)))
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_FEEDBACK, str(labels), prefix, store])
    _kill_when(proc, lambda: os.path.isdir(store) and any(n.endswith(".tmp") for n in os.listdir(store)), "feedback")
    assert feedback.store_files(store) == [] and len(feedback.load_store(store)["labels"]) == 0
    report = feedback.add_feedback(labels.read_text(), prefix, store, MODEL_NAME)  # the lock died with it
    assert report.stored == 4 and feedback.load_store(store)["labels"].tolist() == [0, 1, 2, 3]


def test_a_span_write_killed_midway_leaves_no_span_and_the_next_run_writes_it_whole(
    tmp_path, small_data_root, test_images_labels
):
    import shutil

    data_root = str(tmp_path / "data")
    shutil.copytree(small_data_root, data_root)
    store = tmp_path / "store"
    _store(store, test_images_labels[0][:100], test_images_labels[1][:100])
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_SPAN, data_root, str(store)])
    staging = os.path.join(data_root, ".span-2.partial")
    _kill_when(proc, lambda: os.path.isdir(staging) and len(os.listdir(staging)) >= 2, "span write")
    assert idx.latest_span(data_root)[0] == 1  # the half-written span is not a span
    written = span.write_span(data_root, str(store), holdout_share=0.3)
    assert written["span"] == 2 and not os.path.exists(staging)
    train, _ = idx.read_span_pair(idx.span_dir(data_root, 2), "train")
    assert (
        len(train) == len(idx.read_span_pair(idx.span_dir(data_root, 1), "train")[0]) + written["fresh_training_rows"]
    )
    np.testing.assert_array_equal(
        idx.read_span_pair(idx.span_dir(data_root, 2), "t10k")[1],
        idx.read_span_pair(idx.span_dir(data_root, 1), "t10k")[1],
    )
