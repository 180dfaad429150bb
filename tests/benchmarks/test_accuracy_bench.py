"""The accuracy bench on a small span: one line per seed, the median and spread from them, the
robustness suite on each seed's model."""

import json
import os
import statistics

import numpy as np

from benchmarks import accuracy_bench
from modules import distortions


def test_seeds_median_spread_and_robustness(tmp_path, small_data_root):
    output = str(tmp_path / "accuracy.json")
    settings = ["--set", "epochs=2", "--set", "batch_size=32", "--set", "bn_momentum=0.9"]
    args = ["--span-dir", os.path.join(small_data_root, "span-1"), "--seeds", "4", "5", "--rows", "50"]
    assert accuracy_bench.main([*args, *settings, "--output", output]) == 0
    with open(output) as f:
        report = json.load(f)
    runs, summary = report["runs"], report["summary"]
    assert [r["seed"] for r in runs] == [4, 5] and report["hparams"]["epochs"] == 2
    accuracies = [r["test_accuracy"] for r in runs]
    assert all(0.3 < a <= 1.0 for a in accuracies)  # 2 epochs on 480 images: far above chance (0.1)
    assert summary["median_test_accuracy"] == statistics.median(accuracies)
    assert summary["spread"] == round(max(accuracies) - min(accuracies), 5)
    assert not summary["meets"]["median_accuracy"]  # 480 training images do not reach 99.7%
    for run in runs:
        assert run["robustness_rows"] == 50 and run["epochs_run"] == 2
        assert set(run["middle_accuracy"]) == set(distortions.FAMILIES)
        assert set(run["middle_ece"]["after"]) == set(distortions.FAMILIES) and run["temperature"] > 0
    assert 0.3 < summary["ensemble_of_the_seeds_test_accuracy"] <= 1.0
    # Two seeds, one pair: the same two models averaged.
    assert summary["pairs_test_accuracy"] == [summary["ensemble_of_the_seeds_test_accuracy"]]
    assert summary["median_pair_test_accuracy"] == summary["pairs_test_accuracy"][0]
    assert summary["lowest_middle_accuracy_per_family"]["noise"] == min(r["middle_accuracy"]["noise"] for r in runs)


def test_a_setting_is_typed_as_its_field():
    assert accuracy_bench.parse_setting("epochs=12") == ("epochs", 12)
    assert accuracy_bench.parse_setting("distort=0.25") == ("distort", 0.25)


def test_pairs_average_consecutive_seeds_models():
    labels = np.array([0, 1])
    # Rows: how sure each model is of class 0 for the two digits (labels 0 and 1).
    sure = [[0.9, 0.45], [0.3, 0.3], [0.9, 0.9], [0.8, 0.2]]
    probabilities = [np.array([[p, 1 - p] for p in model]) for model in sure]
    runs = [
        {"test_accuracy": 0.5, "fit_seconds": 1.0, "middle_accuracy": dict.fromkeys(distortions.FAMILIES, 0.5)}
        for _ in sure
    ]
    summary = accuracy_bench.summary(runs, probabilities, labels)
    # Pair 1+2: means 0.6, 0.375: both right. Pair 3+4: means 0.85, 0.55: the second wrong. A
    # fifth model would have no partner and count in no pair.
    assert summary["pairs_test_accuracy"] == [1.0, 0.5] and summary["median_pair_test_accuracy"] == 0.75
    assert summary["ensemble_of_the_seeds_test_accuracy"] == 1.0  # all four: means 0.725, 0.4625
    five = accuracy_bench.summary([*runs, runs[0]], [*probabilities, probabilities[0]], labels)
    assert five["pairs_test_accuracy"] == [1.0, 0.5]
