"""tf.data input pipeline over Transform's output (gzipped TFRecords of transformed tf.Examples)."""

import hashlib
import math
from typing import Dict, List, Optional

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from modules import augment, features, privacy
from modules.hparams import HParams


def _files(file_patterns: List[str]) -> List[str]:
    files = sorted(f for pattern in file_patterns for f in tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no transformed examples match {file_patterns}")
    return files


def count_records(file_patterns: List[str]) -> int:
    """Number of records (a pass over the bytes without parsing: about a second for 55k)."""
    dataset = tf.data.TFRecordDataset(_files(file_patterns), compression_type="GZIP")
    return int(dataset.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1))


# Parsed examples are kept in memory when they take less than this: MNIST's 55k train images
# are 172 MB as float32. Reading and parsing the gzipped records again every epoch cost the
# Trainer 21% of its throughput against a script training from arrays (benchmarks/compare.py).
CACHE_BUDGET_BYTES = 2 << 30
_PARSE_BATCH = 1024


def fits_in_cache(records: int) -> bool:
    return records * features.NUM_PIXELS * 4 <= CACHE_BUDGET_BYTES


def canonical_order(columns: Dict[str, np.ndarray], labels: np.ndarray) -> np.ndarray:
    """The row indices sorted by a digest of each row's content (features by name, then label).

    ExampleGen's Reshuffle writes the records in another order every run; read in this order
    instead, the same examples and seed train the same model (rows with equal content are
    interchangeable), and benchmarks/keras_baseline.py, ordering its arrays the same way, trains
    the Trainer's model without TFX."""
    n = len(labels)
    parts = [np.ascontiguousarray(columns[k]).reshape(n, -1).view(np.uint8) for k in sorted(columns)]
    rows = np.concatenate([*parts, np.ascontiguousarray(labels).reshape(n, -1).view(np.uint8)], axis=1)
    digests = [hashlib.sha1(row.tobytes()).digest() for row in rows]
    return np.array(sorted(range(n), key=digests.__getitem__), dtype=np.int64)


def collected(batches: tf.data.Dataset):
    """Parsed (features, label) batches -> ({feature: array}, labels array), in memory."""
    columns: Dict[str, list] = {}
    labels = []
    for x, y in batches.as_numpy_iterator():
        for key, value in x.items():
            columns.setdefault(key, []).append(value)
        labels.append(y)
    return {key: np.concatenate(values) for key, values in columns.items()}, np.concatenate(labels)


def in_canonical_order(batches: tf.data.Dataset) -> tf.data.Dataset:
    """Parsed (features, label) batches -> one example per element, in memory, in canonical_order."""
    return examples_in_canonical_order(*collected(batches))


def _parser(transformed_feature_spec):
    """serialized batch -> (features, label)."""
    label_key = features.transformed_name(features.LABEL_KEY)

    def parse(serialized):
        parsed = tf.io.parse_example(serialized, transformed_feature_spec)
        label = parsed.pop(label_key)
        return parsed, label

    return parse


def _parsed_batches(file_patterns: List[str], transformed_feature_spec) -> tf.data.Dataset:
    """Every record, parsed in large batches (for a pass into memory)."""
    records = tf.data.TFRecordDataset(_files(file_patterns), compression_type="GZIP")
    return records.batch(_PARSE_BATCH).map(_parser(transformed_feature_spec), num_parallel_calls=tf.data.AUTOTUNE)


def examples_in_canonical_order(columns: Dict[str, np.ndarray], labels: np.ndarray) -> tf.data.Dataset:
    """(features, label) arrays -> one example per element in canonical_order: the Trainer's cached
    input and benchmarks/keras_baseline.py's arrays go through this one function."""
    order = canonical_order(columns, labels)
    return tf.data.Dataset.from_tensor_slices(({k: v[order] for k, v in columns.items()}, labels[order]))


