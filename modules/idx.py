"""MNIST's IDX files (gzip-compressed): their names in a span folder, a reader that checks every
header field, and a writer. The one home of the format: ExampleGen, data slices, the serving CLI,
benchmarks and tests all read through it.

IDX layout: a big-endian int32 magic number (0x00000803 for images, 0x00000801 for
labels), one big-endian int32 per dimension, then the raw uint8 data.
Every problem raises IdxFormatError naming the file, so a bad data drop is reported
in plain words instead of surfacing as a reshape error deep inside Beam.

No TensorFlow import: local paths use plain files; remote ones (gs://, s3://) go through
tf.io.gfile, imported only then.
"""

import gzip
import io
import os
import re
import struct
import zlib
from typing import Tuple

import numpy as np

from modules import features

IMAGES_MAGIC = 0x00000803  # uint8 data, 3 dimensions
LABELS_MAGIC = 0x00000801  # uint8 data, 1 dimension

IMAGES_MARKER, LABELS_MARKER = "images-idx3", "labels-idx1"  # how a file's kind shows in its name


def _pair(prefix: str) -> Tuple[str, str]:
    return f"{prefix}-{IMAGES_MARKER}-ubyte.gz", f"{prefix}-{LABELS_MARKER}-ubyte.gz"


# The data root holds one folder per span; ExampleGen's input patterns use SPAN_FOLDER, with TFX's
# {SPAN} placeholder, and take the highest span.
SPAN_FOLDER = "span-{SPAN}"
_SPAN_NAME = re.compile(r"^span-(\d+)$")


def span_dir(data_root: str, span: int) -> str:
    return os.path.join(data_root, SPAN_FOLDER.replace("{SPAN}", str(span)))


def latest_span(data_root: str) -> Tuple[int, str]:
    """(number, folder) of the highest span-N folder under data_root."""
    if "://" in data_root:
        import tensorflow as tf

        names = tf.io.gfile.listdir(data_root)
    else:
        names = os.listdir(data_root)
    spans = [int(m.group(1)) for name in names if (m := _SPAN_NAME.match(name.rstrip("/")))]
    if not spans:
        raise FileNotFoundError(f"{data_root}: no span-N folders")
    return max(spans), span_dir(data_root, max(spans))


# A span folder holds two pairs, named as MNIST ships them: its training file (ExampleGen's train
# and eval splits) and its test file (the test split).
TRAIN_PAIR, TEST_PAIR = "train", "t10k"
PAIRS = {TRAIN_PAIR: _pair(TRAIN_PAIR), TEST_PAIR: _pair(TEST_PAIR)}
# A span made from production feedback (monitoring/span.py) holds a third: the held-out part of the
# fresh labelled window. Its name starts like the test pair's, so the test split's pattern reads it
# too; the Evaluator tells the two apart by each example's source (features.SOURCE_KEY) and blesses a
# model only if it beats the served one on these rows (pipeline/blessing.py).
FRESH_PAIR = "t10k-fresh"
_ALL_PAIRS = {**PAIRS, FRESH_PAIR: _pair(FRESH_PAIR)}


def pair_glob(pair: str) -> str:
    """A glob matching both files of PAIRS[pair], and of every pair whose name starts with
    `{pair}-` (what ExampleGen's split patterns use: "t10k" matches FRESH_PAIR as well)."""
    return f"{pair}-*-ubyte.gz"


def pair_name(path: str) -> str:
    """The file pair a file belongs to: its name before the images/labels marker ("t10k-fresh",
    "train-00003-of-00008")."""
    name = os.path.basename(path)
    for marker in (IMAGES_MARKER, LABELS_MARKER):
        if f"-{marker}" in name:
            return name[: name.index(f"-{marker}")]
    raise IdxFormatError(f"{path}: the name has neither '-{IMAGES_MARKER}' nor '-{LABELS_MARKER}'")


# A large span may hold a pair as shards, each its own pair of files, so that ExampleGen reads them
# on several workers: train-00000-of-00008-images-idx3-ubyte.gz with train-00000-of-00008-labels-...
_SHARD_SUFFIX = re.compile(r"-\d{5}-of-\d{5}$")


def shard_prefix(pair: str, shard: int, shards: int) -> str:
    return f"{pair}-{shard:05d}-of-{shards:05d}"


def shard_paths(span_dir: str, pair: str, shard: int, shards: int) -> Tuple[str, str]:
    """(images path, labels path) of one shard of a pair."""
    return tuple(os.path.join(span_dir, name) for name in _pair(shard_prefix(pair, shard, shards)))


def write_shards(span_dir: str, pair: str, images: np.ndarray, labels: np.ndarray, shards: int) -> None:
    """Writes a pair as `shards` shard pairs of nearly equal size (shards=1: the plain pair)."""
    prefixes = [pair] if shards == 1 else [shard_prefix(pair, shard, shards) for shard in range(shards)]
    for prefix, part_images, part_labels in zip(
        prefixes, np.array_split(images, shards), np.array_split(labels, shards)
    ):
        images_name, labels_name = _pair(prefix)
        write_images(os.path.join(span_dir, images_name), part_images)
        write_labels(os.path.join(span_dir, labels_name), part_labels)


