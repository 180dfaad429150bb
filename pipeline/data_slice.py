"""Writes the first records of the latest span as a new, smaller span (quick mode, tests)."""
import os
import re

import tensorflow as tf

from components.idx_example_gen import idx

_SPAN_DIR = re.compile(r"^span-(\d+)$")
_IMAGE_FILES = ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte")


def latest_span_dir(data_root: str) -> str:
    spans = [(int(m.group(1)), name) for name in tf.io.gfile.listdir(data_root)
             if (m := _SPAN_DIR.match(name.rstrip("/")))]
    if not spans:
        raise FileNotFoundError(f"{data_root}: no span-N folders")
    return os.path.join(data_root, max(spans)[1].rstrip("/"))


def write_slice(data_root: str, out_root: str, train_records: int, test_records: int) -> str:
    """Copies the first train_records / test_records of the latest span to out_root/span-1."""
    src = latest_span_dir(data_root)
    dst = os.path.join(out_root, "span-1")
    tf.io.gfile.makedirs(dst)
    for stem, count in zip(_IMAGE_FILES, (train_records, test_records)):
        label_stem = stem.replace("images-idx3", "labels-idx1")
        images, labels = idx.read_pair(os.path.join(src, stem + ".gz"), os.path.join(src, label_stem + ".gz"))
        idx.write_images(os.path.join(dst, stem + ".gz"), images[:count])
        idx.write_labels(os.path.join(dst, label_stem + ".gz"), labels[:count])
    return out_root
