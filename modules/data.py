"""tf.data input pipeline over Transform's output (gzipped TFRecords of transformed tf.Examples)."""
from typing import List

import tensorflow as tf

from modules import features


def input_fn(file_patterns: List[str], transformed_feature_spec, batch_size: int,
             shuffle_buffer: int = 0) -> tf.data.Dataset:
    """Batches of ({transformed image: [b, 784]}, label [b, 1]); shuffle_buffer=0 keeps file order."""
    files = sorted(f for pattern in file_patterns for f in tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no transformed examples match {file_patterns}")
    label_key = features.transformed_name(features.LABEL_KEY)

    def parse(serialized):
        parsed = tf.io.parse_example(serialized, transformed_feature_spec)
        label = parsed.pop(label_key)
        return parsed, label

    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP")
    if shuffle_buffer:
        dataset = dataset.shuffle(shuffle_buffer, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).map(parse, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
