"""What the released model bases its answers on, for the model card and the run report: the test
digits it gets wrong with the highest confidence, each with the attribution map of its answer
(the SavedModel's explain_images signature: integrated gradients, modules/attributions.py) and
its two top classes, and each class's mean attribution over test digits of that class.
"""

from typing import Any, Dict, List

import numpy as np

from modules import features
from modules.push_layout import EXPLANATIONS_FILE

WRONG_SHOWN = 6  # the most confident mistakes drawn
PER_CLASS_IMAGES = 8  # test digits of each class averaged into its mean map


def confident_mistakes(probabilities: np.ndarray, labels: np.ndarray, count: int = WRONG_SHOWN) -> List[int]:
    """Indices of the wrong answers, the most confident first."""
    answers = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(answers != labels)
    return wrong[np.argsort(-probabilities[wrong, answers[wrong]], kind="stable")][:count].tolist()


def per_class_rows(labels: np.ndarray, count: int = PER_CLASS_IMAGES) -> Dict[int, List[int]]:
    """{class: the first `count` test indices with that label}."""
    return {c: np.flatnonzero(labels == c)[:count].tolist() for c in range(features.NUM_CLASSES)}


def release_record(explain, images: np.ndarray, labels: np.ndarray, probabilities: np.ndarray, png_path: str):
    """Explains the most confident mistakes and each class's digits, draws them into png_path and
    returns release.json's "explanations"."""
    mistakes = confident_mistakes(probabilities, labels)
    answers = probabilities.argmax(axis=1)
    mistake_maps = explain(images[mistakes], answers[mistakes]) if mistakes else np.zeros((0, 28, 28), np.float32)
    rows = per_class_rows(labels)
    class_means = np.stack(
        [
            explain(images[rows[c]], np.full(len(rows[c]), c)).mean(axis=0) if rows[c] else np.zeros((28, 28))
            for c in range(features.NUM_CLASSES)
        ]
    )
    described = []
    for i in mistakes:
        top = np.argsort(-probabilities[i])[:2]
        described.append(
            {
                "index": int(i),
                "label": int(labels[i]),
                "top_classes": [[int(c), round(float(probabilities[i, c]), 4)] for c in top],
            }
        )
    draw(images[mistakes], mistake_maps, described, class_means, png_path)
    return {"file": EXPLANATIONS_FILE, "mistakes": described, "per_class_images": PER_CLASS_IMAGES}


def draw_signed(ax, attribution: np.ndarray) -> None:
    """An attribution map on a matplotlib axis: white at 0, red up, blue down, symmetric about 0."""
    top = max(float(np.abs(attribution).max()), 1e-12)
    ax.imshow(attribution, cmap="bwr", vmin=-top, vmax=top)
    ax.axis("off")


def draw(mistake_images, mistake_maps, described: List[Dict[str, Any]], class_means, path: str) -> None:
    """Row 1: each mistake; row 2: the map of its answer (red raised it, blue lowered it); row 3:
    each class's mean map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = max(features.NUM_CLASSES, len(described))
    fig, axes = plt.subplots(3, columns, figsize=(columns * 1.2, 4.4))
    for ax in axes.ravel():
        ax.axis("off")
    for k, (image, attribution, d) in enumerate(zip(mistake_images, mistake_maps, described)):
        (first, p1), (second, p2) = d["top_classes"]
        axes[0, k].imshow(image, cmap="gray")
        axes[0, k].set_title(f"label {d['label']}\n{first}: {p1:.2f}, {second}: {p2:.2f}", fontsize=7)
        draw_signed(axes[1, k], attribution)
    for c in range(features.NUM_CLASSES):
        draw_signed(axes[2, c], class_means[c])
        axes[2, c].set_title(f"class {c}, mean", fontsize=7)
    fig.suptitle("Most confident mistakes and why (integrated gradients); each class's mean map", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
