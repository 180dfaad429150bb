"""The monitor's HTML report: its verdict, every check with value and bound, and plots of what was
compared (pixel intensities, predicted-class mix, confidence), and a sample of the pictures clients
sent beside the 28x28 images the model made of them, in the run report's style."""

import html
import io
import json
import os
from typing import Dict, List

import numpy as np
from matplotlib.figure import Figure

from components.release.explanations import draw_signed
from modules import features
from runs.report import html_page, table

REPORT_FILE = "monitor_report.html"
PLOTS_DIR = "monitor_report"
RECEIVED_PICTURES = "received pictures"  # plots' key: request_logs.PictureSample list
THUMBNAIL = 112  # pixels a side of each picture shown


def pixel_histogram(statistics) -> "tuple[np.ndarray, np.ndarray]":
    """(bucket edges, share per bucket) of the image feature's standard histogram in TFDV statistics."""
    for feature in statistics.datasets[0].features:
        if feature.path.step[0] == features.IMAGE_KEY:
            for histogram in feature.num_stats.histograms:
                if histogram.type == histogram.STANDARD:
                    buckets = histogram.buckets
                    edges = np.array([b.low_value for b in buckets] + [buckets[-1].high_value])
                    counts = np.array([b.sample_count for b in buckets])
                    return edges, counts / max(counts.sum(), 1)
    raise ValueError("no pixel histogram in these statistics")


