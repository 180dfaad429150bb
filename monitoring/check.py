"""The monitor: one window of served traffic against the data and the numbers of the version that
served it.

    python -m monitoring.check                                 # the last hour of the request log
    python -m monitoring.check --since 2026-11-22T10:00 --until 2026-11-22T11:00
    python -m monitoring.check --metadata-mysql 127.0.0.1:3306/mlmd   # the pipeline's store on a server

Per model version in the window (found in ML Metadata by its pushed version):
  schema       the served inputs against the schema's SERVING environment (TFDV)
  pixel_skew   Jensen-Shannon divergence of the pixel-intensity histogram from the training span's
  class_mix    L-infinity distance of the predicted-class mix from the test split's label mix
  low_confidence  the share of predictions under the server's low-confidence bound
  online_accuracy what was served against the labels that came back (monitoring.feedback)
And for the whole window: pixel_drift against the previous window: the last one this monitor judged
(history.jsonl in --out) if it ended by --since, else the same length of time just before.
Bounds: pipeline/configs.py (the DataGate's PIXEL_DRIFT_JSD and LABEL_DRIFT_LINF, MONITOR_*).

Writes check.json, monitor_report.html and monitor.prom (Prometheus text for node_exporter's
textfile collector: the alert rules in serving/deploy/prometheus/alerts.yml read it) to --out, and
appends the JSON to history.jsonl. Exit status: 0 quiet (or nothing to judge), 1 a check is
flagged, 2 the monitor could not run (no metadata, a metadata server down or refusing the login, an
unreadable schema).
"""

import argparse
import datetime
import json
import os
import sys
import time
from typing import Dict

import numpy as np

from modules.signatures import DEFAULT_LOW_CONFIDENCE_BOUND
from monitoring.console import route_library_output
from pipeline import configs
from pipeline import metadata as metadata_lib

CHECK_FILE = "check.json"
HISTORY_FILE = "history.jsonl"
PROM_FILE = "monitor.prom"
CHECK_NAMES = ("schema", "pixel_skew", "class_mix", "low_confidence", "online_accuracy", "pixel_drift")


def _time(text: str) -> float:
    """Seconds since the epoch, from a number or an ISO date-time (UTC unless it says otherwise)."""
    try:
        return float(text)
    except ValueError:
        parsed = datetime.datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=datetime.timezone.utc)
        return parsed.timestamp()


