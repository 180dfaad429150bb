"""Where the Trainer's time goes, and what makes it faster: measured side by side in one run.

    python benchmarks/trainer_profile.py                  # writes results/trainer_profile.json
    python benchmarks/trainer_profile.py --steps 40 --rounds 1

Profile (the default configuration, on the MNIST training split in memory, as the Trainer holds it):
- the input pipeline alone (shuffle and batch), with each augmentation, in images/s;
- the training step alone (one batch repeated, no input pipeline) and the forward pass alone;
- TensorFlow's op-level trace (tf.profiler) of real training steps, summed per layer type and
  per pass (forward, backward, optimizer): the share of the compute threads' time.

Candidates: each variant trains `--steps` steps per round, rounds alternate the variants (this
machine's speed drifts over minutes), and every variant's first fit (tracing and compiling) is
not timed. Reported: images/s, median over rounds, and the ratio to the first variant.
"""

import argparse
import collections
import dataclasses
import glob
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Dict, List, Optional

import keras
import numpy as np
import tensorflow as tf

from benchmarks import output
from benchmarks.keras_baseline import load_splits
from modules import augment, cnn, data, features, preprocessing
from modules.hparams import HParams

IMAGE_KEY = features.transformed_name(features.IMAGE_KEY)


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    hparams: HParams
    augmentation: str = "keras"  # keras: the earlier two Keras layers; fused: modules/augment.py; none
    fused_batch_norm: bool = False  # modules/fused_batch_norm.py instead of Keras's layer
    precision: str = "mixed_bfloat16"
    jit_compile: bool = False
    steps_per_execution: int = 1


def keras_augmenter(translate: float, rotate_degrees: float, zoom: float):
    """The Trainer's augmentation before modules/augment.py: Keras's random layers, one after the
    other (each its own image transform), on [b, 784] batches."""
    shift = keras.layers.RandomTranslation(translate, translate, fill_mode="constant")
    rotate = keras.layers.RandomRotation(rotate_degrees / 360.0, fill_mode="constant")
    scale = keras.layers.RandomZoom(zoom, zoom, fill_mode="constant")

    def augment(batch, label):
        images = tf.reshape(batch[IMAGE_KEY], [-1, features.IMAGE_HEIGHT, features.IMAGE_WIDTH, 1])
        images = scale(rotate(shift(images, training=True), training=True), training=True)
        return {**batch, IMAGE_KEY: tf.reshape(images, [-1, features.NUM_PIXELS])}, label

    return augment


