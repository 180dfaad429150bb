"""Feedback: true labels for logged requests, joined with what was served and stored.

    python -m monitoring.feedback --labels labels.csv [--logs PREFIX] [--store DIR]

The labels file is CSV with a header (`request_id,label` and optionally `row`, the image's position
in a batched request, default 0) or JSON lines with the same keys. Each label is joined to the
logged request by id and row; the joined rows (image, label, the version that answered, its
probabilities, when) are written to a new file in the store, never over an existing one.

Reported with counts, never stored: ids given twice (in this file or already stored), ids the
log holds more than once (ambiguous: a label could belong to either), labels that are not an
integer 0-9, lines that cannot be read. A label whose id no log holds yet (its record is still in
the server's queue, or in a file not yet rotated) waits in the store's pending.jsonl and is joined
by a later call; after --wait-seconds it is refused as unknown.

The ids are the server's own (serving/server/request_log.py): a client cannot choose the id its request
is logged under. One call at a time changes a store (a lock file), so two calls never store the
same row twice; the readers (the monitor, the span writer) drop any row stored twice with
different labels.
"""

import argparse
import contextlib
import csv
import datetime
import fcntl
import io
import json
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np

from modules import durable, features
from monitoring.console import route_library_output
from pipeline import configs

STORE_PATTERN = "labelled-*.npz"
PENDING_FILE = "pending.jsonl"  # labels whose request is not in the log yet, with when they came
LOCK_FILE = ".lock"
DEFAULT_WAIT_SECONDS = 24 * 3600  # how long a label waits for its request to be logged
_FIELDS = ("request_ids", "rows", "versions", "timestamps", "images", "probabilities", "labels")


@dataclass
class FeedbackReport:
    lines: int = 0
    stored: int = 0
    unknown_ids: int = 0  # still not in the log after waiting
    waiting: int = 0  # not in the log yet: kept in pending.jsonl for a later call
    duplicates: int = 0  # given twice in this file, or stored by an earlier call
    ambiguous: int = 0  # the log holds the id and row more than once
    bad_labels: int = 0  # not an integer in 0-9
    unreadable_lines: int = 0
    stored_file: str = ""
    missing: List[Tuple[str, int, int]] = field(default_factory=list)  # labels whose id the log lacks
    examples: List[str] = field(default_factory=list)  # a few of the refused lines, in plain words

    def refuse(self, counter: str, message: str) -> None:
        setattr(self, counter, getattr(self, counter) + 1)
        if len(self.examples) < 10:
            self.examples.append(message)