def _iso(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


LOW_CONFIDENCE_EXPLAINED = 8  # the least confident answers of a version shown with their attribution maps


def explain_low_confidence(rows, bound: float, version_dir):
    """The least confident answers under the bound, explained by the version's own explain
    signature: {"images", "answers", "top", "maps"}, {"note": why not} or None (no such answer)."""
    top = rows.probabilities.max(axis=1)
    low = np.flatnonzero(top < bound)
    if not len(low):
        return None
    low = low[np.argsort(top[low], kind="stable")][:LOW_CONFIDENCE_EXPLAINED]
    if not version_dir:
        return {"note": "the pushed version's folder is gone: its answers cannot be explained"}
    import tensorflow as tf

    from modules import attributions

    answers = rows.probabilities[low].argmax(axis=1)
    images = np.clip(np.round(rows.images[low]), 0, 255).astype(np.uint8)
    try:
        maps = attributions.saved_model_explainer(version_dir)(images, answers)
    except KeyError:
        return {"note": "this version has no explain signature (pushed before it existed)"}
    except (OSError, ValueError, tf.errors.OpError) as e:  # the folder went away or is damaged: go on
        return {"note": f"the pushed version could not be loaded to explain its answers: {type(e).__name__}"}
    return {"images": images, "answers": answers, "top": top[low], "maps": maps}


def run_check(
    log_prefix: str,
    metadata,
    feedback_store: str,
    since: float,
    until: float,
    previous_window: "tuple[float, float] | None" = None,
    model_name: str = configs.MODEL_NAME,
    low_confidence_bound: float = DEFAULT_LOW_CONFIDENCE_BOUND,
    schema_path: str = configs.SCHEMA_FILE,
):
    """-> (the result as JSON-ready dict, what the report plots). Plain inputs; no files written.
    metadata: an open ML Metadata store, the sqlite file's path or a ConnectionConfig (pipeline/metadata.py).
    previous_window: (since, until) of the window drift compares with (None: the time just before)."""
    import tensorflow_data_validation as tfdv

    from monitoring import checks, feedback, report, request_logs, served_model

    schema = tfdv.load_schema_text(schema_path)
    paths = request_logs.log_files(log_prefix)
    rows, problems = request_logs.read(paths, model_name, since, until)
    previous_since, previous_until = previous_window or (since - (until - since), since)
    previous, _ = request_logs.read(paths, model_name, previous_since, previous_until)
    result = {
        "model_name": model_name,
        "window": {
            "since": _iso(since),
            "until": _iso(until),
            "label": f"{_iso(since)} to {_iso(until)}",
            "since_seconds": since,
            "until_seconds": until,
            "previous": [_iso(previous_since), _iso(previous_until)],
        },
        "rows": len(rows),
        "log_problems": problems.as_dict(),
        "low_confidence_bound": low_confidence_bound,
        "unknown_versions": {},
        "versions": {},
        "drift": None,
    }
    plots: Dict[str, object] = {report.RECEIVED_PICTURES: request_logs.picture_samples(paths, model_name, since, until)}
    if not len(rows):
        result["verdict"] = (
            f"EMPTY WINDOW: no served request of model {model_name} was logged in it ({len(paths)} log files)"
        )
        result["flagged"] = []
        return result, plots

    known, unknown = served_model.lookup_all(metadata, rows.versions)
    for version, why in unknown.items():
        result["unknown_versions"][str(version)] = {"rows": int(np.sum(rows.versions == version)), "why": why}
    labelled = feedback.load_store(feedback_store)
    in_window = (labelled["timestamps"] >= since) & (labelled["timestamps"] < until)
    served_by_version = {}  # the statistics of each version's rows; the whole window's when one version served it
    for version, model in known.items():
        mine = rows.select(rows.versions == version)
        served_stats = served_by_version[version] = checks.statistics(mine.images, schema)
        judged = [
            checks.schema_anomalies(served_stats, schema),
            checks.pixel_skew(served_stats, model.train_statistics, schema, configs.PIXEL_DRIFT_JSD),
            checks.class_mix_shift(mine.probabilities, model.test_class_mix, configs.LABEL_DRIFT_LINF),
            checks.low_confidence(mine.probabilities, low_confidence_bound, configs.MONITOR_MAX_LOW_CONFIDENCE_RATE),
        ]
        if len(mine) < configs.MONITOR_MIN_ROWS:  # measured and shown, not judged: the histograms are noise
            for check in judged[1:]:
                check.flagged = False
                check.detail += f" (not judged: {len(mine)} rows, {configs.MONITOR_MIN_ROWS} needed)"
        selected = in_window & (labelled["versions"] == version)
        judged.append(
            checks.online_accuracy(
                labelled["probabilities"][selected],
                labelled["labels"][selected],
                model.test_accuracy,
                configs.MONITOR_MAX_ACCURACY_DROP,
                configs.MONITOR_MIN_LABELLED,
            )
        )
        result["versions"][str(version)] = {
            "rows": len(mine),
            "labelled_rows": int(selected.sum()),
            "test_accuracy": model.test_accuracy,
            "statistics_uri": model.statistics_uri,
            "checks": [c.as_dict() for c in judged],
        }
        plots[str(version)] = {
            "pixel_curves": {"training span": model.train_statistics, "served": served_stats},
            "served_mix": checks.class_mix(mine.probabilities),
            "test_mix": model.test_class_mix,
            "top_probabilities": mine.probabilities.max(axis=1),
            "why": explain_low_confidence(mine, low_confidence_bound, model.version_dir),
        }
    known_rows = rows.select(np.isin(rows.versions, list(known)))
    if len(known_rows):
        previous_stats = checks.statistics(previous.images, schema) if len(previous) else None
        window_stats = (
            served_by_version[next(iter(known))] if len(known) == 1 else checks.statistics(known_rows.images, schema)
        )
        drift = checks.pixel_drift(window_stats, previous_stats, schema, configs.PIXEL_DRIFT_JSD)
        if previous_stats is not None and min(len(previous), len(known_rows)) < configs.MONITOR_MIN_ROWS:
            drift.flagged = False
            drift.detail += f" (not judged: fewer than {configs.MONITOR_MIN_ROWS} rows on a side)"
        result["drift"] = drift.as_dict()
    flagged = sorted(
        {c["name"] for v in result["versions"].values() for c in v["checks"] if c["flagged"]}
        | ({"pixel_drift"} if result["drift"] and result["drift"]["flagged"] else set())
    )
    result["flagged"] = flagged
    if flagged:
        result["verdict"] = f"FLAGGED: {', '.join(flagged)} ({len(rows)} rows)"
    elif not known:
        result["verdict"] = f"NOT JUDGED: no version in the window is known to ML Metadata ({sorted(unknown)})"
    else:
        result["verdict"] = f"QUIET: {len(rows)} rows of versions {sorted(known)}; every check within its bound"
    return result, plots


def last_judged_window(out_dir: str, since: float):
    """(since, until) of the newest window in <out_dir>/history.jsonl that ended by `since`, or None."""
    path = os.path.join(out_dir, HISTORY_FILE)
    if not os.path.exists(path):
        return None
    windows = []
    with open(path) as f:
        for line in f:
            try:
                window = json.loads(line)["window"]
                windows.append((window["since_seconds"], window["until_seconds"]))
            except (ValueError, KeyError):
                continue  # a line from an older monitor or a torn write: not a window to compare with
    earlier = [w for w in windows if w[1] <= since]
    return max(earlier, key=lambda w: w[1]) if earlier else None


def write_prometheus(result: dict, path: str) -> None:
    """The result as gauges, for node_exporter's textfile collector; written by rename."""
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    registry = CollectorRegistry()
    flagged = Gauge(
        "mnist_tfx_monitor_flagged", "1 when the monitor's last window flagged this check", ["check"], registry=registry
    )
    for name in CHECK_NAMES:
        flagged.labels(name).set(1 if name in result["flagged"] else 0)
    value = Gauge(
        "mnist_tfx_monitor_value",
        "What the last window measured, per check and version",
        ["check", "version"],
        registry=registry,
    )
    for version, entry in result["versions"].items():
        for check in entry["checks"]:
            if check["value"] is not None:
                value.labels(check["name"], version).set(check["value"])
    if result["drift"] and result["drift"]["value"] is not None:
        value.labels("pixel_drift", "all").set(result["drift"]["value"])
    Gauge("mnist_tfx_monitor_rows", "Rows of served traffic in the last window", registry=registry).set(result["rows"])
    Gauge("mnist_tfx_monitor_last_run_timestamp_seconds", "When the monitor last ran", registry=registry).set(
        time.time()
    )
    write_to_textfile(path, registry)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--logs", default=configs.REQUEST_LOG_PREFIX, help="the request log's filename_prefix (or its folder)"
    )
    p.add_argument("--metadata", default=os.path.join(configs.OUTPUT_ROOT, configs.METADATA_FILE))
    metadata_lib.add_mysql_argument(p, "--metadata")
    p.add_argument("--feedback", default=configs.FEEDBACK_ROOT, help="the labelled rows (monitoring.feedback)")
    p.add_argument(
        "--since", help="window start: epoch seconds or ISO date-time (default: --window-seconds before --until)"
    )
    p.add_argument("--until", help="window end (default: now)")
    p.add_argument("--window-seconds", "--window_seconds", type=float, default=3600.0)
    p.add_argument("--model-name", "--model_name", default=configs.MODEL_NAME)
    p.add_argument("--low-confidence-bound", "--low_confidence_bound", type=float, default=DEFAULT_LOW_CONFIDENCE_BOUND)
    p.add_argument("--out", default=configs.MONITOR_ROOT)
    args = p.parse_args(argv)
    out = route_library_output("monitor")
    until = _time(args.until) if args.until else time.time()
    since = _time(args.since) if args.since else until - args.window_seconds
    if since >= until:
        p.error(f"the window is empty: --since {_iso(since)} is not before --until {_iso(until)}")
    from runs import summary

    # Opened once, before any log is read: a missing file, a server that is down or refuses the
    # login is said here, in plain words (runs.lineage opens it the same way).
    try:
        store = summary.read_only_store(
            metadata_lib.mysql_config(args.metadata_mysql) if args.metadata_mysql else args.metadata
        )
    except FileNotFoundError as e:
        print(f"monitor: {e}, or pass --metadata", file=out)
        return 2
    except (ValueError, metadata_lib.MetadataUnavailable) as e:
        print(f"monitor: {e}", file=out)
        return 2
    from monitoring import report

    result, plots = run_check(
        args.logs,
        store,
        args.feedback,
        since,
        until,
        last_judged_window(args.out, since),
        args.model_name,
        args.low_confidence_bound,
    )
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, CHECK_FILE), "w") as f:
        json.dump(result, f, indent=2)
    with open(os.path.join(args.out, HISTORY_FILE), "a") as f:
        f.write(json.dumps(result) + "\n")
    write_prometheus(result, os.path.join(args.out, PROM_FILE))
    page = report.write(result, plots, args.out)
    print(result["verdict"], file=out)
    problems = result["log_problems"]
    if problems["truncated_files"] or problems["bad_records"] or result["unknown_versions"]:
        print(
            f"  skipped: {problems['truncated_files']} truncated files, {problems['bad_records']} unreadable records, "
            f"rows of unknown versions {dict((v, u['rows']) for v, u in result['unknown_versions'].items())}",
            file=out,
        )
        for line in problems["messages"][:5]:
            print(f"  {line}", file=out)
    print(f"  report: {page}", file=out)
    return 1 if result["flagged"] else 0


if __name__ == "__main__":
    sys.exit(main())