def input_fn(
    file_patterns: List[str],
    transformed_feature_spec,
    batch_size: int,
    shuffle_buffer: int = 0,
    augmentation: Optional[augment.Settings] = None,
    cache: bool = False,
    records: Optional[int] = None,
    seed: int = 0,
) -> tf.data.Dataset:
    """Batches of ({transformed image: [b, 784]}, label [b, 1]); shuffle_buffer=0 keeps the order
    read; augmentation (modules/augment.py) distorts each batch; seed fixes the shuffling order and
    the distortions; cache parses every example once into memory, in canonical_order (see
    fits_in_cache; uncached, examples come in file order); records (see count_records), when
    given, makes the number of batches known to Keras (see with_known_batches)."""
    if cache:  # parse once, in large batches, then work on parsed examples as from arrays
        dataset = in_canonical_order(_parsed_batches(file_patterns, transformed_feature_spec))
    else:
        dataset = tf.data.TFRecordDataset(_files(file_patterns), compression_type="GZIP")
    parse = None if cache else _parser(transformed_feature_spec)
    dataset = batches(dataset, batch_size, shuffle_buffer, augmentation, seed, parse=parse)
    return dataset if records is None else with_known_batches(dataset, records, batch_size)


def batches(
    examples: tf.data.Dataset,
    batch_size: int,
    shuffle_buffer: int = 0,
    augmentation: Optional[augment.Settings] = None,
    seed: int = 0,
    parse=None,
) -> tf.data.Dataset:
    """One example per element (serialized, when parse is given) -> batches, shuffled and distorted
    from `seed` alone: input_fn's steps after reading, and benchmarks/keras_baseline.py's."""
    if shuffle_buffer or augmentation is not None:
        # tf.data pairs each op seed with TensorFlow's global seed, read here: fixed too, the order
        # and the distortions do not depend on what the process seeded before.
        tf.random.set_seed(seed)
    if shuffle_buffer:
        examples = examples.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    dataset = examples.batch(batch_size)
    if parse is not None:
        dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    if augmentation is not None:
        dataset = augment.distorted(dataset, augmentation, seed)
    return dataset.prefetch(tf.data.AUTOTUNE)


def with_known_batches(dataset: tf.data.Dataset, records: int, batch_size: int) -> tf.data.Dataset:
    """Declares the number of batches, which TFRecord files do not tell tf.data; a wrong count
    fails the first epoch instead of training on it. Without it Keras 3 learns an epoch's length
    by running into the end of the data, and 5 of 8 later epochs spent 2.9-9.9 s (of ~40 s)
    outside any training step or validation; with it, at most 0.7 s (3-epoch runs, alternated)."""
    return dataset.apply(tf.data.experimental.assert_cardinality(math.ceil(records / batch_size)))


def datasets(train_files: List[str], eval_files: List[str], hparams: HParams, replicas: int, transformed_feature_spec):
    """(train, eval, number of train records) from Transform's output, batched for the replicas;
    the training set shuffled and augmented as hparams say."""
    global_batch = hparams.batch_size * replicas
    train_examples = count_records(train_files)
    cache = fits_in_cache(train_examples)
    eval_ds = input_fn(
        eval_files, transformed_feature_spec, global_batch, cache=cache, records=count_records(eval_files)
    )
    if hparams.private:  # Poisson samples of the training set, as the privacy accountant assumes
        if not cache:
            raise ValueError(f"private training samples from the training set in memory: {train_examples} is too many")
        columns, labels = collected(_parsed_batches(train_files, transformed_feature_spec))
        image_key = features.transformed_name(features.IMAGE_KEY)
        sampled = privacy.poisson_batches(
            columns[image_key], labels, global_batch, augment.settings(hparams), hparams.seed
        )
        return sampled, eval_ds, train_examples
    train_ds = input_fn(
        train_files,
        transformed_feature_spec,
        global_batch,
        hparams.shuffle_buffer,
        augmentation=augment.settings(hparams),
        cache=cache,
        records=train_examples,
        seed=hparams.seed,
    )
    return train_ds, eval_ds, train_examples


def transformed_datasets(
    train_files: List[str], eval_files: List[str], transform_graph_path: str, hparams: HParams, replicas: int
):
    """(TFTransformOutput, train, eval, number of train records) from Transform's outputs: what both
    the Trainer's and the Tuner's adapters start from."""
    tf_transform_output = tft.TFTransformOutput(transform_graph_path)
    spec = tf_transform_output.transformed_feature_spec()
    return (tf_transform_output, *datasets(train_files, eval_files, hparams, replicas, spec))
