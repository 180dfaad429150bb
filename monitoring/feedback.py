"""Feedback: true labels for logged requests, joined with what was served and stored.

    python -m monitoring.feedback --labels labels.csv [--logs PREFIX] [--store DIR]

The labels file is CSV with a header (`request_id,label` and optionally `row`, the image's position
in a batched request, default 0) or JSON lines with the same keys. Each label is joined to the
logged request by id and row; the joined rows (image, label, the version that answered, its
probabilities, when) are written to a new file in the store, never over an existing one.

Reported with counts, never stored: ids no log holds, ids given twice (in this file or already
stored), labels that are not an integer 0-9, lines that cannot be read.
"""

import argparse
import csv
import datetime
import io
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np

from modules import features
from monitoring.console import route_library_output
from pipeline import configs

STORE_PATTERN = "labelled-*.npz"
_FIELDS = ("request_ids", "rows", "versions", "timestamps", "images", "probabilities", "labels")


@dataclass
class FeedbackReport:
    lines: int = 0
    stored: int = 0
    unknown_ids: int = 0
    duplicates: int = 0  # given twice in this file, or stored by an earlier call
    bad_labels: int = 0  # not an integer in 0-9
    unreadable_lines: int = 0
    stored_file: str = ""
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
    """Every labelled row in the store, as parallel arrays (empty arrays when there is none)."""
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
    return {k: np.concatenate([p[k] for p in parts]) for k in _FIELDS}


def join(labels: List[Tuple[str, int, int]], served, already: set, report: FeedbackReport) -> Dict[str, np.ndarray]:
    """The served rows the labels name, with the labels; unknown and duplicate ids counted."""
    index = {(rid, int(row)): i for i, (rid, row) in enumerate(zip(served.request_ids.tolist(), served.rows.tolist()))}
    taken, seen = [], set()
    for request_id, row, label in labels:
        key = (request_id, row)
        if key in seen or key in already:
            report.refuse("duplicates", f"request {request_id} row {row}: labelled already")
            continue
        seen.add(key)
        if key not in index:
            report.refuse("unknown_ids", f"request {request_id} row {row}: no logged request has this id")
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
    os.rename(tmp, path)
    return path


def add_feedback(labels_text: str, log_prefix: str, store: str, model_name: str) -> FeedbackReport:
    from monitoring import request_logs

    report = FeedbackReport()
    labels = parse_labels(labels_text, report)
    served, _ = request_logs.read(request_logs.log_files(log_prefix), model_name)
    joined = join(labels, served, stored_keys(store), report)
    report.stored = len(joined["labels"])
    if report.stored:
        report.stored_file = write_new(store, joined)
    return report


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--labels", required=True, help="CSV (request_id,label[,row]) or JSON lines")
    p.add_argument("--logs", default=configs.REQUEST_LOG_PREFIX, help="the request log's filename_prefix")
    p.add_argument("--store", default=configs.FEEDBACK_ROOT, help="where labelled rows are kept")
    p.add_argument("--model_name", default=configs.MODEL_NAME)
    args = p.parse_args(argv)
    out = route_library_output("feedback")
    with open(args.labels) as f:
        text = f.read()
    try:
        report = add_feedback(text, args.logs, args.store, args.model_name)
    except ValueError as e:
        print(f"feedback refused: {e}", file=out)
        return 2
    print(
        f"{report.lines} labels read: {report.stored} stored"
        + (f" in {report.stored_file}" if report.stored_file else "")
        + f"; refused: {report.unknown_ids} unknown ids, {report.duplicates} duplicates, "
        f"{report.bad_labels} labels outside 0-9, {report.unreadable_lines} unreadable lines",
        file=out,
    )
    for line in report.examples:
        print(f"  {line}", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
