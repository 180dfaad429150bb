"""A model card (Markdown) for one pushed version: data, schema, training, metrics, use, limits."""

from typing import Any, Dict, List

from components.release import adversarial, formats
from components.release.metrics import ACCURACY
from modules import calibration, features

INTENDED_USE = [
    "## Intended use",
    "Classifying single handwritten digits (0-9) in 28x28 grayscale images, white ink on black,",
    "size-normalized and centred like MNIST. Inputs: serialized tf.Example (`serving_default`) or",
    "uint8 pixels [batch, 28, 28] (`predict_images`). Outputs: probabilities of the ten classes.",
]
LIMITATIONS = [
    "## Limitations",
    "- Trained on MNIST only: US Census employees' and students' handwriting from the 1990s,",
    "  scanned and centred. Other scripts, styles, letters, multiple digits, photos of digits",
    "  that are not cropped and centred, or inverted colours are out of distribution.",
    "- The model always answers one of ten classes; it has no 'not a digit' output. Low top",
    "  probabilities are the only sign of an unfamiliar input.",
    "- Not for decisions about people without human review.",
]


def _fmt(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _data(card: Dict[str, Any]) -> List[str]:
    data = card["data"]
    return [
        "## Data",
        f"- ExampleGen span **{data['span']}** (`{data['uri']}`)",
        "- Examples per split: " + ", ".join(f"{k} {v:,}" for k, v in data["split_counts"].items()),
        "- Metrics below are on the `test` split (from MNIST's official test files), which no",
        "  training or model selection saw.",
    ]


def _schema(card: Dict[str, Any]) -> List[str]:
    return ["## Schema", *[f"- `{name}`: {text}" for name, text in card["schema"].items()]]


def _training(card: Dict[str, Any]) -> List[str]:
    training = card["training"]
    members = training["hparams"].get("ensemble", 1)
    ensemble = f" in all, by {members} models whose probabilities the served model averages" if members > 1 else ""
    return [
        "## Training",
        f"- {training.get('train_examples', '?'):,} training examples, strategy "
        f"{training.get('strategy', '?')}, {training.get('epochs_run', '?')} epochs run{ensemble}",
        "- Hyperparameters: " + ", ".join(f"`{k}={v}`" for k, v in sorted(training["hparams"].items())),
        _privacy_line(card.get("privacy")),
    ]


def _privacy_line(privacy) -> str:
    """(epsilon, delta) of a DP-SGD run (modules/privacy.py), or that the training was not private."""
    if not isinstance(privacy, dict):
        return (
            "- Privacy: **not private**. Trained without differential privacy: a model can remember rare "
            "training digits (train with `private=True` for a stated bound)."
        )
    return (
        f"- Privacy: **(epsilon {privacy['epsilon']}, delta {privacy['delta']})**-differentially private for each "
        f"example of the training split (someone with many examples is protected less): DP-SGD on Poisson-sampled "
        f"batches, noise multiplier {privacy['noise_multiplier']}, each example's "
        f"gradient clipped to L2 norm {privacy['l2_clip']}, batch {privacy['batch_size']} of "
        f"{privacy['examples']:,}, {privacy['epochs']} epochs ({privacy['accountant']}). The eval split, "
        "which picks the epoch kept and fits the temperature, is not covered."
    )


def _fresh(card: Dict[str, Any]) -> List[str]:
    """The line on the held-out fresh rows of a span made from production feedback (none otherwise)."""
    fresh = card["metrics"].get("fresh")
    if not fresh or not fresh.get("candidate"):
        return []
    candidate, baseline = fresh["candidate"], fresh.get("baseline") or {}
    against = (
        f"the latest blessed model {_fmt(baseline.get(ACCURACY))}; blessing needed strictly better"
        if baseline
        else "no earlier blessed model to beat"
    )
    return [
        f"- Accuracy **{_fmt(candidate.get(ACCURACY))}** on {int(candidate.get('example_count', 0)):,} held-out "
        f"rows of the fresh labelled window (production feedback); {against}."
    ]


def _evaluation(card: Dict[str, Any]) -> List[str]:
    candidate, baseline = card["metrics"]["candidate"], card["metrics"].get("baseline")
    overall, thresholds = candidate["overall"], card["thresholds"]
    if baseline:
        comparison = (
            f" and no drop beyond {thresholds['max_accuracy_drop']} against the latest blessed model "
            f"(its accuracy: {_fmt(baseline['overall'].get(ACCURACY))})."
        )
    else:
        comparison = "; no earlier blessed model existed, so the change threshold did not apply."
    lines = [
        "## Evaluation (test split)",
        f"- Accuracy **{_fmt(overall.get(ACCURACY))}** on {int(overall.get('example_count', 0)):,} MNIST test "
        f"examples; blessing needed >= {thresholds['min_accuracy']}" + comparison,
        *_fresh(card),
        "",
        "| class | examples | accuracy (recall) | precision | baseline accuracy |",
        "|---|---|---|---|---|",
    ]
    for k in range(features.NUM_CLASSES):
        c = candidate["per_class"].get(k, {})
        b = (baseline or {}).get("per_class", {}).get(k, {})
        lines.append(
            f"| {k} | {int(c.get('example_count', 0)):,} | {_fmt(c.get(ACCURACY, '-'))} "
            f"| {_fmt(overall.get(f'precision_class_{k}', '-'))} | {_fmt(b.get(ACCURACY, '-'))} |"
        )
    return lines


def _files(card: Dict[str, Any]) -> List[str]:
    lines = ["## Files in this version"]
    shipped = card.get("formats")
    if shipped:
        lines += [
            "Every format was converted from this SavedModel and scored on MNIST's test split in the release; "
            "latency is the median of calls in one process on the release's machine (batch 1 and 32).",
            "",
            "| " + " | ".join(formats.TABLE_HEADER) + " |",
            "|" + "---|" * len(formats.TABLE_HEADER),
            *("| " + " | ".join(row) + " |" for row in formats.table_rows(shipped)),
        ]
        if shipped.get("missing"):
            lines.append("")
            lines.append("Missing from this version: " + "; ".join(shipped["missing"].values()))
        if shipped.get("not_requested"):
            lines.append("")
            lines.append(
                "Not converted for this version (the run asked for fewer formats): "
                + ", ".join(shipped["not_requested"])
            )
        lines.append("")
    else:
        lines.append(f"- SavedModel (TF Serving): {card['saved_model_size_bytes'] / 1e6:.2f} MB")
    lines.append("- `release.json`: the numbers on this card, machine-readable")
    return lines


def _confidence(card: Dict[str, Any]) -> List[str]:
    """How far the probabilities can be trusted, and how many digits to route to a person."""
    confidence = card.get("confidence")
    if not confidence:
        return []
    lines = [
        "## Confidence",
        f"- On MNIST's {confidence['examples']:,} test images: expected calibration error "
        f"{confidence['ece']:.4f} ({calibration.ECE_BINS} bins of the top probability); "
        f"**{confidence['low_confidence_rate']:.2%}** of predictions have a top probability below "
        f"{confidence['low_confidence_bound']} (low-confidence: send these to a person).",
    ]
    calibrated = confidence.get("calibration")
    if calibrated:
        lines.append(
            f"- Probabilities are temperature-scaled inside the model (T = {calibrated['temperature']}, fitted on "
            f"{calibrated['fitted_on']}): calibration error there {calibrated['eval_ece_before']:.4f} before, "
            f"{calibrated['eval_ece_after']:.4f} after."
        )
    return lines


def robustness_header(robust: Dict[str, Any]) -> List[str]:
    """The columns of robustness_rows; the last names the replaced version when there is one."""
    replaced = f"version {robust['baseline']}" if robust.get("baseline") else "replaced version"
    return ["family", "strength", "accuracy", "ECE", "low-confidence", replaced]


def robustness_rows(robust: Dict[str, Any]) -> List[List[str]]:
    """[family, strength, accuracy, ECE, low-confidence, replaced version's accuracy] per family,
    with the clean test images first (the model card's and the run report's table)."""
    baseline = robust.get("baseline_clean_accuracy")
    rows = [["clean", "-", _fmt(robust["clean_accuracy"]), "", "", _fmt(baseline) if baseline else "-"]]
    for name, f in robust["families"].items():
        rows.append(
            [
                name.replace("_", " "),
                f"{f['strength']} {f['unit']}",
                _fmt(f["accuracy"]),
                _fmt(f["ece"]),
                f"{f['low_confidence_rate']:.2%}",
                _fmt(f["baseline_accuracy"]) if f["baseline_accuracy"] is not None else "-",
            ]
        )
    return rows


def _robustness(card: Dict[str, Any]) -> List[str]:
    """Accuracy where handwriting differs from MNIST's, next to the version this one replaces."""
    robust = card.get("robustness")
    if not robust:
        return []
    lines = [
        "## Robustness",
        f"The {robust['examples']:,} test images under each way real handwriting and scans differ from",
        "MNIST's (`modules/distortions.py`), at the middle of three strengths; `benchmarks/robustness.py`",
        "scores all three. Expect the accuracy here, not the clean one, on such inputs.",
        "",
        "| " + " | ".join(robustness_header(robust)) + " |",
        "|---|---|---|---|---|---|",
    ]
    return lines + ["| " + " | ".join(row) + " |" for row in robustness_rows(robust)]


def _adversarial(card: Dict[str, Any]) -> List[str]:
    """Accuracy under deliberate attacks at each budget, next to the version this one replaces."""
    attacked = card.get("adversarial")
    if not attacked:
        return []
    lines = [
        "## Under attack",
        f"{attacked['examples']:,} test digits spread over the split, each perturbed within an L-infinity budget",
        f"on the [0, 1] pixel scale to make this model answer wrong ({attacked['library']}; FGSM:",
        f"{attacked['fgsm_attack']}; PGD: {attacked['pgd_attack']}; {attacked['loss']}).",
        "These attacks read the model's gradients; a client of the served API can come close by copying the",
        "model through many queries (which rate limits slow: `serving/README.md`) or by attacking a model",
        "of its own. `benchmarks/adversarial.py` runs the table on more digits and PGD steps.",
        "",
        "| " + " | ".join(adversarial.table_header(attacked)) + " |",
        "|---|---|---|---|",
        *["| " + " | ".join(row) + " |" for row in adversarial.table_rows(attacked)],
    ]
    if attacked.get("cross_check"):
        lines += ["", adversarial.cross_check_line(attacked)]
    if attacked.get("baseline_note"):
        lines += ["", f"The replaced version: {attacked['baseline_note']}."]
    return lines


def _explanations(card: Dict[str, Any]) -> List[str]:
    """The most confident mistakes with the attribution map of their answer, and each class's mean map."""
    explained = card.get("explanations")
    if not explained:
        return []
    lines = [
        "## Explanations",
        "Integrated gradients (the `explain_images` signature this version serves): red pixels raised",
        "the answer's probability, blue lowered it. Top: the test digits this version gets wrong with",
        "the highest confidence and the map of each answer; bottom: each class's mean map over",
        f"{explained['per_class_images']} test digits of that class.",
        "",
        f"![explanations]({explained['file']})",
        "",
        "| test index | label | answer | second |",
        "|---|---|---|---|",
    ]
    for m in explained["mistakes"]:
        (first, p1), (second, p2) = m["top_classes"]
        lines.append(f"| {m['index']} | {m['label']} | {first} ({p1:.2f}) | {second} ({p2:.2f}) |")
    return lines


def render(card: Dict[str, Any]) -> str:
    """card: model_name, version, pushed_at, data {span, uri, split_counts}, schema {feature: text},
    training {hparams, train_examples, strategy, epochs_run}, metrics (components.release.metrics.read),
    formats (components.release.formats.release_record), confidence (components.release.confidence.result, or None),
    robustness (components.release.robustness.release_record, or None),
    adversarial (components.release.adversarial.release_record, or None),
    explanations (components.release.explanations.release_record, or None),
    saved_model_size_bytes, thresholds {min_accuracy, max_accuracy_drop}
    (components.release.record.build makes it)."""
    header = [
        f"# Model card: {card['model_name']}, version {card['version']}",
        "",
        f"Pushed {card['pushed_at']} by the mnist-tfx pipeline after the Evaluator blessed it.",
    ]
    sections = [
        header,
        INTENDED_USE,
        LIMITATIONS,
        _data(card),
        _schema(card),
        _training(card),
        _evaluation(card),
        _confidence(card),
        _robustness(card),
        _adversarial(card),
        _explanations(card),
        _files(card),
    ]
    return "\n\n".join("\n".join(section) for section in sections if section) + "\n"