def _plot_pixels(curves: Dict[str, object], path: str) -> None:
    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    for label, statistics in curves.items():
        edges, shares = pixel_histogram(statistics)
        ax.stairs(shares, edges, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("pixel intensity")
    ax.set_ylabel("share of pixels")
    ax.set_title("pixel intensities")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _plot_classes(served: np.ndarray, test: np.ndarray, path: str) -> None:
    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    x = np.arange(features.NUM_CLASSES)
    ax.bar(x - 0.2, test, 0.4, label="test split labels")
    ax.bar(x + 0.2, served, 0.4, label="served predictions")
    ax.set_xticks(x)
    ax.set_xlabel("class")
    ax.set_ylabel("share")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _plot_confidence(top_probabilities: np.ndarray, bound: float, path: str) -> None:
    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    ax.hist(top_probabilities, bins=np.linspace(0, 1, 41))
    ax.axvline(bound, color="red", linestyle="--", label=f"low-confidence bound {bound}")
    ax.set_yscale("log")
    ax.set_xlabel("top probability")
    ax.set_ylabel("predictions")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def write(result: dict, plots: Dict[str, object], out_dir: str) -> str:
    """result: the monitor's JSON; plots: what to draw, per version (statistics and arrays)."""
    plot_dir = os.path.join(out_dir, PLOTS_DIR)
    os.makedirs(plot_dir, exist_ok=True)
    sections: List[str] = [
        f"<h1>Monitor: model {html.escape(result['model_name'])}, window {html.escape(result['window']['label'])}</h1>",
        f"<p class='decision'>{html.escape(result['verdict'])}</p>",
    ]
    problems = result["log_problems"]
    sections.append(
        "<h2>Request logs</h2>"
        + table(
            ["files", "records", "rows in window", "truncated files", "skipped records", "rows of unknown versions"],
            [
                [
                    problems["files"],
                    problems["records"],
                    result["rows"],
                    problems["truncated_files"],
                    problems["bad_records"],
                    sum(u["rows"] for u in result["unknown_versions"].values()),
                ]
            ],
        )
    )
    if result.get("drift"):
        drift = result["drift"]
        sections.append("<h2>Drift against the previous window</h2>" + table(*_check_table([drift])))
    for version, entry in result["versions"].items():
        sections.append(f"<h2>Version {version}: {entry['rows']} rows</h2>" + table(*_check_table(entry["checks"])))
        drawn = plots.get(version)
        if drawn:
            names = {kind: f"{PLOTS_DIR}/{kind}_{version}.png" for kind in ("pixels", "classes", "confidence")}
            _plot_pixels(drawn["pixel_curves"], os.path.join(out_dir, names["pixels"]))
            _plot_classes(drawn["served_mix"], drawn["test_mix"], os.path.join(out_dir, names["classes"]))
            _plot_confidence(
                drawn["top_probabilities"], result["low_confidence_bound"], os.path.join(out_dir, names["confidence"])
            )
            sections.append("".join(f"<img src='{n}' alt='{k}'>" for k, n in names.items()))
            if drawn.get("why"):
                sections.append(_why(drawn["why"], version, out_dir))
    if plots.get(RECEIVED_PICTURES):
        sections.append(_received_pictures(plots[RECEIVED_PICTURES], out_dir))
    sections.append("<h2>JSON</h2><pre>" + html.escape(json.dumps(result, indent=2)) + "</pre>")
    path = os.path.join(out_dir, REPORT_FILE)
    with open(path, "w") as f:
        f.write(html_page("mnist-tfx monitor", sections))
    return path


def _why(why: dict, version: str, out_dir: str) -> str:
    """The version's least confident answers, each above its attribution map (red raised the answer,
    blue lowered it), or why there are none."""
    title = f"<h3>Version {html.escape(version)}: the least confident answers and why (integrated gradients)</h3>"
    if "note" in why:
        return title + f"<p>{html.escape(why['note'])}</p>"
    count = len(why["answers"])
    fig = Figure(figsize=(1.3 * count, 3.0))
    axes = fig.subplots(2, count, squeeze=False)
    for k in range(count):
        axes[0, k].imshow(why["images"][k], cmap="gray")
        axes[0, k].set_title(f"{int(why['answers'][k])} ({why['top'][k]:.2f})", fontsize=8)
        draw_signed(axes[1, k], why["maps"][k])
        axes[0, k].axis("off")
    fig.tight_layout()
    name = f"{PLOTS_DIR}/why_{version}.png"
    fig.savefig(os.path.join(out_dir, name), dpi=100)
    return title + f"<img src='{name}' alt='low-confidence answers and their attribution maps'>"


def _received_pictures(samples: list, out_dir: str) -> str:
    """A table of pictures as clients sent them beside the 28x28 image the model made of each (drawn
    at THUMBNAIL pixels), and the answer; a picture that no longer decodes is said so."""
    from PIL import Image

    from modules.signatures import NO_DIGIT_CLASS

    rows = []  # cells of HTML: every text from the log is escaped
    for i, sample in enumerate(samples):
        names = [f"{PLOTS_DIR}/received_{i}.png", f"{PLOTS_DIR}/seen_{i}.png"]
        try:
            received = Image.open(io.BytesIO(sample.picture))
            received.thumbnail((THUMBNAIL, THUMBNAIL))
            received.convert("RGB").save(os.path.join(out_dir, names[0]))
            shown = f"<img src='{names[0]}' alt='received {i}'> {received.width}x{received.height}"
        except Exception as e:  # noqa: BLE001  the model refused it too; say what it is
            shown = html.escape(f"({len(sample.picture)} bytes that do not decode: {type(e).__name__})")
        seen = Image.fromarray(sample.image).resize((THUMBNAIL, THUMBNAIL), Image.NEAREST)
        seen.save(os.path.join(out_dir, names[1]))
        answer = "no digit" if sample.predicted == NO_DIGIT_CLASS else str(sample.predicted)
        rows.append(
            [html.escape(f"{sample.request_id}/{sample.row}"), shown, f"<img src='{names[1]}' alt='seen {i}'>", answer]
        )
    return (
        "<h2>Pictures received, and what the model saw</h2>"
        + f"<p>The first {len(samples)} pictures of the window sent to the picture signature.</p>"
        + "<table><tr><th>request/row</th><th>received</th><th>seen (28x28)</th><th>answer</th></tr>"
        + "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
        + "</table>"
    )


def _check_table(checks: List[dict]):
    rows = [
        [
            c["name"],
            "-" if c["value"] is None else f"{c['value']:.4f}",
            "-" if c["bound"] is None else f"{c['bound']:.4f}",
            "FLAGGED" if c["flagged"] else "ok",
            c["detail"],
        ]
        for c in checks
    ]
    return ["check", "value", "bound", "verdict", "detail"], rows
