"""Differentially private training's price in accuracy: TensorFlow Privacy's tutorial network trained
on MNIST's training split with DP-SGD at a few privacy budgets, and without DP on the same code,
one after another in one process, scored on the 10,000 test digits.

Each budget's noise multiplier is found from the accountant (modules/privacy.py) for the run's
batch, examples and epochs. All rows: the Trainer's training (modules.training.train through
benchmarks/keras_baseline.fit: the same split, scaling, optimizer and early stopping), without
augmentation and in float32, as the tutorial trains. Its published results are the anchor
(tensorflow/privacy, tutorials/README.md: noise 1.12, 60 epochs, epsilon 2.92 -> 96.6%; noise 1.2,
10 epochs, epsilon 1.20 -> 95.0%; noise 0.6, 30 epochs, epsilon 9.74 -> 97.3%), with plain SGD.

    python benchmarks/privacy.py                       # epsilon 1, 3, 8 and not private, 15 epochs
    python benchmarks/privacy.py --epsilons 3 --epochs 2 --output /tmp/p.json
"""

import argparse
import dataclasses
import json
import time

from benchmarks import keras_baseline, output
from modules import privacy
from modules.hparams import HParams

BASE = HParams(
    network="privacy_tutorial",
    batch_size=256,  # the tutorial's
    precision="float32",
    translate=0.0,
    rotate_degrees=0.0,
    zoom=0.0,
    distort=0.0,
)


def noise_for(target: float, batch_size: int, examples: int, epochs: int) -> float:
    """The noise multiplier (to 0.001) whose epsilon at privacy.DELTA is at most target."""
    low, high = 0.1, 50.0
    while high - low > 1e-3:
        middle = (low + high) / 2
        if privacy.epsilon(middle, batch_size, examples, epochs) > target:
            low = middle
        else:
            high = middle
    return round(high, 3)


def run(epsilons, epochs: int, splits=None) -> dict:
    splits = splits or keras_baseline.load_splits()
    examples = len(splits["train"][1])
    rows = []
    for target in [*epsilons, None]:
        hparams = dataclasses.replace(BASE, epochs=epochs)
        if target is not None:
            noise = noise_for(target, hparams.batch_size, examples, epochs)
            hparams = dataclasses.replace(hparams, private=True, dp_noise_multiplier=noise)
        _, result = keras_baseline.fit(hparams, splits)
        spent = (
            privacy.record(noise, hparams.dp_l2_clip, hparams.batch_size, examples, result["epochs_run"])
            if target is not None
            else None
        )
        rows.append(
            {
                "target_epsilon": target,
                "epsilon": spent["epsilon"] if spent else None,
                "delta": privacy.DELTA if spent else None,
                "noise_multiplier": hparams.dp_noise_multiplier if target is not None else None,
                "l2_clip": hparams.dp_l2_clip if target is not None else None,
                "epochs_run": result["epochs_run"],
                "test_accuracy": result["test_accuracy"],
                "fit_seconds": result["fit_seconds"],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return {
        "network": BASE.network,
        "train_examples": examples,
        "batch_size": BASE.batch_size,
        "epochs": epochs,
        "accountant": "dp-accounting RDP, Poisson-subsampled Gaussian; Poisson-sampled batches",
        "rows": rows,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epsilons", type=float, nargs="+", default=[1.0, 3.0, 8.0])
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--output", default=output.result_path("privacy.json"))
    args = p.parse_args(argv)
    started = time.time()
    result = run(args.epsilons, args.epochs)
    result["wall_seconds"] = round(time.time() - started, 1)
    output.write_json(result, args.output)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
