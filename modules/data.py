"""tf.data input pipeline over Transform's output (gzipped TFRecords of transformed tf.Examples)."""
from typing import Callable, List, Optional

import keras
import tensorflow as tf

from modules import features


def _files(file_patterns: List[str]) -> List[str]:
    files = sorted(f for pattern in file_patterns for f in tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no transformed examples match {file_patterns}")
    return files


def count_records(file_patterns: List[str]) -> int:
    """Number of records (a pass over the bytes without parsing: about a second for 55k)."""
    dataset = tf.data.TFRecordDataset(_files(file_patterns), compression_type="GZIP")
    return int(dataset.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1))


def augmenter(translate: float, rotate_degrees: float, zoom: float):
    """Random shifts (fraction of the side), rotations and zooms of [b, 784] images in [0, 1]."""
    shift = keras.layers.RandomTranslation(translate, translate, fill_mode="constant")
    rotate = keras.layers.RandomRotation(rotate_degrees / 360.0, fill_mode="constant")
    scale = keras.layers.RandomZoom(zoom, zoom, fill_mode="constant")
    image_key = features.transformed_name(features.IMAGE_KEY)

    def augment(batch, label):
        images = tf.reshape(batch[image_key], [-1, features.IMAGE_HEIGHT, features.IMAGE_WIDTH, 1])
        images = scale(rotate(shift(images, training=True), training=True), training=True)
        return {**batch, image_key: tf.reshape(images, [-1, features.NUM_PIXELS])}, label

    return augment


def input_fn(file_patterns: List[str], transformed_feature_spec, batch_size: int,
             shuffle_buffer: int = 0, augment: Optional[Callable] = None) -> tf.data.Dataset:
    """Batches of ({transformed image: [b, 784]}, label [b, 1]); shuffle_buffer=0 keeps file order;
    augment (see augmenter) is applied to each batch."""
    files = _files(file_patterns)
    label_key = features.transformed_name(features.LABEL_KEY)

    def parse(serialized):
        parsed = tf.io.parse_example(serialized, transformed_feature_spec)
        label = parsed.pop(label_key)
        return parsed, label

    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP")
    if shuffle_buffer:
        dataset = dataset.shuffle(shuffle_buffer, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    if augment is not None:
        dataset = dataset.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
