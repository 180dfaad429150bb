"""The run report: one HTML page with PNG plots, written next to summary.json after every run.

Training curves (per epoch), the confusion matrix, per-class accuracy against the baseline,
dataset statistics, and the blessing decision with its reasons. It shows what the run
produced: a run stopped early gets a report of what exists.
"""

import glob
import html
import json
import os
import shutil
from typing import Any, Dict, List, Optional

import matplotlib.ticker
import numpy as np
import tensorflow_data_validation as tfdv
from matplotlib.figure import Figure  # drawn straight to PNG files: no pyplot, no display backend

from components import tfx_files
from components.release import adversarial, formats, metrics, model_card
from modules import export, features
from modules.push_layout import RELEASE_FILE

REPORT_FILE = "run_report.html"
PLOTS_DIR = "run_report"


def _artifact(summary: dict, node: str, type_name: str) -> Optional[str]:
    return summary.get("artifacts", {}).get(f"{node}.{type_name}")


def dataset_statistics(statistics_uri: str) -> Dict[str, Dict[str, Any]]:
    """{split: {examples, mean_pixel, labels {class: count}}} from StatisticsGen's output."""
    result = {}
    for path in sorted(glob.glob(tfx_files.stats_path(statistics_uri, "*"))):
        split = tfx_files.split_name(os.path.basename(os.path.dirname(path)))
        dataset = tfdv.load_stats_binary(path).datasets[0]
        entry = {"examples": int(dataset.num_examples), "mean_pixel": None, "labels": {}}
        for feature in dataset.features:
            name = feature.path.step[0]
            if name == features.IMAGE_KEY:
                entry["mean_pixel"] = round(feature.num_stats.mean, 2)
            elif name == features.LABEL_KEY:
                if feature.HasField("string_stats"):
                    entry["labels"] = {int(v.value): int(v.frequency) for v in feature.string_stats.top_values}
        result[split] = entry
    return result


