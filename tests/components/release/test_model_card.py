"""The model card renders what it is given: data, schema, training, metrics, formats, limits."""

from components.release import model_card

SHIPPED = {
    "saved_model": {"size_bytes": 6_000_000, "accuracy": 0.9912, "same_class_as_saved_model": 1000, "examples": 1000},
    "tflite": {
        "file": "model.tflite",
        "size_bytes": 480_000,
        "accuracy": 0.9911,
        "same_class_as_saved_model": 999,
        "examples": 1000,
        "latency_ms": {"batch_1": 0.09, "batch_32": 1.2},
    },
    "missing": {"onnx": "onnx: Unsupported ops: SomeOp"},
}


def _card(baseline=None, shipped=None):
    per_class = {k: {"example_count": 100.0 + k, "sparse_categorical_accuracy": 0.99 - k / 1000} for k in range(10)}
    overall = {
        "sparse_categorical_accuracy": 0.9912,
        "example_count": 1045.0,
        **{f"precision_class_{k}": 0.98 for k in range(10)},
    }
    return {
        "model_name": "mnist",
        "version": 42,
        "pushed_at": "2026-11-22 07:00:00 UTC",
        "data": {"span": 3, "uri": "/root/examples/1", "split_counts": {"train": 55000, "eval": 5000, "test": 10000}},
        "schema": {"image": "INT shape [784], values 0..255"},
        "training": {
            "hparams": {"epochs": 20, "batch_size": 128},
            "train_examples": 55000,
            "strategy": "MirroredStrategy",
            "epochs_run": 20,
        },
        "metrics": {"candidate": {"overall": overall, "per_class": per_class}, "baseline": baseline},
        "formats": shipped,
        "saved_model_size_bytes": 6_000_000,
        "thresholds": {"min_accuracy": 0.99, "max_accuracy_drop": 0.002 if baseline else None},
    }


def test_first_version_card_names_data_training_metrics_and_limits():
    text = model_card.render(_card(shipped=SHIPPED))
    for expected in (
        "version 42",
        "span **3**",
        "train 55,000, eval 5,000, test 10,000",
        "`epochs=20`",
        "Accuracy **0.9912** on 1,045 MNIST test examples",
        "change threshold did not apply",
        "| 9 | 109 | 0.9810 | 0.9800 | - |",
        "| TFLite, dynamic range (int8 weights, float activations) | `model.tflite` | 0.48 MB | 0.9911 "
        "| 999/1,000 | 0.09 | 1.2 | LiteRT |",
        "| ONNX | **missing** | - | - | - | - | - | onnx: Unsupported ops: SomeOp |",
        "Missing from this version: onnx: Unsupported ops: SomeOp",
        "## Intended use",
        "## Limitations",
        "`image`: INT shape [784]",
    ):
        assert expected in text, expected


def test_an_ensemble_says_how_many_models_the_served_one_averages():
    card = _card()
    assert "models whose probabilities" not in model_card.render(card)
    card["training"]["hparams"]["ensemble"] = 2
    card["training"]["epochs_run"] = 24
    assert "24 epochs run in all, by 2 models whose probabilities the served model averages" in model_card.render(card)


def test_card_with_a_baseline_states_the_comparison():
    baseline = {
        "overall": {"sparse_categorical_accuracy": 0.9900},
        "per_class": {k: {"sparse_categorical_accuracy": 0.98} for k in range(10)},
    }
    text = model_card.render(_card(baseline=baseline))
    assert "no drop beyond 0.002 against the latest blessed model (its accuracy: 0.9900)" in text
    assert "| 0 | 100 | 0.9900 | 0.9800 | 0.9800 |" in text


def test_precision_and_recall_come_from_the_confusion_matrix():
    from components.release import metrics

    matrix = [[8, 2, 0], [1, 9, 0], [0, 0, 0]]  # rows: actual, columns: predicted
    result = metrics.precision_recall(matrix)
    assert result["precision_class_0"] == 8 / 9 and result["recall_class_0"] == 8 / 10
    assert result["precision_class_1"] == 9 / 11 and result["recall_class_1"] == 9 / 10
    assert result["precision_class_2"] is None and result["recall_class_2"] is None


