"""Test accuracy as a distribution: the Trainer's training (benchmarks/keras_baseline.py: same
model, schedule, augmentation, split and scaling, no TFX) with several seeds.

    python benchmarks/accuracy_bench.py                         # default HParams, seeds 1 2 3
    python benchmarks/accuracy_bench.py --seeds 1 --set epochs=4 --rows 2000

For every seed: test accuracy on the official 10k, the fit's seconds and epochs, and the
robustness suite (benchmarks/robustness.py) on the first --rows test digits: accuracy at every
strength, expected calibration error clean and per family at its middle strength, before and
after temperature scaling fitted on eval (as the Trainer does). Then the median and the spread
(max - min) of test accuracy and fit time, and the accuracy of the seeds' models averaged, all
together and in pairs.
Targets: median >= 99.70% with every family >= 97% at its middle strength.
Writes benchmarks/results/accuracy_bench.json.
"""

import argparse
import dataclasses
import json
import statistics
import sys
from typing import List, Optional

import numpy as np

from benchmarks import keras_baseline, output, robustness
from components.release import robustness as scoring
from modules import calibration, distortions, features, preprocessing, training
from modules.hparams import HParams

ACCURACY_TARGET = robustness.CLEAN_TARGET


def keras_predictor(model):
    """uint8 images [n, 28, 28] -> probabilities [n, 10] through the Keras model (what the exported
    signatures compute, without the SavedModel round trip)."""
    key = features.transformed_name(features.IMAGE_KEY)

    def predict(images: np.ndarray) -> np.ndarray:
        x = np.asarray(preprocessing.scale_pixels(images.reshape(len(images), features.NUM_PIXELS)))
        return model.predict({key: x}, batch_size=1000, verbose=0).astype(np.float64)

    return predict


def one_seed(hparams: HParams, splits, rows: int):
    """(this seed's record, its test probabilities): accuracy, time, and the robustness suite before
    and after the temperature the Trainer would fit on eval (modules/training.calibrate)."""
    model, result = keras_baseline.fit(hparams, splits)
    images, labels = splits["test"]
    predict = keras_predictor(model)
    report = robustness.evaluate(predict, images[:rows], labels[:rows])
    temperature, _ = training.calibrate(model, keras_baseline.dataset(*splits["eval"], hparams, train=False))

    def calibrated(batch):
        return calibration.with_temperature(predict(batch), temperature)

    after = scoring.evaluate(calibrated, images[:rows], labels[:rows], middle_only=True)
    record = {
        "seed": hparams.seed,
        "test_accuracy": result["test_accuracy"],
        "fit_seconds": result["fit_seconds"],
        "epochs_run": result["epochs_run"],
        "epoch_seconds": result["epoch_seconds"],
        "robustness_rows": rows,
        "middle_accuracy": scoring.middle(report),
        "temperature": round(temperature, 4),
        "clean_ece": {"before": report["clean"]["ece"], "after": after["clean"]["ece"]},
        "middle_ece": {"before": scoring.middle(report, "ece"), "after": scoring.middle(after, "ece")},
        "robustness": report["families"],
    }
    return record, predict(images)


def summary(runs: List[dict], probabilities: List[np.ndarray], labels: np.ndarray) -> dict:
    """Median and spread over the seeds, the lowest middle-strength accuracy per family, the seeds'
    models as one ensemble (mean probabilities): whether their errors differ, and as pairs (the 1st
    and 2nd seed's models averaged, the 3rd and 4th, ...): what two models served as one score,
    HParams.ensemble=2 but for the members' shared data order."""
    accuracies = [r["test_accuracy"] for r in runs]
    pairs = [
        round(float(np.mean(np.mean(probabilities[i : i + 2], axis=0).argmax(axis=1) == labels)), 5)
        for i in range(0, len(probabilities) - 1, 2)
    ]
    seconds = [r["fit_seconds"] for r in runs]
    worst_family = {name: min(r["middle_accuracy"][name] for r in runs) for name in distortions.FAMILIES}
    ensemble = np.mean(probabilities, axis=0).argmax(axis=1) == labels
    return {
        "test_accuracy": accuracies,
        "median_test_accuracy": statistics.median(accuracies),
        "spread": round(max(accuracies) - min(accuracies), 5),
        "ensemble_of_the_seeds_test_accuracy": round(float(np.mean(ensemble)), 5),
        "pairs_test_accuracy": pairs,
        "median_pair_test_accuracy": statistics.median(pairs) if pairs else None,
        "fit_seconds": seconds,
        "median_fit_seconds": statistics.median(seconds),
        "lowest_middle_accuracy_per_family": worst_family,
        "meets": {
            "median_accuracy": statistics.median(accuracies) >= ACCURACY_TARGET,
            "every_family_at_middle": all(a >= robustness.FAMILY_TARGET for a in worst_family.values()),
        },
    }


def parse_setting(text: str):
    """'epochs=10' -> ('epochs', 10), typed as the HParams field's default."""
    name, _, value = text.partition("=")
    fields = {f.name: f for f in dataclasses.fields(HParams)}
    if name not in fields or not value:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=VALUE with NAME one of {sorted(fields)}")
    return name, type(getattr(HParams(), name))(value)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--set", type=parse_setting, action="append", default=[], help="an HParams field, NAME=VALUE")
    p.add_argument("--rows", type=int, default=10000, help="test digits the robustness suite scores")
    p.add_argument("--span-dir", default=keras_baseline.SPAN, help="the span whose IDX files train and test")
    p.add_argument("--output", default=output.result_path("accuracy_bench.json"))
    args = p.parse_args(argv)
    base = dataclasses.replace(HParams(), **dict(args.set))
    splits = keras_baseline.load_splits(args.span_dir)
    runs, probabilities = [], []
    for seed in args.seeds:
        record, test_probabilities = one_seed(dataclasses.replace(base, seed=seed), splits, args.rows)
        runs.append(record)
        probabilities.append(test_probabilities)
        shown = ("seed", "test_accuracy", "fit_seconds", "middle_accuracy")
        print(json.dumps({k: record[k] for k in shown}), flush=True)
    report = {"hparams": base.to_dict(), "runs": runs, "summary": summary(runs, probabilities, splits["test"][1])}
    output.write_json(report, args.output)
    print(json.dumps(report["summary"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
