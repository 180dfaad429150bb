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
    files = glob.glob(os.path.join(tfx_files.split_dir(examples_uri, features.TEST_SPLIT), "*"))
    spec = {
        features.IMAGE_KEY: tf.io.FixedLenFeature([features.NUM_PIXELS], tf.int64),
        features.LABEL_KEY: tf.io.FixedLenFeature([1], tf.int64),
        features.SOURCE_KEY: tf.io.FixedLenFeature([1], tf.string, default_value=[idx.TEST_PAIR.encode()]),
    }
    images, labels = [], []
    for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(1000):
        parsed = tf.io.parse_example(batch, spec)
        keep = parsed[features.SOURCE_KEY].numpy()[:, 0] == source.encode()
        images.append(parsed[features.IMAGE_KEY].numpy()[keep].reshape(-1, features.IMAGE_HEIGHT, features.IMAGE_WIDTH))
        labels.append(parsed[features.LABEL_KEY].numpy()[keep, 0])
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