def test_a_span_made_from_feedback_shows_the_fresh_rows_and_a_plain_span_does_not():
    card = _card(baseline={"overall": {"sparse_categorical_accuracy": 0.99}, "per_class": {}})
    assert "fresh labelled window" not in model_card.render(card)
    card["metrics"]["fresh"] = {
        "candidate": {"sparse_categorical_accuracy": 0.9733, "example_count": 150.0},
        "baseline": {"sparse_categorical_accuracy": 0.9400},
    }
    text = model_card.render(card)
    assert (
        "Accuracy **0.9733** on 150 held-out rows of the fresh labelled window (production feedback); "
        "the latest blessed model 0.9400; blessing needed strictly better."
    ) in text


def test_confidence_section_gives_the_low_confidence_share_and_the_calibration():
    card = _card()
    assert "## Confidence" not in model_card.render(card)  # a version pushed before calibration existed
    card["confidence"] = {
        "examples": 10000,
        "ece": 0.0042,
        "low_confidence_bound": 0.5,
        "low_confidence_rate": 0.0031,
        "calibration": {
            "temperature": 1.31,
            "fitted_on": "eval (5031 examples)",
            "eval_ece_before": 0.012,
            "eval_ece_after": 0.004,
        },
    }
    text = model_card.render(card)
    assert (
        "expected calibration error 0.0042" in text
        and "**0.31%** of predictions have a top probability below 0.5" in text
    )
    assert "T = 1.31, fitted on eval (5031 examples)): calibration error there 0.0120 before, 0.0040 after" in text


def test_robustness_section_lists_each_family_next_to_the_replaced_version():
    card = _card()
    assert "## Robustness" not in model_card.render(card)  # a version pushed before the suite existed
    card["robustness"] = {
        "examples": 10000,
        "clean_accuracy": 0.9968,
        "baseline": "3",
        "baseline_clean_accuracy": 0.9961,
        "families": {
            "low_resolution": {
                "strength": 11,
                "unit": "px scan",
                "accuracy": 0.9907,
                "ece": 0.0021,
                "low_confidence_rate": 0.0042,
                "baseline_accuracy": 0.3887,
            },
        },
    }
    text = model_card.render(card)
    assert "## Robustness" in text and "| family | strength | accuracy | ECE | low-confidence | version 3 |" in text
    assert "| clean | - | 0.9968 |  |  | 0.9961 |" in text
    assert "| low resolution | 11 px scan | 0.9907 | 0.0021 | 0.42% | 0.3887 |" in text


def test_explanations_section_shows_the_picture_and_each_confident_mistake():
    card = _card()
    assert "## Explanations" not in model_card.render(card)
    card["explanations"] = {
        "file": "explanations.png",
        "per_class_images": 20,
        "mistakes": [{"index": 247, "label": 4, "top_classes": [[6, 0.97], [4, 0.02]]}],
    }
    text = model_card.render(card)
    assert "## Explanations" in text and "![explanations](explanations.png)" in text
    assert "| 247 | 4 | 6 (0.97) | 4 (0.02) |" in text


def test_the_card_states_the_privacy_bound_or_not_private():
    assert "- Privacy: **not private**." in model_card.render({**_card(), "privacy": "not private"})
    private = {
        "epsilon": 2.91,
        "delta": 1e-5,
        "noise_multiplier": 1.1,
        "l2_clip": 1.0,
        "batch_size": 256,
        "examples": 55000,
        "epochs": 15,
        "accountant": "dp-accounting RDP",
    }
    text = model_card.render({**_card(), "privacy": private})
    assert "- Privacy: **(epsilon 2.91, delta 1e-05)**-differentially private" in text
    assert (
        "noise multiplier 1.1, each example's gradient clipped to L2 norm 1.0, batch 256 of 55,000, 15 epochs" in text
    )


def test_formats_the_run_did_not_ask_for_are_named_apart_from_failures():
    card = model_card.render(_card(shipped={**SHIPPED, "not_requested": ["tflite_micro"]}))
    assert "Missing from this version: onnx: Unsupported ops: SomeOp" in card
    assert "Not converted for this version (the run asked for fewer formats): tflite_micro" in card
    assert "Not converted" not in model_card.render(_card(shipped=SHIPPED))
