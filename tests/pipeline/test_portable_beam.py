"""The Beam stages on the portable runner: Beam's Python job service and two EXTERNAL worker pools,
separate processes started here; the artifacts must equal the in-memory run's."""

import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv

from components import tfx_files
from modules import features
from pipeline import configs, portable_beam
from tests.timeouts import E2E_TIMEOUT, PIPELINE_TIMEOUT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(E2E_TIMEOUT)]

SPLITS = (features.TRAIN_SPLIT, features.EVAL_SPLIT, features.TEST_SPLIT)


def _run(data_root, output_root, *beam_flags):
    command = [
        sys.executable,
        "pipeline/local_runner.py",
        f"--data-root={data_root}",
        f"--output-root={output_root}",
        f"--serving-dir={output_root}/serving/{configs.MODEL_NAME}",
        "--epochs=1",
        # A bound no model reaches: the Evaluator's Beam job runs, and the release (no Beam stage) has
        # nothing to do. The runner then exits 1, "not blessed".
        "--min-accuracy=1.01",
        *beam_flags,
    ]
    proc = subprocess.run(
        command, cwd=portable_beam.PROJECT_ROOT, capture_output=True, text=True, timeout=PIPELINE_TIMEOUT
    )
    summary_path = os.path.join(output_root, "summary.json")
    assert proc.returncode == 1 and os.path.exists(summary_path), proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(summary_path) as f:
        summary = json.load(f)
    assert summary["error"] is None and summary["blessed"] is False and summary["pushed"] is False, summary
    assert summary["components"]["Evaluator"]["state"] == "COMPLETE"
    return output_root


@pytest.fixture(scope="module")
def runs(tmp_path_factory, small_data_root):
    root = tmp_path_factory.mktemp("portable")
    in_memory = _run(small_data_root, str(root / "in_memory"))
    with portable_beam.services(str(root / "services"), pools=2) as services:
        portable = _run(small_data_root, str(root / "portable"), *services.local_runner_flags())
    return in_memory, portable, services


def _artifact(output_root, component, name):
    (uri,) = glob.glob(os.path.join(output_root, "pipeline_root", component, name, "*"))
    return uri


def _statistics(output_root):
    uri = _artifact(output_root, "StatisticsGen", "statistics")
    return {split: tfdv.load_stats_binary(tfx_files.stats_path(uri, split)).datasets[0] for split in SPLITS}


def test_every_beam_stage_ran_as_a_job_on_the_worker_pools(runs):
    _, portable, services = runs
    # IdxExampleGen, StatisticsGen, Transform and Evaluator: one job each, all finished.
    assert portable_beam.jobs_done(services.logs["job_service"]) == len(configs.BEAM_COMPONENTS)
    # Each pool started SDK worker processes for its stages (two of the four each).
    assert [portable_beam.workers_started(services.logs[f"worker_pool_{i}"]) for i in range(2)] == [2, 2]
    with open(os.path.join(portable, "run.log")) as f:
        log = f.read()
    assert "--runner=PortableRunner" in log and "prism" not in log.lower()


def test_examples_and_statistics_equal_the_in_memory_run(runs):
    in_memory, portable, _ = runs
    expected, got = _statistics(in_memory), _statistics(portable)
    assert {s: d.num_examples for s, d in got.items()} == {s: d.num_examples for s, d in expected.items()}
    assert sum(d.num_examples for d in got.values()) == 800  # the slice's 600 + 200 records
    for split in SPLITS:
        want = {f.path.step[0]: f for f in expected[split].features}
        for feature in got[split].features:
            name = feature.path.step[0]
            if feature.HasField("num_stats"):
                a, b = feature.num_stats, want[name].num_stats
                assert (a.min, a.max, a.num_zeros) == (b.min, b.max, b.num_zeros), (split, name)
                assert a.mean == pytest.approx(b.mean, rel=1e-9) and a.std_dev == pytest.approx(b.std_dev, rel=1e-9)
            else:
                assert feature.string_stats.rank_histogram == want[name].string_stats.rank_histogram, (split, name)


def _transformed(output_root, split):
    uri = _artifact(output_root, "Transform", "transformed_examples")
    rows = []
    for path in sorted(glob.glob(os.path.join(uri, f"Split-{split}", "*.gz"))):
        for record in tf.data.TFRecordDataset(path, compression_type="GZIP"):
            example = tf.train.Example.FromString(record.numpy())
            rows.append(
                tuple(
                    (name, tuple(np.round(value.float_list.value, 6)), tuple(value.int64_list.value))
                    for name, value in sorted(example.features.feature.items())
                )
            )
    return rows


def test_transformed_values_equal_the_in_memory_run(runs):
    in_memory, portable, _ = runs
    for split in (features.TRAIN_SPLIT, features.EVAL_SPLIT):
        expected, got = _transformed(in_memory, split), _transformed(portable, split)
        assert len(got) == len(expected) > 0
        assert sorted(got) == sorted(expected)  # the runners may write rows in different orders
