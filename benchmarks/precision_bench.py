"""Training throughput of the CNN in float32 against mixed_bfloat16, side by side in one process.

    python benchmarks/precision_bench.py            # writes benchmarks/results/precision.json

Same model, data (the first 12,800 MNIST training images, augmented once, up front, as in
training), batch and steps; each policy is timed twice, alternating, after a warm-up epoch, because this machine's
speed drifts over minutes.
"""

import json
import os
import platform
import time

import numpy as np
import tensorflow as tf

from benchmarks import output
from modules import augment, cnn, features, idx
from modules.hparams import HParams
from pipeline.configs import DATA_ROOT

RECORDS = 12_800
POLICIES = ("float32", "mixed_bfloat16")


def dataset(hparams: HParams) -> tf.data.Dataset:
    span = os.path.join(DATA_ROOT, "span-1")
    images, labels = idx.read_span_pair(span, "train")
    x = (images[:RECORDS].reshape(-1, features.NUM_PIXELS) / 255.0).astype(np.float32)
    y = labels[:RECORDS].astype(np.int64).reshape(-1, 1)
    key = features.transformed_name(features.IMAGE_KEY)
    distort = augment.augmenter(augment.settings(hparams))
    # Augment once, up front: the timed epochs then measure the model, not the input pipeline.
    batches = list(
        augment.seeded(tf.data.Dataset.from_tensor_slices(({key: x}, y)).batch(hparams.batch_size), 0).map(distort)
    )
    x_aug = tf.concat([b[0][key] for b in batches], axis=0)
    return tf.data.Dataset.from_tensor_slices(({key: x_aug}, y)).batch(hparams.batch_size).prefetch(2)


def main() -> dict:
    hparams = HParams()
    train = dataset(hparams)
    steps = RECORDS // hparams.batch_size
    models = {p: cnn.build_model(hparams, steps, p) for p in POLICIES}
    for model in models.values():
        model.fit(train, epochs=1, verbose=0)  # warm-up: tracing and oneDNN kernel selection
    seconds = {p: [] for p in POLICIES}
    for _ in range(2):
        for policy, model in models.items():
            started = time.perf_counter()
            model.fit(train, epochs=1, verbose=0)
            seconds[policy].append(time.perf_counter() - started)
    result = {
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
        "records_per_epoch": RECORDS,
        "batch_size": hparams.batch_size,
        "images_per_second": {p: round(RECORDS / min(s), 1) for p, s in seconds.items()},
        "epoch_seconds": {p: [round(v, 2) for v in s] for p, s in seconds.items()},
    }
    result["speedup_bfloat16"] = round(
        result["images_per_second"]["mixed_bfloat16"] / result["images_per_second"]["float32"], 2
    )
    output.write_json(result, output.result_path("precision.json"))
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
