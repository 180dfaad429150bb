"""Writes the first records of the latest span as a new, smaller span (quick mode, tests)."""

import os
import re

import tensorflow as tf

from modules import idx

_SPAN_DIR = re.compile(r"^span-(\d+)$")  # ExampleGen's span-{SPAN} folders


def latest_span_dir(data_root: str) -> str:
    spans = [
        (int(m.group(1)), name) for name in tf.io.gfile.listdir(data_root) if (m := _SPAN_DIR.match(name.rstrip("/")))
    ]
    if not spans:
        raise FileNotFoundError(f"{data_root}: no span-N folders")
    return os.path.join(data_root, max(spans)[1].rstrip("/"))


def write_slice(data_root: str, out_root: str, train_records: int, test_records: int) -> str:
    """Copies the first train_records / test_records of the latest span to out_root/span-1."""
    src = latest_span_dir(data_root)
    dst = os.path.join(out_root, "span-1")
    tf.io.gfile.makedirs(dst)
    for pair, count in (("train", train_records), ("t10k", test_records)):
        images, labels = idx.read_span_pair(src, pair)
        images_path, labels_path = idx.pair_paths(dst, pair)
        idx.write_images(images_path, images[:count])
        idx.write_labels(labels_path, labels[:count])
    return out_root