def make_dataset(images, labels, variant: Variant, seed: int = 0) -> tf.data.Dataset:
    """The training set in memory, shuffled, batched and augmented as the variant says."""
    h = variant.hparams
    x = preprocessing.scale_pixels(images.reshape(len(images), features.NUM_PIXELS))
    examples = tf.data.Dataset.from_tensor_slices(({IMAGE_KEY: x}, labels.astype(np.int64).reshape(-1, 1)))
    # "fused": the Trainer's own batching and distortions (hparams.distort of them pen/scan ones)
    fused = augment.settings(h) if variant.augmentation == "fused" else None
    ds = data.batches(examples, h.batch_size, h.shuffle_buffer, fused, seed)
    if variant.augmentation == "keras":
        ds = ds.map(keras_augmenter(h.translate, h.rotate_degrees, h.zoom), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.repeat().prefetch(tf.data.AUTOTUNE)


def build(variant: Variant, steps_per_epoch: int):
    model = cnn.build_model(variant.hparams, steps_per_epoch, variant.precision, variant.fused_batch_norm)
    return cnn.compile_model(
        model,
        variant.hparams,
        steps_per_epoch,
        jit_compile=variant.jit_compile,
        steps_per_execution=variant.steps_per_execution,
    )


def fit_seconds(model, dataset, steps: int) -> float:
    started = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
    return time.perf_counter() - started


def compare(variants: List[Variant], images, labels, steps: int, rounds: int) -> List[dict]:
    """images/s of each variant, `rounds` alternating rounds of `steps` steps after a warm-up fit."""
    runs = []
    for v in variants:
        model = build(v, steps)
        dataset = make_dataset(images, labels, v)
        warmup = fit_seconds(model, dataset, max(v.steps_per_execution, 8))
        runs.append((v, model, dataset, warmup))
    rates: Dict[str, List[float]] = collections.defaultdict(list)
    for _ in range(rounds):
        for v, model, dataset, _ in runs:
            # the same number of images for every variant, whatever its batch size
            n_steps = max(1, steps * HParams().batch_size // v.hparams.batch_size)
            seconds = fit_seconds(model, dataset, n_steps)
            rates[v.name].append(n_steps * v.hparams.batch_size / seconds)
            print(f"  {v.name}: {rates[v.name][-1]:.0f} images/s", flush=True)
    first = statistics.median(rates[variants[0].name])
    return [
        {
            "variant": v.name,
            "images_per_second": round(statistics.median(rates[v.name]), 1),
            "per_round": [round(r, 1) for r in rates[v.name]],
            "ratio": round(statistics.median(rates[v.name]) / first, 3),
            "first_fit_seconds": round(warmup, 1),
        }
        for v, _, _, warmup in runs
    ]


def input_rate(dataset: tf.data.Dataset, batches: int, batch_size: int) -> float:
    """images/s of the input pipeline alone (nothing trains meanwhile)."""
    iterator = iter(dataset)
    next(iterator)
    started = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - started)


def step_rates(variant: Variant, images, labels, steps: int) -> Dict[str, float]:
    """images/s of the training step on one batch repeated (no input pipeline) and of the forward
    pass alone (inference mode, compiled)."""
    h = variant.hparams
    x = preprocessing.scale_pixels(images[: h.batch_size].reshape(-1, features.NUM_PIXELS))
    batch = ({IMAGE_KEY: x}, labels[: h.batch_size].astype(np.int64).reshape(-1, 1))
    model = build(variant, steps)
    repeated = tf.data.Dataset.from_tensors(batch).repeat()
    fit_seconds(model, repeated, 8)
    train = steps * h.batch_size / fit_seconds(model, repeated, steps)
    forward = tf.function(lambda inputs: model(inputs, training=False))
    forward(batch[0])
    started = time.perf_counter()
    for _ in range(steps):
        forward(batch[0])
    return {
        "train_step_images_per_second": round(train, 1),
        "forward_images_per_second": round(steps * h.batch_size / (time.perf_counter() - started), 1),
    }


def _layer(name: str) -> str:
    lowered = name.lower()
    for layer in ("conv2d", "batch_norm", "dense", "max_pooling", "dropout", "activation", "reshape"):
        if layer in lowered:  # batch_norm: Keras's batch_normalization and the fused_batch_norm layer
            return "batch_normalization" if layer == "batch_norm" else layer
    if "adam" in lowered or "optimizer" in lowered:
        return "optimizer"
    if "crossentropy" in lowered or "loss" in lowered:
        return "loss"
    return "other"


def _pass(name: str) -> str:
    lowered = name.lower()
    if "adam" in lowered or "optimizer" in lowered:
        return "optimizer"
    return "backward" if "gradient_tape" in lowered else "forward"


def op_profile(model, dataset, steps: int) -> dict:
    """Shares of the compute threads' op time by layer type, by pass and by op type, from a
    tf.profiler trace of `steps` training steps."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    fit_seconds(model, dataset, 4)
    folder = tempfile.mkdtemp(prefix="trainer_profile_")
    tf.profiler.experimental.start(folder)
    fit_seconds(model, dataset, steps)
    tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace()
    with open(glob.glob(os.path.join(folder, "**", "*.xplane.pb"), recursive=True)[0], "rb") as f:
        space.ParseFromString(f.read())
    by_layer, by_pass, by_op = collections.Counter(), collections.Counter(), collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                seconds = event.duration_ps / 1e12
                if not line.name.startswith("tf_Compute") or ":" not in name or name.startswith("ExecutorState"):
                    continue
                scope, op = name.rsplit(":", 1)
                by_layer[_layer(scope)] += seconds
                by_pass[_pass(scope)] += seconds
                by_op[op.replace("_MklNative", "").replace("_Mkl", "")] += seconds
    total = sum(by_op.values())

    def shares(counter, top=None):
        return {k: round(v / total, 3) for k, v in counter.most_common(top)}

    return {
        "steps": steps,
        "op_seconds": round(total, 2),
        "by_layer": shares(by_layer),
        "by_pass": shares(by_pass),
        "by_op": shares(by_op, 12),
    }


def profile(images, labels, steps: int) -> dict:
    """The input pipeline's rates, then the step rates and op profile of "before" and "new default"
    (see candidates)."""
    before, *_, default = [v for v in candidates() if v.name in ("before", "new default")]
    h = before.hparams
    x = preprocessing.scale_pixels(images.reshape(len(images), features.NUM_PIXELS))
    plain = (
        tf.data.Dataset.from_tensor_slices(({IMAGE_KEY: x}, labels.astype(np.int64).reshape(-1, 1)))
        .shuffle(h.shuffle_buffer)
        .batch(h.batch_size)
        .repeat()
        .prefetch(tf.data.AUTOTUNE)
    )
    inputs = {
        "shuffle_and_batch": plain,
        "keras_augmentation": make_dataset(images, labels, before),
        "fused_augmentation": make_dataset(images, labels, dataclasses.replace(before, augmentation="fused")),
        "fused_with_pen_and_scan": make_dataset(images, labels, default),
    }
    result = {"input_images_per_second": {k: round(input_rate(d, steps, h.batch_size), 1) for k, d in inputs.items()}}
    for v in (before, default):
        result[v.name] = {
            **step_rates(v, images, labels, steps),
            "ops": op_profile(build(v, steps), make_dataset(images, labels, v), steps),
        }
    return result


def candidates() -> List[Variant]:
    """The configuration before this bench ("before": Keras's augmentation layers and batch norm),
    each change on the way to the new default, and the changes tried on top of the new default."""
    h = HParams()
    before = Variant("before", dataclasses.replace(h, zoom=0.0, rotate_degrees=10.0, distort=0.0))
    fused = dataclasses.replace(before, name="fused augmentation", augmentation="fused")
    default = Variant("new default", h, augmentation="fused", fused_batch_norm=True)
    return [
        before,
        dataclasses.replace(before, name="no augmentation", augmentation="none"),
        fused,
        dataclasses.replace(fused, name="fused augmentation + pen/scan", hparams=h),
        dataclasses.replace(before, name="fused batch norm", fused_batch_norm=True),
        default,
        dataclasses.replace(default, name="new default + jit_compile", jit_compile=True),
        dataclasses.replace(default, name="new default + float32", precision="float32"),
        dataclasses.replace(default, name="new default + batch 256", hparams=dataclasses.replace(h, batch_size=256)),
        dataclasses.replace(default, name="new default + steps_per_execution 16", steps_per_execution=16),
    ]


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=80, help="training steps (of 128 images) per variant and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--only", choices=("profile", "candidates"), help="run one half")
    p.add_argument("--variants", nargs="+", metavar="NAME", help="candidates to compare (default: all)")
    p.add_argument("--output", default=output.result_path("trainer_profile.json"))
    args = p.parse_args(argv)
    images, labels = load_splits()["train"]
    report: Dict[str, object] = {"train_examples": len(labels), "steps": args.steps, "rounds": args.rounds}
    if args.only != "candidates":
        report["profile"] = profile(images, labels, args.steps)
        print(json.dumps(report["profile"], indent=2), flush=True)
    if args.only != "profile":
        chosen = [v for v in candidates() if not args.variants or v.name in args.variants]
        report["candidates"] = compare(chosen, images, labels, args.steps, args.rounds)
        for row in report["candidates"]:
            print(f"{row['variant']:>34}: {row['images_per_second']:7.1f} images/s  x{row['ratio']:.2f}")
    output.write_json(report, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
