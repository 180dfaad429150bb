"""The fresh-window gate: a model trained on a span made from production feedback is released only
if it beats the served model on that span's held-out fresh rows (monitoring/span.py writes them).

The Evaluator has already blessed it on the MNIST test split (at least as good as the latest blessed
model, within MAX_ACCURACY_DROP); this is the other half of the loop's promise: better on the
traffic that made the retraining necessary. A span without a fresh pair (the shipped MNIST, a
data drop) has no such gate. Plain functions over file paths: tested without TFX.
"""

from typing import Any, Dict, Optional

import numpy as np
import tensorflow as tf

from modules import idx, push_layout, signatures

_BATCH = 512


def accuracy(saved_model_dir: str, images: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of a SavedModel's images signature on uint8 images [n, 28, 28]."""
    predict = tf.saved_model.load(saved_model_dir).signatures[signatures.IMAGES_SIGNATURE]
    correct = 0
    for start in range(0, len(images), _BATCH):
        batch = tf.constant(images[start : start + _BATCH], tf.uint8)
        probabilities = predict(**{signatures.IMAGES_INPUT: batch})[signatures.PROBABILITIES_OUTPUT].numpy()
        correct += int(np.sum(probabilities.argmax(axis=1) == labels[start : start + _BATCH]))
    return correct / len(labels)


def served_version(push_base_dir: str) -> Optional[int]:
    """The newest version in the push directory: the one TF Serving serves (latest policy)."""
    versions = push_layout.version_dirs(push_base_dir)
    return max(versions) if versions else None


def judge(span_folder: str, candidate_dir: str, push_base_dir: str) -> Optional[Dict[str, Any]]:
    """None when the span has no fresh rows; else both accuracies and whether the candidate passed."""
    images_path, labels_path = idx.pair_paths(span_folder, idx.FRESH_PAIR)
    if not tf.io.gfile.exists(images_path):
        return None
    images, labels = idx.read_pair(images_path, labels_path)
    result: Dict[str, Any] = {
        "span_folder": span_folder,
        "examples": int(len(labels)),
        "candidate_accuracy": accuracy(candidate_dir, images, labels),
        "served_version": served_version(push_base_dir),
        "served_accuracy": None,
    }
    if result["served_version"] is None:
        result.update(passed=True, reason="no served model to beat")
        return result
    served_dir = push_layout.version_dirs(push_base_dir)[result["served_version"]]
    result["served_accuracy"] = accuracy(served_dir, images, labels)
    result["passed"] = result["candidate_accuracy"] > result["served_accuracy"]
    result["reason"] = (
        f"on {len(labels)} held-out fresh rows the candidate scores {result['candidate_accuracy']:.4f}, "
        f"the served version {result['served_version']} {result['served_accuracy']:.4f}: "
        + ("better, released" if result["passed"] else "not better, not released")
    )
    return result
