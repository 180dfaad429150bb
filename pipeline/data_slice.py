"""Writes the first records of the latest span as a new, smaller span (quick mode, tests)."""

import tensorflow as tf

from modules import idx


def write_slice(data_root: str, out_root: str, train_records: int, test_records: int) -> str:
    """Copies the first train_records / test_records of the latest span to out_root/span-1, and
    its held-out fresh rows whole when it was made from feedback (they are few)."""
    _, src = idx.latest_span(data_root)
    dst = idx.span_dir(out_root, 1)
    tf.io.gfile.makedirs(dst)
    for pair, count in (("train", train_records), ("t10k", test_records)):
        images, labels = idx.read_span_pair(src, pair)
        images_path, labels_path = idx.pair_paths(dst, pair)
        idx.write_images(images_path, images[:count])
        idx.write_labels(labels_path, labels[:count])
    if idx.has_fresh_pair(src):
        for path, copy in zip(idx.pair_paths(src, idx.FRESH_PAIR), idx.pair_paths(dst, idx.FRESH_PAIR)):
            tf.io.gfile.copy(path, copy, overwrite=True)
    return out_root
