"""One training process for the strategy tests (run as a script: strategies need a fresh TF).

python tests/modules/strategy_worker.py --strategy mirrored --logical-cpus 2 --tft-dir D --export-dir E --result R
"""

import argparse
import json
import os
import sys

import numpy as np
import tensorflow as tf


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--strategy", required=True)
    p.add_argument("--logical-cpus", type=int, default=0)
    p.add_argument("--tft-dir", required=True)
    p.add_argument("--export-dir", required=True)
    p.add_argument("--result", required=True)
    args = p.parse_args(argv)
    if args.logical_cpus:
        # Must happen before TensorFlow initializes its devices.
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * args.logical_cpus)

    import tensorflow_transform as tft

    from modules import data, export, features, idx, strategy, training
    from modules.hparams import HParams

    project = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    span = os.path.join(project, "data", "mnist", "span-1")
    images, labels = idx.read_span_pair(span, "train")
    x = (images[:2560].reshape(-1, features.NUM_PIXELS) / 255.0).astype(np.float32)
    y = labels[:2560].astype(np.int64).reshape(-1, 1)
    hparams = HParams(epochs=2, batch_size=32, strategy=args.strategy, precision="float32", bn_momentum=0.9)
    dist = strategy.choose_strategy(hparams.strategy)
    global_batch = hparams.batch_size * dist.num_replicas_in_sync
    key = features.transformed_name(features.IMAGE_KEY)
    # Declared length, as the Trainer's datasets have it: must survive distribution and auto-sharding.
    train_ds = data.with_known_batches(
        tf.data.Dataset.from_tensor_slices(({key: x[:2048]}, y[:2048])).batch(global_batch), 2048, global_batch
    )
    eval_ds = tf.data.Dataset.from_tensor_slices(({key: x[2048:]}, y[2048:])).batch(256)
    model, history = training.train(train_ds, eval_ds, hparams, dist, train_examples=2048)
    chief = strategy.is_chief(os.environ.get("TF_CONFIG"))
    export.export_on_chief(model, tft.TFTransformOutput(args.tft_dir), args.export_dir, chief)
    with open(args.result, "w") as f:
        json.dump(
            {
                "history": history,
                "strategy": type(dist).__name__,
                "replicas": dist.num_replicas_in_sync,
                "chief": chief,
                "val_accuracy": history["val_accuracy"],
                "trainable_checksum": float(sum(np.abs(w.numpy()).sum() for w in model.trainable_weights)),
            },
            f,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
