"""The pipeline's training as a plain Keras script: no TFX, no Beam, no Transform, no ML Metadata.

Same model, optimizer, schedule, augmentation and early stopping (modules.training.train, as
the Trainer calls it), the same train/eval split (ExampleGen's hash rule over the same
serialized records), the same pixel scaling, epochs and batch size; test accuracy on t10k.

    python benchmarks/keras_baseline.py                 # default HParams: writes results/keras_baseline.json
    python benchmarks/keras_baseline.py --epochs 2
"""

import argparse
import dataclasses
import json
import os
import time

import numpy as np
import tensorflow as tf

from benchmarks import output
from components.idx_example_gen.component import EVAL_BUCKETS, TRAIN_BUCKETS
from components.idx_example_gen.executor import bucket_boundaries, serialize, split_of
from modules import augment, data, features, idx, preprocessing, privacy, strategy, training
from modules.hparams import HParams
from pipeline.configs import DATA_ROOT

SPAN = os.path.join(DATA_ROOT, "span-1")


def load_splits(span_dir: str = SPAN):
    """{train, eval, test: (images uint8 [n, 28, 28], labels)}; train/eval by ExampleGen's rule."""
    images, labels = idx.read_span_pair(span_dir, "train")
    boundaries = bucket_boundaries([TRAIN_BUCKETS, EVAL_BUCKETS])  # IdxExampleGen's defaults
    in_eval = np.array([split_of(serialize(img, lab, "train"), 2, boundaries) == 1 for img, lab in zip(images, labels)])
    test = idx.read_span_pair(span_dir, "t10k")
    return {"train": (images[~in_eval], labels[~in_eval]), "eval": (images[in_eval], labels[in_eval]), "test": test}


def dataset(images, labels, hparams: HParams, train: bool) -> tf.data.Dataset:
    """Batches as the Trainer's input_fn makes them: the same scaling and, for the same examples, the
    same order (data.canonical_order), shuffling and distortions: one seed, one model."""
    key = features.transformed_name(features.IMAGE_KEY)
    x = np.asarray(preprocessing.scale_pixels(images.reshape(len(images), features.NUM_PIXELS)))
    y = labels.astype(np.int64).reshape(-1, 1)
    examples = data.examples_in_canonical_order({key: x}, y)
    if not train:
        return data.batches(examples, hparams.batch_size)
    if hparams.private:  # Poisson samples, as the privacy accountant assumes (as data.datasets)
        return privacy.poisson_batches(x, y, hparams.batch_size, augment.settings(hparams), hparams.seed)
    return data.batches(examples, hparams.batch_size, hparams.shuffle_buffer, augment.settings(hparams), hparams.seed)


def fit(hparams: HParams, splits=None):
    """(model, result): the Trainer's training on the MNIST files, test accuracy on t10k."""
    started = time.time()
    splits = splits or load_splits()
    dist = strategy.choose_strategy(hparams.strategy, hparams.tpu)
    train_ds = dataset(*splits["train"], hparams, train=True)
    eval_ds = dataset(*splits["eval"], hparams, train=False)
    n_train = len(splits["train"][1])
    fit_started = time.time()
    model, history = training.train(train_ds, eval_ds, hparams, dist, n_train)
    fit_seconds = time.time() - fit_started
    test_images, test_labels = splits["test"]
    _, accuracy = model.evaluate(dataset(test_images, test_labels, hparams, train=False), verbose=0)
    epochs_run = len(history["epoch_seconds"])
    return model, {
        "wall_seconds": round(time.time() - started, 1),
        "fit_seconds": round(fit_seconds, 1),
        "epochs_run": epochs_run,
        "train_examples": n_train,
        "eval_examples": len(splits["eval"][1]),
        "train_images_per_second": round(n_train * epochs_run / fit_seconds, 1),
        "epoch_seconds": history["epoch_seconds"],
        "test_accuracy": round(float(accuracy), 5),
        "hparams": hparams.to_dict(),
    }


def run(hparams: HParams) -> dict:
    return fit(hparams)[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int)
    p.add_argument("--output", default=output.result_path("keras_baseline.json"))
    args = p.parse_args(argv)
    hparams = HParams() if args.epochs is None else dataclasses.replace(HParams(), epochs=args.epochs)
    result = run(hparams)
    output.write_json(result, args.output)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
