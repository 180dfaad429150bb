"""Training throughput of the CNN in float32 against mixed_bfloat16, side by side in one process.

    python benchmarks/precision_bench.py            # writes benchmarks/results/precision.json
    python benchmarks/precision_bench.py --records 1280 --output docs/results/precision.json

Same model, data (the first 12,800 MNIST training images by default, augmented once, up front, as in
training), batch and steps; each policy is timed twice, alternating, after a warm-up epoch, because this machine's
speed drifts over minutes.
"""

import argparse
import json
import os
import platform
import time

import numpy as np
import tensorflow as tf

from benchmarks import output
from modules import augment, cnn, features, idx
from modules import strategy as strategies
from modules.hparams import HParams
from pipeline.configs import DATA_ROOT

RECORDS = 12_800
POLICIES = ("float32", "mixed_bfloat16")


def dataset(hparams: HParams, records: int = RECORDS) -> tf.data.Dataset:
    span = os.path.join(DATA_ROOT, "span-1")
    images, labels = idx.read_span_pair(span, "train")
    x = (images[:records].reshape(-1, features.NUM_PIXELS) / 255.0).astype(np.float32)
    y = labels[:records].astype(np.int64).reshape(-1, 1)
    key = features.transformed_name(features.IMAGE_KEY)
    distort = augment.augmenter(augment.settings(hparams))
    # Augment once, up front: the timed epochs then measure the model, not the input pipeline.
    batches = list(
        augment.seeded(tf.data.Dataset.from_tensor_slices(({key: x}, y)).batch(hparams.batch_size), 0).map(distort)
    )
    x_aug = tf.concat([b[0][key] for b in batches], axis=0)
    return tf.data.Dataset.from_tensor_slices(({key: x_aug}, y)).batch(hparams.batch_size).prefetch(2)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=RECORDS, help="training images per timed epoch")
    p.add_argument("--output", default=output.result_path("precision.json"))
    args = p.parse_args(argv)
    hparams = HParams()
    train = dataset(hparams, args.records)
    steps = args.records // hparams.batch_size
    models = {p: cnn.build_model(hparams, steps, p) for p in POLICIES}
    for model in models.values():
        model.fit(train, epochs=1, verbose=0)  # warm-up: tracing and oneDNN kernel selection
    seconds = {p: [] for p in POLICIES}
    for _ in range(2):
        for policy, model in models.items():
            started = time.perf_counter()
            model.fit(train, epochs=1, verbose=0)
            seconds[policy].append(time.perf_counter() - started)
    flags = strategies.cpu_flags()
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "native_bfloat16_flags": sorted(strategies.NATIVE_BFLOAT16_FLAGS & flags),
        },
        "auto_precision": strategies.precision_policy("auto", tf.distribute.get_strategy(), flags),
        "records_per_epoch": args.records,
        "batch_size": hparams.batch_size,
        "images_per_second": {p: round(args.records / min(s), 1) for p, s in seconds.items()},
        "epoch_seconds": {p: [round(v, 2) for v in s] for p, s in seconds.items()},
    }
    result["speedup_bfloat16"] = round(
        result["images_per_second"]["mixed_bfloat16"] / result["images_per_second"]["float32"], 2
    )
    output.write_json(result, args.output)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
