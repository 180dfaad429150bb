"""Bad data drops stop the run before Trainer, say why, and leave the served version untouched."""

import hashlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from modules import idx
from pipeline import configs, data_slice
from pipeline.configs import DATA_ROOT, PROJECT_ROOT
from tests.timeouts import E2E_TIMEOUT, PIPELINE_TIMEOUT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(E2E_TIMEOUT)]

TRAIN, TEST = 600, 200


def _run(data_root, output_root, serving_dir):
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(PROJECT_ROOT, "pipeline", "local_runner.py"),
            "--data-root",
            str(data_root),
            "--output-root",
            str(output_root),
            "--serving-dir",
            str(serving_dir),
            # 600 records: small batches and a few epochs give BatchNorm enough steps to settle.
            *[f"--hparam={k}={v}" for k, v in {**configs.QUICK_HPARAMS, "batch_size": 32, "epochs": 4}.items()],
            "--min-accuracy",
            str(configs.QUICK_MIN_ACCURACY),
            # Models trained on 600 different records differ by a few points: the change threshold
            # is not what these tests are about.
            "--max-accuracy-drop",
            "1",
            "--attack-examples=0",
            "--formats=none",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=PIPELINE_TIMEOUT,
    )
    with open(os.path.join(output_root, "summary.json")) as f:
        return proc.returncode, proc.stdout, json.load(f)


def _tree_digest(path) -> str:
    digest = hashlib.sha256()
    for root, _, files in sorted(os.walk(path)):
        for name in sorted(files):
            full = os.path.join(root, name)
            digest.update(full.encode())
            with open(full, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


def _write_span(data_root, span, make):
    """Writes span-<span> from span 1's records transformed by make(kind, images, labels)."""
    src, dst = os.path.join(data_root, "span-1"), os.path.join(data_root, f"span-{span}")
    os.makedirs(dst, exist_ok=True)
    for kind, (images_file, labels_file) in idx.PAIRS.items():
        images, labels = idx.read_pair(os.path.join(src, images_file), os.path.join(src, labels_file))
        make(kind, images, labels, os.path.join(dst, images_file), os.path.join(dst, labels_file))


def _write_ok(kind, images, labels, images_path, labels_path):
    idx.write_images(images_path, images)
    idx.write_labels(labels_path, labels)


def _truncated(kind, images, labels, images_path, labels_path):
    _write_ok(kind, images, labels, images_path, labels_path)
    if kind == "train":
        with open(images_path, "rb") as f:
            data = f.read()
        with open(images_path, "wb") as f:
            f.write(data[: len(data) // 2])


def _all_black(kind, images, labels, images_path, labels_path):
    _write_ok(kind, np.zeros_like(images), labels, images_path, labels_path)


def _skewed_labels(kind, images, labels, images_path, labels_path):
    keep = labels < 5  # half the digits vanish: the others' shares double
    _write_ok(kind, images[keep], labels[keep], images_path, labels_path)


# Each way a span stops: a file IdxExampleGen refuses (a broken gzip), reported by IdxExampleGen;
# pixels and labels that drifted, reported by the DataGate. The IDX reader's other refusals (a label
# outside 0-9, a wrong magic number, 27x27 images, a count mismatch) take the same path to the
# runner and are tested on the reader alone (tests/modules/test_idx.py).
CASES = [
    ("truncated_gzip", _truncated, "IdxExampleGen", f"{idx.PAIRS['train'][0]}: not a complete gzip file"),
    ("all_black", _all_black, "DataGate", "feature 'image': High approximate Jensen-Shannon divergence"),
    ("skewed_labels", _skewed_labels, "DataGate", "feature 'label': High Linfty distance"),
]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """A first, clean run on span 1 that blesses and pushes a version."""
    root = tmp_path_factory.mktemp("validation")
    data_root = data_slice.write_slice(DATA_ROOT, str(root / "data"), TRAIN, TEST)
    output_root, serving_dir = root / "out", root / "serving"
    rc, _, summary = _run(data_root, output_root, serving_dir)
    assert rc == 0 and summary["blessed"] and summary["pushed"], summary
    return data_root, output_root, serving_dir


def _drift_baseline_digest(output_root) -> str:
    """The DataGate's drift baseline: the train statistics of the last span that passed."""
    with open(
        os.path.join(output_root, "pipeline_root", "validated_statistics_baseline", "FeatureStats.pb"), "rb"
    ) as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.mark.parametrize("name,make,stops_at,message", CASES, ids=[c[0] for c in CASES])
def test_bad_span_stops_before_trainer(baseline, tmp_path, name, make, stops_at, message):
    base_data, output_root, serving_dir = baseline
    data_root = tmp_path / "data"
    shutil.copytree(base_data, data_root)
    _write_span(str(data_root), 2, make)
    served_before, drift_baseline_before = _tree_digest(serving_dir), _drift_baseline_digest(output_root)

    rc, stdout, summary = _run(data_root, output_root, serving_dir)

    assert rc != 0
    assert summary["components"][stops_at]["state"] == "FAILED"
    assert "Trainer" not in summary["components"] and not summary["pushed"]
    assert message in summary["error"] and message in stdout
    assert f"RUN STOPPED at {stops_at}" in stdout
    assert _tree_digest(serving_dir) == served_before
    assert _drift_baseline_digest(output_root) == drift_baseline_before  # a failed span is no baseline


def test_clean_second_span_trains_through_to_a_push(baseline, tmp_path, train_images_labels):
    base_data, output_root, serving_dir = baseline
    data_root = tmp_path / "data"
    shutil.copytree(base_data, data_root)
    images, labels = train_images_labels
    # Records the first span never saw, shuffled: a plausible new data drop.
    pick = np.random.default_rng(2).permutation(np.arange(TRAIN + TEST, len(labels)))
    new_train, new_test = pick[:TRAIN], pick[TRAIN : TRAIN + TEST]
    span2 = data_root / "span-2"
    span2.mkdir()
    for kind, rows in (("train", new_train), ("t10k", new_test)):
        idx.write_images(str(span2 / idx.PAIRS[kind][0]), images[rows])
        idx.write_labels(str(span2 / idx.PAIRS[kind][1]), labels[rows])
    versions_before, drift_baseline_before = set(os.listdir(serving_dir)), _drift_baseline_digest(output_root)

    rc, _, summary = _run(data_root, output_root, serving_dir)

    assert rc == 0, summary["error"]
    assert summary["span"] == 2
    assert summary["blessed"] and summary["pushed"]
    assert set(os.listdir(serving_dir)) - versions_before == {str(summary["pushed_version"])}
    assert _drift_baseline_digest(output_root) != drift_baseline_before  # the passing span is the next baseline
