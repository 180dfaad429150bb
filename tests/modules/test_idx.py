"""The IDX reader on the real files, and a clear error for each kind of corrupt file."""

import gzip
import os
import struct

import numpy as np
import pytest

from modules import idx


def test_reads_shipped_training_files(train_images_labels):
    images, labels = train_images_labels
    assert images.shape == (60000, 28, 28) and images.dtype == np.uint8
    # Published facts of MNIST's training set (data/mnist/README.md).
    assert labels[:8].tolist() == [5, 0, 4, 1, 9, 2, 1, 3]
    assert np.bincount(labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert round(float(images.mean()) / 255, 4) == 0.1307


def test_write_then_read_round_trips(tmp_path):
    images = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    labels = np.array([7, 0, 9], np.uint8)
    idx.write_images(str(tmp_path / "i.gz"), images)
    idx.write_labels(str(tmp_path / "l.gz"), labels)
    got_images, got_labels = idx.read_pair(str(tmp_path / "i.gz"), str(tmp_path / "l.gz"))
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)


def _write_raw(path, payload: bytes, compress=True):
    with open(path, "wb") as f:
        f.write(gzip.compress(payload) if compress else payload)
    return str(path)


@pytest.mark.parametrize(
    "name,payload,compress,reader,message",
    [
        (
            "wrong_magic",
            struct.pack(">iiii", 0x0801, 1, 28, 28) + bytes(784),
            True,
            idx.read_images,
            "magic number 0x00000801, expected 0x00000803",
        ),
        (
            "small_images",
            struct.pack(">iiii", 0x0803, 2, 27, 27) + bytes(2 * 27 * 27),
            True,
            idx.read_images,
            "images are 27x27, expected 28x28",
        ),
        (
            "short_body",
            struct.pack(">iiii", 0x0803, 3, 28, 28) + bytes(2 * 784),
            True,
            idx.read_images,
            "header promises 3 records (2352 bytes of data), the file holds 1568 bytes",
        ),
        (
            "label_ten",
            struct.pack(">ii", 0x0801, 3) + bytes([1, 10, 2]),
            True,
            idx.read_labels,
            "1 labels outside 0-9 (first at record 1: 10)",
        ),
        ("not_gzip", struct.pack(">ii", 0x0801, 1) + bytes([1]), False, idx.read_labels, "not a complete gzip file"),
        ("header_only", struct.pack(">i", 0x0803), True, idx.read_images, "shorter than the 16-byte IDX header"),
    ],
)
def test_corrupt_file_names_file_and_problem(tmp_path, name, payload, compress, reader, message):
    path = _write_raw(tmp_path / f"{name}.gz", payload, compress)
    with pytest.raises(idx.IdxFormatError) as err:
        reader(path)
    assert path in str(err.value) and message in str(err.value)


def test_truncated_gzip(tmp_path):
    full = gzip.compress(struct.pack(">iiii", 0x0803, 10, 28, 28) + os.urandom(10 * 784))
    path = tmp_path / "truncated.gz"
    path.write_bytes(full[: len(full) // 2])
    with pytest.raises(idx.IdxFormatError, match="not a complete gzip file"):
        idx.read_images(str(path))


def test_image_and_label_counts_must_match(tmp_path):
    idx.write_images(str(tmp_path / "i.gz"), np.zeros((3, 28, 28), np.uint8))
    idx.write_labels(str(tmp_path / "l.gz"), np.zeros(2, np.uint8))
    with pytest.raises(idx.IdxFormatError, match="holds 3 images but .* holds 2 labels"):
        idx.read_pair(str(tmp_path / "i.gz"), str(tmp_path / "l.gz"))


def test_a_shard_pairs_by_its_own_name_and_keeps_its_pair_as_source():
    shard = "/d/span-1/train-00003-of-00008-images-idx3-ubyte.gz"
    assert idx.pair_name(shard) == "train-00003-of-00008" and idx.source_name(shard) == "train"
    assert idx.source_name("/d/span-2/t10k-fresh-labels-idx1-ubyte.gz") == "t10k-fresh"