def source_name(path: str) -> str:
    """The pair a file's records come from, shard or not ("train" for every shard of train): each
    example's source (features.SOURCE_KEY)."""
    return _SHARD_SUFFIX.sub("", pair_name(path))


def has_fresh_pair(span_dir: str) -> bool:
    """Whether a span folder holds the held-out rows of a fresh labelled window."""
    return _exists(pair_paths(span_dir, FRESH_PAIR)[0])


def pair_paths(span_dir: str, pair: str) -> Tuple[str, str]:
    """(images path, labels path) of a pair ("train", "t10k" or FRESH_PAIR) in a span folder."""
    return tuple(os.path.join(span_dir, name) for name in _ALL_PAIRS[pair])


def read_span_pair(span_dir: str, pair: str):
    """(images, labels) of a pair (as pair_paths names it) in a span folder."""
    return read_pair(*pair_paths(span_dir, pair))


def _open(path: str, mode: str):
    if "://" in path:
        import tensorflow as tf  # remote file systems only

        return tf.io.gfile.GFile(path, mode)
    return open(path, mode)


def _exists(path: str) -> bool:
    if "://" in path:
        import tensorflow as tf

        return tf.io.gfile.exists(path)
    return os.path.exists(path)


class IdxFormatError(ValueError):
    """An IDX file that is not what MNIST's format promises."""


def _read_bytes(path: str) -> bytes:
    with _open(path, "rb") as f:
        raw = f.read()
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise IdxFormatError(f"{path}: not a complete gzip file ({e})") from e


def _parse(path: str, expected_magic: int) -> np.ndarray:
    data = _read_bytes(path)
    ndim = {IMAGES_MAGIC: 3, LABELS_MAGIC: 1}[expected_magic]
    header_size = 4 * (1 + ndim)
    if len(data) < header_size:
        raise IdxFormatError(f"{path}: {len(data)} bytes, shorter than the {header_size}-byte IDX header")
    magic = struct.unpack(">i", data[:4])[0]
    if magic != expected_magic:
        raise IdxFormatError(
            f"{path}: magic number 0x{magic:08x}, expected 0x{expected_magic:08x} "
            f"({'images' if expected_magic == IMAGES_MAGIC else 'labels'})"
        )
    shape = struct.unpack(f">{ndim}i", data[4:header_size])
    expected_bytes = int(np.prod(shape))
    body = data[header_size:]
    if len(body) != expected_bytes:
        raise IdxFormatError(
            f"{path}: header promises {shape[0]} records ({expected_bytes} bytes of data), "
            f"the file holds {len(body)} bytes"
        )
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def read_images(path: str) -> np.ndarray:
    """Returns uint8 images [n, 28, 28]."""
    images = _parse(path, IMAGES_MAGIC)
    if images.shape[1:] != (features.IMAGE_HEIGHT, features.IMAGE_WIDTH):
        raise IdxFormatError(
            f"{path}: images are {images.shape[1]}x{images.shape[2]}, "
            f"expected {features.IMAGE_HEIGHT}x{features.IMAGE_WIDTH}"
        )
    return images


def read_labels(path: str) -> np.ndarray:
    """Returns uint8 labels [n], each in 0..9."""
    labels = _parse(path, LABELS_MAGIC)
    bad = np.flatnonzero(labels >= features.NUM_CLASSES)
    if bad.size:
        raise IdxFormatError(
            f"{path}: {bad.size} labels outside 0-{features.NUM_CLASSES - 1} "
            f"(first at record {bad[0]}: {labels[bad[0]]})"
        )
    return labels


def read_pair(images_path: str, labels_path: str):
    """Returns (images, labels) after checking they describe the same records."""
    images, labels = read_images(images_path), read_labels(labels_path)
    if len(images) != len(labels):
        raise IdxFormatError(f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels")
    return images, labels


def _encode(array: np.ndarray, magic: int) -> bytes:
    header = struct.pack(f">i{array.ndim}i", magic, *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_images(path: str, images: np.ndarray) -> None:
    """Writes uint8 images [n, h, w] as a gzip IDX file (used for data slices and new spans)."""
    _write(path, _encode(images, IMAGES_MAGIC))


def write_labels(path: str, labels: np.ndarray) -> None:
    _write(path, _encode(labels, LABELS_MAGIC))


def _write(path: str, payload: bytes) -> None:
    """Writes reproducible gzip bytes; an identical existing file is left untouched, because
    ExampleGen fingerprints input files by size and mtime and a rewrite would defeat the cache."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as gz:
        gz.write(payload)
    data = buffer.getvalue()
    if _exists(path):
        with _open(path, "rb") as f:
            if f.read() == data:
                return
    with _open(path, "wb") as f:
        f.write(data)
