"""Beam executor of IdxExampleGen: IDX file pairs -> serialized tf.Examples per split.

Several splits may name the same file pattern (train and eval both come from MNIST's
60k training file); their records are read once and partitioned by a hash of the
serialized example with the hash buckets given in the component's custom_config.
"""

import bisect
import hashlib
import itertools
import os
from typing import Any, Dict, List, Tuple

import apache_beam as beam
import tensorflow as tf
from tfx.components.example_gen import base_example_gen_executor
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from modules import features, idx
from modules.idx import IMAGES_MARKER, LABELS_MARKER


def find_idx_pairs(pattern: str) -> List[Tuple[str, str]]:
    """(images_path, labels_path) of every IDX pair a glob pattern matches: each images file with
    the labels file of the same pair name (modules.idx.pair_name). At least one pair; a file
    without its partner is an error naming it."""
    matches = sorted(tf.io.gfile.glob(pattern))
    images = {idx.pair_name(m): m for m in matches if IMAGES_MARKER in os.path.basename(m)}
    labels = {idx.pair_name(m): m for m in matches if LABELS_MARKER in os.path.basename(m)}
    if not images or set(images) != set(labels):
        raise idx.IdxFormatError(
            f"{pattern}: expected '*{IMAGES_MARKER}*' and '*{LABELS_MARKER}*' files in pairs of the same "
            f"name, found images={sorted(images.values())} labels={sorted(labels.values())}"
        )
    return [(images[name], labels[name]) for name in sorted(images)]


def to_example(image, label, source: str) -> tf.train.Example:
    """One record: 784 int64 pixels (row-major), an int64 label (see README.md for why int64) and
    the pair it came from (features.SOURCE_KEY)."""
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                features.IMAGE_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=image.reshape(-1).tolist())),
                features.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
                features.SOURCE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[source.encode()])),
            }
        )
    )


def serialize(image, label, source: str) -> bytes:
    """The record's bytes, the same in every process: without deterministic=True the order of the
    feature map's entries follows Python's per-process hash seed, and so would the sha256 split
    (measured: one image gave two different digests under PYTHONHASHSEED=1 and 2)."""
    return to_example(image, label, source).SerializeToString(deterministic=True)


def _serialized_examples(pair):
    source = idx.source_name(pair[0])
    images, labels = idx.read_pair(*pair)
    for image, label in zip(images, labels):
        yield serialize(image, label, source)


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(bytes)
def IdxToSerializedExample(pipeline: beam.Pipeline, exec_properties: Dict[str, Any], split_pattern: str):
    """Reads every IDX image/label pair matching split_pattern under input_base, one pair (or shard)
    per element, so that a runner with several workers reads several at once."""
    input_base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
    pairs = find_idx_pairs(os.path.join(input_base, split_pattern))
    return (
        pipeline
        | "IdxFiles" >> beam.Create(pairs)
        | "ToExamples" >> beam.FlatMap(_serialized_examples)
        # Spreads the records of one file pair over workers for the stages after this one.
        | "Reshuffle" >> beam.Reshuffle()
    )


def hash_buckets(exec_properties: Dict[str, Any]) -> Dict[str, int]:
    """Split name -> hash buckets, from the SplitConfig packed in custom_config."""
    raw = exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY)
    if not raw:
        return {}
    custom = example_gen_pb2.CustomConfig()
    proto_utils.json_to_proto(raw, custom)
    split_config = example_gen_pb2.SplitConfig()
    custom.custom_config.Unpack(split_config)
    return {s.name: s.hash_buckets for s in split_config.splits}


def split_of(record: bytes, num_partitions: int, boundaries: List[int]) -> int:
    """The split index of a serialized record: sha256 of its bytes into cumulative hash buckets
    (TFX ExampleGen's own rule), so the split is reproducible outside the pipeline."""
    bucket = int(hashlib.sha256(record).hexdigest(), 16) % boundaries[-1]
    return bisect.bisect(boundaries, bucket)


class Executor(base_example_gen_executor.BaseExampleGenExecutor):
    """ExampleGen executor for MNIST's IDX files."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return IdxToSerializedExample

    def GenerateExamplesByBeam(self, pipeline: beam.Pipeline, exec_properties: Dict[str, Any]):
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
        buckets = hash_buckets(exec_properties)

        splits_by_pattern: Dict[str, List[str]] = {}
        for split in input_config.splits:
            splits_by_pattern.setdefault(split.pattern, []).append(split.name)

        result = {}
        for pattern, names in splits_by_pattern.items():
            label = "+".join(names)
            records = pipeline | f"Read[{label}]" >> IdxToSerializedExample(exec_properties, pattern)
            if len(names) == 1:
                result[names[0]] = records
                continue
            missing = [n for n in names if buckets.get(n, 0) <= 0]
            if missing:
                raise ValueError(
                    f"splits {names} share pattern {pattern!r}: custom_config must give "
                    f"positive hash_buckets for {missing}"
                )
            boundaries = bucket_boundaries([buckets[n] for n in names])
            parts = records | f"Partition[{label}]" >> beam.Partition(split_of, len(names), boundaries)
            result.update(zip(names, parts))
        return result


def bucket_boundaries(buckets: List[int]) -> List[int]:
    """Cumulative hash buckets, split_of's boundaries: [11, 1] -> [11, 12]."""
    return list(itertools.accumulate(buckets))
