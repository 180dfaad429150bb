"""A model card (Markdown) for one pushed version: data, schema, training, metrics, use, limits."""
from typing import Any, Dict

from modules import features


def _fmt(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def render(card: Dict[str, Any]) -> str:
    """card: model_name, version, pushed_at, data {span, uri, split_counts}, schema {feature: text},
    training {hparams, train_examples, strategy, epochs_run}, metrics (components.release.metrics.read),
    tflite {size_bytes, accuracy}, saved_model_size_bytes, thresholds {min_accuracy, max_accuracy_drop}."""
    candidate = card["metrics"]["candidate"]
    baseline = card["metrics"].get("baseline")
    overall = candidate["overall"]
    lines = [
        f"# Model card: {card['model_name']}, version {card['version']}",
        "",
        f"Pushed {card['pushed_at']} by the mnist-tfx pipeline after the Evaluator blessed it.",
        "",
        "## Intended use",
        "Classifying single handwritten digits (0-9) in 28x28 grayscale images, white ink on black,",
        "size-normalized and centred like MNIST. Inputs: serialized tf.Example (`serving_default`) or",
        "uint8 pixels [batch, 28, 28] (`predict_images`). Outputs: probabilities of the ten classes.",
        "",
        "## Limitations",
        "- Trained on MNIST only: US Census employees' and students' handwriting from the 1990s,",
        "  scanned and centred. Other scripts, styles, letters, multiple digits, photos of digits",
        "  that are not cropped and centred, or inverted colours are out of distribution.",
        "- The model always answers one of ten classes; it has no 'not a digit' output. Low top",
        "  probabilities are the only sign of an unfamiliar input.",
        "- Not for decisions about people without human review.",
        "",
        "## Data",
        f"- ExampleGen span **{card['data']['span']}** (`{card['data']['uri']}`)",
        "- Examples per split: " + ", ".join(f"{k} {v:,}" for k, v in card["data"]["split_counts"].items()),
        "- Metrics below are on the `test` split (from MNIST's official test files), which no",
        "  training or model selection saw.",
        "",
        "## Schema",
        *[f"- `{name}`: {text}" for name, text in card["schema"].items()],
        "",
        "## Training",
        f"- {card['training'].get('train_examples', '?'):,} training examples, strategy "
        f"{card['training'].get('strategy', '?')}, {card['training'].get('epochs_run', '?')} epochs run",
        "- Hyperparameters: " + ", ".join(f"`{k}={v}`" for k, v in sorted(card["training"]["hparams"].items())),
        "",
        "## Evaluation (test split)",
        f"- Accuracy **{_fmt(overall.get('sparse_categorical_accuracy'))}** on "
        f"{int(overall.get('example_count', 0)):,} examples; blessing needed >= {card['thresholds']['min_accuracy']}"
        + (f" and no drop beyond {card['thresholds']['max_accuracy_drop']} against the latest blessed model "
           f"(its accuracy: {_fmt(baseline['overall'].get('sparse_categorical_accuracy'))})." if baseline
           else "; no earlier blessed model existed, so the change threshold did not apply."),
        "",
        "| class | examples | accuracy (recall) | precision | baseline accuracy |",
        "|---|---|---|---|---|",
    ]
    for k in range(features.NUM_CLASSES):
        c = candidate["per_class"].get(k, {})
        b = (baseline or {}).get("per_class", {}).get(k, {})
        lines.append(f"| {k} | {int(c.get('example_count', 0)):,} | {_fmt(c.get('sparse_categorical_accuracy', '-'))} "
                     f"| {_fmt(overall.get(f'precision_class_{k}', '-'))} "
                     f"| {_fmt(b.get('sparse_categorical_accuracy', '-'))} |")
    tflite = card.get("tflite")
    lines += ["", "## Files in this version",
              f"- SavedModel (TF Serving): {card['saved_model_size_bytes'] / 1e6:.2f} MB"]
    if tflite:
        saved_model_accuracy = _fmt(overall.get("sparse_categorical_accuracy"))
        lines.append(f"- `model.tflite` (dynamic-range int8 weights): {tflite['size_bytes'] / 1e6:.2f} MB, "
                     f"test accuracy {_fmt(tflite['accuracy'])} (SavedModel {saved_model_accuracy})")
    lines.append("- `release.json`: the numbers on this card, machine-readable")
    return "\n".join(lines) + "\n"
