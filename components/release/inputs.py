"""What the release reads from its upstream artifacts, as plain values: the raw test split,
examples per split, and the schema in words. Artifact URIs in, no TFX objects."""

import glob
import os
from typing import Dict, Iterable, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2

from components import tfx_files
from modules import features, idx


def test_split(examples_uri: str, source: str = idx.TEST_PAIR) -> Tuple[np.ndarray, np.ndarray]:
    """The test split's raw images (uint8 [n, 28, 28]) and labels from one source (by default
    MNIST's test file, not the fresh rows a span made from feedback adds), as ExampleGen wrote
    them. Records without a source (written before ExampleGen set one) count as MNIST's."""
    return _read_split(examples_uri, features.TEST_SPLIT, source)


def train_images(examples_uri: str, limit: int) -> np.ndarray:
    """The first `limit` images of the train split (uint8 [n, 28, 28]), whatever their source: the
    full-integer model's calibration pool (components/release/tflite.py)."""
    return _read_split(examples_uri, features.TRAIN_SPLIT, None, limit)[0]


def _read_split(examples_uri: str, split: str, source, limit=None) -> Tuple[np.ndarray, np.ndarray]:
    files = sorted(glob.glob(os.path.join(tfx_files.split_dir(examples_uri, split), "*")))
    spec = {
        features.IMAGE_KEY: tf.io.FixedLenFeature([features.NUM_PIXELS], tf.int64),
        features.LABEL_KEY: tf.io.FixedLenFeature([1], tf.int64),
        features.SOURCE_KEY: tf.io.FixedLenFeature([1], tf.string, default_value=[idx.TEST_PAIR.encode()]),
    }
    images, labels = [], []
    records = tf.data.TFRecordDataset(files, compression_type="GZIP")
    for batch in (records.take(limit) if limit else records).batch(1000):
        parsed = tf.io.parse_example(batch, spec)
        sources = parsed[features.SOURCE_KEY].numpy()[:, 0]
        keep = sources == source.encode() if source else np.ones(len(sources), bool)
        images.append(parsed[features.IMAGE_KEY].numpy()[keep].reshape(-1, features.IMAGE_HEIGHT, features.IMAGE_WIDTH))
        labels.append(parsed[features.LABEL_KEY].numpy()[keep, 0])
    if not images:  # an empty split
        return np.zeros([0, features.IMAGE_HEIGHT, features.IMAGE_WIDTH], np.uint8), np.zeros([0], np.int64)
    return np.concatenate(images).astype(np.uint8), np.concatenate(labels)


def split_counts(statistics_uri: str, splits: Iterable[str]) -> Dict[str, int]:
    """Examples per split, from StatisticsGen's output."""
    return {
        split: int(tfdv.load_stats_binary(tfx_files.stats_path(statistics_uri, split)).datasets[0].num_examples)
        for split in splits
    }


def describe_schema(schema_uri: str) -> Dict[str, str]:
    """{feature: 'INT shape [784], values 0..255'} from the schema the pipeline validated with."""
    schema = tfdv.load_schema_text(tfx_files.schema_path(schema_uri))
    described = {}
    for feature in schema.feature:
        shape = [d.size for d in feature.shape.dim] or ["scalar"]
        domain = ""
        if feature.HasField("int_domain"):
            domain = f", values {feature.int_domain.min}..{feature.int_domain.max}"
        described[feature.name] = f"{schema_pb2.FeatureType.Name(feature.type)} shape {shape}{domain}"
    return described


def dir_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)
