"""The monitor's Prometheus text: what the alert rules in serving/deploy/prometheus/alerts.yml read."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitoring import check, report
from pipeline.configs import PROJECT_ROOT
from tests.timeouts import COMMAND_TIMEOUT

ALERTS = os.path.join(PROJECT_ROOT, "serving", "deploy", "prometheus", "alerts.yml")


def _result(flagged):
    checks = [{"name": n, "value": 0.5, "bound": 0.1, "flagged": n in flagged, "detail": ""} for n in check.CHECK_NAMES]
    return {"flagged": flagged, "rows": 1000, "versions": {"7": {"checks": checks[:-1]}}, "drift": checks[-1]}


def test_monitor_prom_holds_one_flag_per_check_and_the_values(tmp_path):
    path = str(tmp_path / check.PROM_FILE)
    check.write_prometheus(_result(["pixel_skew", "online_accuracy"]), path)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(open(path).read())
        for s in family.samples
    }
    flags = {dict(k[1])["check"]: v for k, v in samples.items() if k[0] == "mnist_tfx_monitor_flagged"}
    assert flags == {name: (1.0 if name in ("pixel_skew", "online_accuracy") else 0.0) for name in check.CHECK_NAMES}
    assert samples[("mnist_tfx_monitor_value", (("check", "pixel_skew"), ("version", "7")))] == 0.5
    assert samples[("mnist_tfx_monitor_value", (("check", "pixel_drift"), ("version", "all")))] == 0.5
    assert samples[("mnist_tfx_monitor_rows", ())] == 1000
    # Every series the monitor alerts read is one this file holds.
    alerts = open(ALERTS).read()
    for name in ("mnist_tfx_monitor_flagged", "mnist_tfx_monitor_last_run_timestamp_seconds"):
        assert name in alerts
    promtool = shutil.which("promtool")
    assert promtool, "promtool is not on PATH (bootstrap.sh --browser installs Debian's prometheus)"
    lint = subprocess.run(
        [promtool, "check", "metrics"], input=open(path).read(), capture_output=True, text=True, timeout=60
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.parametrize(
    "text, seconds", [("0", 0.0), ("1795380000", 1795380000.0), ("2026-11-22T00:00", 1795305600.0)]
)
def test_window_times_read_epoch_seconds_or_iso_utc(text, seconds):
    assert check._time(text) == seconds


def test_drift_compares_with_the_last_window_the_monitor_judged(tmp_path):
    history = tmp_path / check.HISTORY_FILE
    lines = [
        {"window": {"since_seconds": 100, "until_seconds": 160}},
        {"window": {"since_seconds": 200, "until_seconds": 260}},
        {"window": {"since_seconds": 400, "until_seconds": 460}},  # after the window being judged
    ]
    history.write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    assert check.last_judged_window(str(tmp_path), since=300) == (200, 260)
    assert check.last_judged_window(str(tmp_path), since=100) is None
    assert check.last_judged_window(str(tmp_path / "none"), since=300) is None


def test_an_empty_window_is_said_in_plain_words(logged, tmp_path):
    prefix, _, _ = logged
    result, plots = check.run_check(prefix, str(tmp_path / "no.sqlite"), str(tmp_path / "fb"), 0, 1000)
    assert result["rows"] == 0 and result["flagged"] == [] and plots == {report.RECEIVED_PICTURES: []}
    assert result["verdict"].startswith("EMPTY WINDOW: no served request of model mnist")


def test_rows_of_versions_ml_metadata_does_not_know_are_counted_not_judged(logged, tmp_path):
    prefix, _, _ = logged
    result, _ = check.run_check(prefix, str(tmp_path / "no.sqlite"), str(tmp_path / "fb"), 0, 4e9)
    assert result["rows"] == 20 and result["versions"] == {} and result["flagged"] == []
    assert result["unknown_versions"]["1"]["rows"] == 20 and "no ML Metadata" in result["unknown_versions"]["1"]["why"]
    assert result["verdict"].startswith("NOT JUDGED")


def test_the_command_says_when_there_is_no_metadata_and_exits_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "monitoring.check", "--metadata", str(tmp_path / "none.sqlite"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=COMMAND_TIMEOUT,
    )
    assert proc.returncode == 2 and "no ML Metadata at" in proc.stdout


def test_the_least_confident_answers_are_explained_by_the_versions_own_signature(exported_model, test_images_labels):
    from monitoring.request_logs import ServedRows

    images = test_images_labels[0][:12]
    probabilities = np.full((12, 10), 0.02, np.float32)
    probabilities[np.arange(12), np.arange(12) % 10] = np.linspace(0.3, 0.82, 12)  # 0.3 ... 0.82
    rows = ServedRows(
        np.array([f"r{i}" for i in range(12)]),
        np.zeros(12, int),
        np.ones(12, int),
        np.zeros(12, int),
        images.astype(np.float64),
        probabilities,
    )
    why = check.explain_low_confidence(rows, 0.5, exported_model)
    assert why["answers"].tolist() == [0, 1, 2, 3, 4]  # under 0.5, the least confident first
    assert why["maps"].shape == (5, 28, 28) and np.abs(why["maps"]).sum() > 0
    assert "folder is gone" in check.explain_low_confidence(rows, 0.5, None)["note"]
    assert "could not be loaded" in check.explain_low_confidence(rows, 0.5, "/nonexistent/version")["note"]
    assert check.explain_low_confidence(rows, 0.2, exported_model) is None


def test_a_version_pushed_without_the_explain_signature_is_said_so(trained_model, transform_output, tmp_path):
    from modules import export
    from monitoring.request_logs import ServedRows

    path = str(tmp_path / "older")
    export.export_serving_model(trained_model, transform_output, path, explain_signatures=False)
    rows = ServedRows(
        np.array(["r"]),
        np.zeros(1, int),
        np.ones(1, int),
        np.zeros(1, int),
        np.zeros((1, 28, 28)),
        np.full((1, 10), 0.1),
    )
    assert "no explain signature" in check.explain_low_confidence(rows, 0.5, path)["note"]