def _plot_curves(history: Dict[str, List[float]], path: str) -> None:
    fig = Figure(figsize=(10, 3.5))
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for key, style in ((metric, "-o"), (f"val_{metric}", "-s")):
            if history.get(key):
                ax.plot(range(1, len(history[key]) + 1), history[key], style, label=key, markersize=3)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _plot_confusion(matrix: List[List[int]], path: str) -> None:
    m = np.array(matrix)
    fig = Figure(figsize=(6, 5))
    ax = fig.subplots()
    # Log colour scale: the diagonal dwarfs the errors, which are what a reader looks for.
    image = ax.imshow(np.log1p(m), cmap="Blues")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            if m[i, j]:
                ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7, color="white" if i == j else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_xticks(range(m.shape[1]))
    ax.set_yticks(range(m.shape[0]))
    ax.set_title("confusion matrix (test split)")
    fig.colorbar(image, ax=ax, label="log(1 + count)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _per_class_accuracy(model_metrics: Optional[dict]) -> List[Optional[float]]:
    per_class = (model_metrics or {}).get("per_class", {})
    return [per_class.get(k, {}).get(metrics.ACCURACY) for k in range(features.NUM_CLASSES)]


def _plot_per_class(candidate: List, baseline: List, path: str) -> None:
    fig = Figure(figsize=(8, 3.5))
    ax = fig.subplots()
    x = np.arange(features.NUM_CLASSES)
    ax.bar(x - 0.2, [v or 0 for v in candidate], 0.4, label="candidate")
    if any(v is not None for v in baseline):
        ax.bar(x + 0.2, [v or 0 for v in baseline], 0.4, label="baseline (latest blessed)")
    low = min([v for v in candidate + baseline if v is not None] or [0.0])
    ax.set_ylim(max(0.0, low - 0.02), 1.0)
    ax.set_xticks(x)
    ax.set_xlabel("class")
    ax.set_ylabel("accuracy")
    ax.legend(loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def table(header: List[str], rows: List[List[Any]]) -> str:
    cells = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{cells}</tr>{body}</table>"


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def decision(summary: dict) -> str:
    if summary.get("error"):
        failed = [n for n, c in summary["components"].items() if c["state"] == "FAILED"]
        return f"RUN STOPPED at {', '.join(failed) or 'start-up'}: nothing pushed. {summary['error']}"
    if summary.get("blessed") and not summary.get("pushed"):
        return "BLESSED but not pushed: see the log"
    if summary.get("blessed"):
        return (
            f"BLESSED: test accuracy {_fmt(summary.get('test_accuracy'))} met the bound "
            f"{summary.get('min_accuracy')} and did not regress past the baseline; pushed version "
            f"{summary.get('pushed_version')}."
        )
    reasons = "; ".join(summary.get("validation_failures") or []) or "no reason recorded"
    return f"NOT BLESSED: nothing pushed. {reasons}"


def write(summary: dict, output_root: str) -> str:
    """Writes <output_root>/run_report.html and its plots; returns the HTML path."""
    plots = os.path.join(output_root, PLOTS_DIR)
    os.makedirs(plots, exist_ok=True)
    sections = [
        f"<h1>Pipeline run {html.escape(summary.get('run_id', '?'))}</h1>",
        f"<p class='decision'>{html.escape(decision(summary))}</p>",
    ]
    rows = [[node, c["state"], c["wall_seconds"]] for node, c in summary.get("components", {}).items()]
    sections.append("<h2>Components</h2>" + table(["component", "state", "wall s"], rows))

    model_uri = _artifact(summary, "Trainer", "Model")
    record = export.read_training_record(tfx_files.serving_model_path(model_uri)) if model_uri else {}
    if record.get("history"):
        _plot_curves(record["history"], os.path.join(plots, "training_curves.png"))
        sections.append(
            "<h2>Training</h2><img src='run_report/training_curves.png' alt='training curves'>"
            + table(["hyperparameter", "value"], sorted(record.get("hparams", {}).items()))
        )

    evaluation_uri = _artifact(summary, "Evaluator", "ModelEvaluation")
    if evaluation_uri:
        evaluated = metrics.read(evaluation_uri)
        _plot_confusion(evaluated["confusion_matrix"], os.path.join(plots, "confusion_matrix.png"))
        candidate, baseline = _per_class_accuracy(evaluated["candidate"]), _per_class_accuracy(evaluated["baseline"])
        _plot_per_class(candidate, baseline, os.path.join(plots, "per_class_accuracy.png"))
        overall = (evaluated["candidate"] or {}).get("overall", {})
        per_class_rows = [
            [
                k,
                _fmt(candidate[k]),
                _fmt(baseline[k]),
                _fmt(overall.get(f"precision_class_{k}")),
                _fmt(overall.get(f"recall_class_{k}")),
            ]
            for k in range(features.NUM_CLASSES)
        ]
        sections.append(
            "<h2>Evaluation (test split)</h2>"
            f"<p>accuracy {_fmt(overall.get(metrics.ACCURACY))} on {int(overall.get('example_count', 0))} examples; "
            f"baseline {_fmt(((evaluated['baseline'] or {}).get('overall', {})).get(metrics.ACCURACY))}</p>"
            "<img src='run_report/confusion_matrix.png' alt='confusion matrix'>"
            "<img src='run_report/per_class_accuracy.png' alt='per-class accuracy'>"
            + table(["class", "accuracy", "baseline accuracy", "precision", "recall"], per_class_rows)
        )

    release_path = os.path.join(summary.get("pushed_model_dir") or "", RELEASE_FILE)
    if summary.get("pushed_model_dir") and os.path.isfile(release_path):
        with open(release_path) as f:
            released = json.load(f)
        robust = released.get("robustness")
        explained = released.get("explanations")
        if explained and os.path.isfile(os.path.join(summary["pushed_model_dir"], explained["file"])):
            shutil.copy(
                os.path.join(summary["pushed_model_dir"], explained["file"]), os.path.join(plots, "explanations.png")
            )
            sections.append(
                "<h2>Explanations (integrated gradients: red raised the answer, blue lowered it)</h2>"
                "<img src='run_report/explanations.png' alt='the most confident mistakes and each class mean map'>"
                + table(
                    ["test index", "label", "answer", "second"],
                    [
                        [m["index"], m["label"], *(f"{c} ({p:.2f})" for c, p in m["top_classes"])]
                        for m in explained["mistakes"]
                    ],
                )
            )
        if robust:
            sections.append(
                f"<h2>Robustness ({robust['examples']} test images, each family at its middle strength)</h2>"
                + table(model_card.robustness_header(robust), model_card.robustness_rows(robust))
            )
        attacked = released.get("adversarial")
        if attacked:
            check = adversarial.cross_check_line(attacked).replace("`", "") if attacked.get("cross_check") else ""
            sections.append(
                f"<h2>Under attack ({attacked['examples']} test digits; FGSM; PGD: {attacked['pgd_attack']})</h2>"
                + table(adversarial.table_header(attacked), adversarial.table_rows(attacked))
                + (f"<p>{html.escape(check)}</p>" if check else "")
            )
        shipped = released.get("formats")
        if shipped:
            sections.append(
                "<h2>Formats (each scored on the test split; latency: median ms in one process)</h2>"
                + table(
                    formats.TABLE_HEADER, [[cell.strip("`*") for cell in row] for row in formats.table_rows(shipped)]
                )
            )

    statistics_uri = _artifact(summary, "StatisticsGen", "ExampleStatistics")
    if statistics_uri:
        stats = dataset_statistics(statistics_uri)
        rows = [
            [
                split,
                s["examples"],
                s["mean_pixel"],
                " ".join(f"{k}:{s['labels'].get(k, 0)}" for k in range(features.NUM_CLASSES)),
            ]
            for split, s in stats.items()
        ]
        sections.append(
            f"<h2>Data (span {summary.get('span')})</h2>"
            + table(["split", "examples", "mean pixel", "examples per class"], rows)
        )
    sections.append("<h2>summary.json</h2><pre>" + html.escape(json.dumps(summary, indent=2)) + "</pre>")
    path = os.path.join(output_root, REPORT_FILE)
    with open(path, "w") as f:
        f.write(html_page("mnist-tfx run report", sections))
    return path


def html_page(title: str, sections: List[str]) -> str:
    """A report page in the project's one style (the run report, the monitor's report)."""
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:2px 8px}.decision{font-size:1.2em;font-weight:bold}"
        "img{max-width:100%;margin:0.5em}</style></head><body>" + "\n".join(sections) + "</body></html>"
    )