def parse_labels(text: str, report: FeedbackReport) -> List[Tuple[str, int, int]]:
    """(request id, row, label) of each readable line; the rest counted in the report."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        records = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append((number, json.loads(line)))
            except ValueError:
                report.lines += 1
                report.refuse("unreadable_lines", f"line {number}: not JSON")
    else:
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or not {"request_id", "label"} <= set(reader.fieldnames):
            raise ValueError(f"the CSV header must name request_id and label (optionally row); got {reader.fieldnames}")
        records = [(number, r) for number, r in enumerate(reader, 2)]
    labels = []
    for number, record in records:
        report.lines += 1
        if not isinstance(record, dict) or not record.get("request_id"):
            report.refuse("unreadable_lines", f"line {number}: no request_id")
            continue
        label, row = record.get("label"), record.get("row") or 0
        try:
            label_int, row_int = int(str(label)), int(str(row))
        except ValueError:
            report.refuse("bad_labels", f"line {number}: label {label!r} (row {row!r}) is not an integer")
            continue
        if not 0 <= label_int < features.NUM_CLASSES or row_int < 0:
            report.refuse("bad_labels", f"line {number}: label {label_int} is outside 0-{features.NUM_CLASSES - 1}")
            continue
        labels.append((str(record["request_id"]), row_int, label_int))
    return labels


def stored_keys(store: str) -> set:
    """(request id, row) of every labelled row already in the store."""
    keys = set()
    for path in store_files(store):
        with np.load(path) as data:
            keys.update(zip(data["request_ids"].tolist(), data["rows"].tolist()))
    return keys


def store_files(store: str) -> List[str]:
    import glob

    return sorted(glob.glob(os.path.join(store, STORE_PATTERN)))


def load_store(store: str) -> Dict[str, np.ndarray]:
    """Every labelled row in the store, as parallel arrays (empty arrays when there is none). A row
    stored more than once keeps its first copy when the labels agree and is left out when they
    conflict: no reader trains or judges on a label that another contradicts."""
    parts = [dict(np.load(path)) for path in store_files(store)]
    if not parts:
        return {
            "request_ids": np.array([], str),
            "rows": np.array([], np.int64),
            "versions": np.array([], np.int64),
            "timestamps": np.array([], np.int64),
            "images": np.zeros((0, features.IMAGE_HEIGHT, features.IMAGE_WIDTH), np.uint8),
            "probabilities": np.zeros((0, features.NUM_CLASSES), np.float32),
            "labels": np.array([], np.int64),
        }
    merged = {k: np.concatenate([p[k] for p in parts]) for k in _FIELDS}
    keys = list(zip(merged["request_ids"].tolist(), merged["rows"].tolist()))
    labels_of: Dict[tuple, set] = {}
    for key, label in zip(keys, merged["labels"].tolist()):
        labels_of.setdefault(key, set()).add(label)
    kept, seen = [], set()
    for i, key in enumerate(keys):
        if key not in seen and len(labels_of[key]) == 1:
            kept.append(i)
        seen.add(key)
    return {k: v[np.array(kept, np.int64)] for k, v in merged.items()}


def join(labels: List[Tuple[str, int, int]], served, already: set, report: FeedbackReport) -> Dict[str, np.ndarray]:
    """The served rows the labels name, with the labels; duplicate and ambiguous ids counted, and
    ids the log does not hold in report.missing (for the caller to keep waiting or refuse)."""
    index: Dict[tuple, int] = {}
    logged_twice = set()
    for i, key in enumerate(zip(served.request_ids.tolist(), served.rows.tolist())):
        key = (key[0], int(key[1]))
        if key in index:
            logged_twice.add(key)
        index[key] = i
    taken, seen = [], set()
    for request_id, row, label in labels:
        key = (request_id, row)
        if key in seen or key in already:
            report.refuse("duplicates", f"request {request_id} row {row}: labelled already")
            continue
        seen.add(key)
        if key in logged_twice:
            report.refuse(
                "ambiguous", f"request {request_id} row {row}: logged more than once; the label could be either's"
            )
            continue
        if key not in index:
            report.missing.append((request_id, row, label))
            continue
        taken.append((index[key], label))
    positions = np.array([i for i, _ in taken], np.int64)
    return {
        "request_ids": served.request_ids[positions],
        "rows": served.rows[positions],
        "versions": served.versions[positions],
        "timestamps": served.timestamps[positions],
        "images": served.images[positions],
        "probabilities": served.probabilities[positions],
        "labels": np.array([label for _, label in taken], np.int64),
    }


def write_new(store: str, joined: Dict[str, np.ndarray]) -> str:
    """Writes a new store file in one rename; an existing file is never opened for writing."""
    os.makedirs(store, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    path = os.path.join(store, f"labelled-{stamp}-{os.getpid()}.npz")
    if os.path.exists(path):
        raise FileExistsError(f"{path} exists; not overwriting it")
    tmp = os.path.join(store, f".{os.path.basename(path)}.tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **joined)
        f.flush()
        os.fsync(f.fileno())  # the bytes on disk before the name that publishes them
    os.rename(tmp, path)
    durable.sync_folder(store)
    return path


@contextlib.contextmanager
def locked(store: str):
    """One call at a time changes the store (an exclusive lock on <store>/.lock, released when the
    process ends, however it ends)."""
    os.makedirs(store, exist_ok=True)
    with open(os.path.join(store, LOCK_FILE), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def read_pending(store: str) -> List[dict]:
    path = os.path.join(store, PENDING_FILE)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def write_pending(store: str, pending: List[dict]) -> None:
    """Replaces pending.jsonl in one rename, its bytes on disk first."""
    durable.replace_file(os.path.join(store, PENDING_FILE), "".join(json.dumps(p) + "\n" for p in pending))


def add_feedback(
    labels_text: str, log_prefix: str, store: str, model_name: str, wait_seconds: float = DEFAULT_WAIT_SECONDS
) -> FeedbackReport:
    from monitoring import request_logs

    report = FeedbackReport()
    labels = parse_labels(labels_text, report)
    now = time.time()
    with locked(store):
        pending = read_pending(store)
        came = {(p["request_id"], p["row"]): p["came"] for p in pending}
        labels = [(p["request_id"], p["row"], p["label"]) for p in pending] + labels
        served, _ = request_logs.read(request_logs.log_files(log_prefix), model_name)
        joined = join(labels, served, stored_keys(store), report)
        still = []
        for request_id, row, label in report.missing:
            first = came.get((request_id, row), now)
            if now - first < wait_seconds:
                report.waiting += 1
                still.append({"request_id": request_id, "row": row, "label": label, "came": first})
            else:
                report.refuse("unknown_ids", f"request {request_id} row {row}: no logged request has this id")
        report.stored = len(joined["labels"])
        if report.stored:
            report.stored_file = write_new(store, joined)
        if still or pending:
            write_pending(store, still)
    return report


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--labels", required=True, help="CSV (request_id,label[,row]) or JSON lines")
    p.add_argument("--logs", default=configs.REQUEST_LOG_PREFIX, help="the request log's filename_prefix")
    p.add_argument("--store", default=configs.FEEDBACK_ROOT, help="where labelled rows are kept")
    p.add_argument("--model-name", "--model_name", default=configs.MODEL_NAME)
    p.add_argument(
        "--wait-seconds",
        "--wait_seconds",
        type=float,
        default=DEFAULT_WAIT_SECONDS,
        help="how long a label whose request is not in the log yet waits (in pending.jsonl) before it is refused",
    )
    args = p.parse_args(argv)
    out = route_library_output("feedback")
    with open(args.labels) as f:
        text = f.read()
    try:
        report = add_feedback(text, args.logs, args.store, args.model_name, args.wait_seconds)
    except ValueError as e:
        print(f"feedback refused: {e}", file=out)
        return 2
    print(
        f"{report.lines} labels read: {report.stored} stored"
        + (f" in {report.stored_file}" if report.stored_file else "")
        + f"; waiting for their request in the log: {report.waiting}"
        + f"; refused: {report.unknown_ids} unknown ids, {report.duplicates} duplicates, "
        f"{report.ambiguous} ids logged more than once, "
        f"{report.bad_labels} labels outside 0-9, {report.unreadable_lines} unreadable lines",
        file=out,
    )
    for line in report.examples:
        print(f"  {line}", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
