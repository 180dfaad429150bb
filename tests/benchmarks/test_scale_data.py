"""The scale generator: deterministic, label-preserving, MNIST-shaped."""

import os

import numpy as np

from benchmarks import scale_data
from modules import idx


def test_copies_are_deterministic_distorted_and_keep_labels(tmp_path, small_data_root):
    source = os.path.join(small_data_root, "span-1")
    counts = scale_data.write_span(3, str(tmp_path / "a"), source=source)
    scale_data.write_span(3, str(tmp_path / "b"), source=source)
    assert counts == {"train": 1800, "t10k": 600}
    for images_file, labels_file in idx.PAIRS.values():
        a = idx.read_pair(str(tmp_path / "a" / "span-1" / images_file), str(tmp_path / "a" / "span-1" / labels_file))
        b = idx.read_pair(str(tmp_path / "b" / "span-1" / images_file), str(tmp_path / "b" / "span-1" / labels_file))
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])  # same bytes twice
        original, original_labels = idx.read_pair(os.path.join(source, images_file), os.path.join(source, labels_file))
        n = len(original)
        images, labels = a
        # Every copy carries the source's labels in the source's order.
        assert images.shape == (3 * n, 28, 28) and np.array_equal(labels, np.tile(original_labels, 3))
        assert np.array_equal(images[:n], original)  # the originals come first, unchanged
        for k in (1, 2):  # each copy differs from the original but keeps most of its ink
            copy = images[k * n : (k + 1) * n].astype(float)
            assert not np.array_equal(copy, original)
            assert 0.8 < copy.sum() / original.astype(float).sum() < 1.2


def test_shards_hold_the_same_records_in_order(tmp_path, small_data_root):
    source = os.path.join(small_data_root, "span-1")
    scale_data.write_span(2, str(tmp_path / "one"), source=source)
    scale_data.write_span(2, str(tmp_path / "three"), source=source, shards=3)
    for pair in idx.PAIRS:
        whole = idx.read_span_pair(str(tmp_path / "one" / "span-1"), pair)
        parts = [idx.read_pair(*idx.shard_paths(str(tmp_path / "three" / "span-1"), pair, s, 3)) for s in range(3)]
        assert np.array_equal(np.concatenate([p[0] for p in parts]), whole[0])
        assert np.array_equal(np.concatenate([p[1] for p in parts]), whole[1])
