"""The real pipeline, end to end, on a slice of data/: `python pipeline/local_runner.py --quick`."""
import glob
import json
import os
import subprocess
import sys

import pytest

from pipeline import configs

pytestmark = pytest.mark.e2e

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COMPONENTS = ["IdxExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform", "Trainer",
              "LatestBlessedModelResolver", "Evaluator", "Pusher"]
UPSTREAM_OF_EVALUATOR = ["IdxExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform", "Trainer"]

# Accuracy of serving_default over the ExampleGen test split, in a process importing only TensorFlow.
_SERVING_ACCURACY = """
import glob, sys
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
files = glob.glob(sys.argv[2] + "/*")
correct = total = 0
for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(256):
    probs = model(examples=batch)["probabilities"]
    labels = tf.io.parse_example(batch, {"label": tf.io.FixedLenFeature([1], tf.int64)})["label"][:, 0]
    correct += int(tf.reduce_sum(tf.cast(tf.argmax(probs, axis=1) == labels, tf.int32)))
    total += int(batch.shape[0])
print(correct, total)
"""


def _run_pipeline(output_root, serving_dir):
    subprocess.run([sys.executable, os.path.join(PROJECT_ROOT, "pipeline", "local_runner.py"), "--quick",
                    "--output-root", str(output_root), "--serving-dir", str(serving_dir)],
                   check=True, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with open(os.path.join(output_root, "summary.json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    output_root, serving_dir = root / "out", root / "serving" / configs.MODEL_NAME
    first = _run_pipeline(output_root, serving_dir)
    versions_after_first = sorted(os.listdir(serving_dir))
    second = _run_pipeline(output_root, serving_dir)
    return first, second, output_root, serving_dir, versions_after_first


def test_first_run_executes_each_component_once(runs):
    first = runs[0]
    assert sorted(first["components"]) == sorted(COMPONENTS)
    assert {c["state"] for c in first["components"].values()} == {"COMPLETE"}


def test_first_run_blesses_and_pushes_a_version(runs):
    first, _, _, serving_dir, versions = runs
    assert first["blessed"] is True and first["pushed"] is True
    assert first["test_accuracy"] >= configs.QUICK_MIN_ACCURACY
    assert versions == [str(first["pushed_version"])]
    assert os.path.isfile(os.path.join(serving_dir, versions[0], "saved_model.pb"))


def test_pushed_model_alone_gives_the_evaluator_accuracy(runs):
    first, _, output_root, serving_dir, versions = runs
    test_split = glob.glob(os.path.join(output_root, "pipeline_root", "IdxExampleGen", "examples", "*", "Split-test"))
    assert len(test_split) == 1
    out = subprocess.run([sys.executable, "-c", _SERVING_ACCURACY, os.path.join(serving_dir, versions[0]),
                          test_split[0]], check=True, capture_output=True, text=True).stdout.split()
    correct, total = int(out[-2]), int(out[-1])
    assert total == configs.QUICK_TEST_RECORDS
    assert correct / total == pytest.approx(first["test_accuracy"], abs=1e-6)


def test_rerun_takes_everything_upstream_of_the_evaluator_from_cache(runs):
    second = runs[1]
    states = {name: c["state"] for name, c in second["components"].items()}
    assert {states[n] for n in UPSTREAM_OF_EVALUATOR} == {"CACHED"}, states
    # The Evaluator's inputs changed: its baseline is now the first run's blessed model, so it runs
    # again, compares the model with itself (no regression) and blesses it again.
    assert states["Evaluator"] == "COMPLETE"
    assert second["blessed"] is True
    assert second["test_accuracy"] == pytest.approx(runs[0]["test_accuracy"], abs=1e-9)
