"""Closing the loop: labelled production traffic becomes the next span.

    python -m monitoring.span [--data-root data/mnist] [--store data/feedback]

Writes span-<N+1>/ next to the latest span-N/, in the same IDX layout ExampleGen reads:
  train pair  span-N's training records, then the new labelled rows' training part: the next model
              learns the fresh traffic without forgetting MNIST;
  t10k pair   span-N's test records, unchanged: "not worse on the MNIST test split" stays comparable;
  t10k-fresh  the held-out part of the new labelled rows (a hash of request id and row decides, so
              a row's side never changes); ExampleGen adds it to the test split with its own source,
              and the Evaluator blesses a new model only if it beats the served one there
              (pipeline/blessing.py);
  feedback_rows.json  which labelled rows the span took, so none is used twice.
The folder appears complete or not at all (written under a hidden name, then renamed).
"""

import argparse
import hashlib
import json
import os
import shutil
import sys
from typing import Dict

import numpy as np

from modules import durable, idx
from pipeline import configs

ROWS_FILE = "feedback_rows.json"


def held_out(request_id: str, row: int, share: float) -> bool:
    """Whether a labelled row belongs to the held-out part: a stable hash, not a random draw."""
    digest = hashlib.sha256(f"{request_id}/{row}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def used_rows(data_root: str) -> set:
    """(request id, row) of every labelled row an existing span took."""
    used = set()
    for name in os.listdir(data_root):
        path = os.path.join(data_root, name, ROWS_FILE)
        if os.path.exists(path):
            with open(path) as f:
                used.update((r, int(k)) for r, k in json.load(f)["rows"])
    return used


def new_rows(stored: Dict[str, np.ndarray], used: set) -> np.ndarray:
    keys = zip(stored["request_ids"].tolist(), stored["rows"].tolist())
    return np.array([(r, int(k)) not in used for r, k in keys], bool)


def write_span(data_root: str, store: str, holdout_share: float = configs.FRESH_HOLDOUT_SHARE) -> dict:
    """Writes the next span from the labelled rows no span took yet; returns what it wrote.
    ValueError (in plain words) when there is nothing new, or too little to hold any out."""
    from monitoring import feedback

    stored = feedback.load_store(store)
    fresh = new_rows(stored, used_rows(data_root))
    if not fresh.any():
        raise ValueError(f"no labelled rows in {store} that a span has not taken already ({len(fresh)} stored)")
    ids, rows = stored["request_ids"][fresh], stored["rows"][fresh]
    images, labels = stored["images"][fresh], stored["labels"][fresh]
    out = np.array([held_out(r, int(k), holdout_share) for r, k in zip(ids.tolist(), rows.tolist())], bool)
    if out.all() or not out.any():
        raise ValueError(f"{len(ids)} new labelled rows cannot be split into a training and a held-out part")

    span, previous = idx.latest_span(data_root)
    target = idx.span_dir(data_root, span + 1)
    if os.path.exists(target):
        raise ValueError(f"{target} exists already; not touching it")
    staging = os.path.join(data_root, f".{os.path.basename(target)}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    train_images, train_labels = idx.read_span_pair(previous, "train")
    parts = {
        "train": (np.concatenate([train_images, images[~out]]), np.concatenate([train_labels, labels[~out]])),
        "t10k": idx.read_span_pair(previous, "t10k"),
        idx.FRESH_PAIR: (images[out], labels[out]),
    }
    for pair, (pair_images, pair_labels) in parts.items():
        images_path, labels_path = idx.pair_paths(staging, pair)
        idx.write_images(images_path, pair_images)
        idx.write_labels(labels_path, pair_labels)
    written = {
        "span": span + 1,
        "from_span": span,
        "train_records": int(len(parts["train"][1])),
        "fresh_training_rows": int((~out).sum()),
        "fresh_held_out_rows": int(out.sum()),
        "test_records": int(len(parts["t10k"][1])),
        "rows": [[r, int(k)] for r, k in zip(ids.tolist(), rows.tolist())],
    }
    with open(os.path.join(staging, ROWS_FILE), "w") as f:
        json.dump(written, f)
    durable.publish_tree(staging, target)  # fails, rather than overwrites, if the span appeared meanwhile
    return {k: v for k, v in written.items() if k != "rows"} | {"folder": target}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", "--data_root", default=configs.DATA_ROOT)
    p.add_argument("--store", default=configs.FEEDBACK_ROOT, help="the labelled rows (monitoring.feedback)")
    p.add_argument("--holdout-share", "--holdout_share", type=float, default=configs.FRESH_HOLDOUT_SHARE)
    args = p.parse_args(argv)
    try:
        written = write_span(args.data_root, args.store, args.holdout_share)
    except (ValueError, FileNotFoundError) as e:
        print(f"no new span: {e}", file=sys.stderr)
        return 2
    print(
        f"span {written['span']} written to {written['folder']}: {written['train_records']} training records "
        f"({written['fresh_training_rows']} of them fresh), {written['test_records']} test records, "
        f"{written['fresh_held_out_rows']} fresh rows held out"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
