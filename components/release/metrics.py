"""Reads the Evaluator's output into plain dicts: overall and per-class metrics of the candidate
and the baseline, and the confusion matrix. Used by the model card and the run report."""
from typing import Any, Dict, List, Optional

import tensorflow_model_analysis as tfma

from modules import features

ACCURACY = "sparse_categorical_accuracy"
BASELINE = "baseline"


def _slice_class(slice_key) -> Optional[int]:
    """None for the overall slice, the class for a `label` slice."""
    for key in slice_key.single_slice_keys:
        if key.column == features.LABEL_KEY:
            return int(key.int64_value)
    return None


def _value(kv) -> Optional[float]:
    value = kv.value
    if value.HasField("double_value"):
        return value.double_value.value
    if value.HasField("bounded_value"):
        return value.bounded_value.value.value
    return None


def read(evaluation_uri: str) -> Dict[str, Any]:
    """{"candidate": {"overall": {metric: v}, "per_class": {k: {metric: v}}}, "baseline": ... or None,
    "confusion_matrix": [[count of actual i predicted j]]}"""
    models: Dict[str, Dict[str, Any]] = {}
    for metrics in tfma.load_metrics(evaluation_uri):
        cls = _slice_class(metrics.slice_key)
        for kv in metrics.metric_keys_and_values:
            if kv.key.is_diff or _value(kv) is None:
                continue
            model = BASELINE if kv.key.model_name == BASELINE else "candidate"
            entry = models.setdefault(model, {"overall": {}, "per_class": {}})
            target = entry["overall"] if cls is None else entry["per_class"].setdefault(cls, {})
            target[kv.key.name] = _value(kv)
    matrix = confusion_matrix(evaluation_uri)
    if models.get("candidate"):
        models["candidate"]["overall"].update(precision_recall(matrix))
    return {"candidate": models.get("candidate"), "baseline": models.get(BASELINE), "confusion_matrix": matrix}


def precision_recall(matrix: List[List[int]]) -> Dict[str, float]:
    """precision_class_k and recall_class_k from the argmax confusion matrix (None when undefined)."""
    result = {}
    for k in range(len(matrix)):
        true_positive = matrix[k][k]
        predicted = sum(row[k] for row in matrix)
        actual = sum(matrix[k])
        result[f"precision_class_{k}"] = true_positive / predicted if predicted else None
        result[f"recall_class_{k}"] = true_positive / actual if actual else None
    return result


def confusion_matrix(evaluation_uri: str) -> List[List[int]]:
    """The candidate's argmax confusion matrix on the whole split (rows: actual, columns: predicted)."""
    n = features.NUM_CLASSES
    matrix = [[0] * n for _ in range(n)]
    for plots in tfma.load_plots(evaluation_uri):
        if plots.slice_key.single_slice_keys:
            continue
        for kv in plots.plot_keys_and_values:
            if kv.key.model_name == BASELINE or not kv.value.HasField("multi_class_confusion_matrix_at_thresholds"):
                continue
            for entry in kv.value.multi_class_confusion_matrix_at_thresholds.matrices[0].entries:
                if 0 <= entry.actual_class_id < n and 0 <= entry.predicted_class_id < n:
                    matrix[entry.actual_class_id][entry.predicted_class_id] = int(entry.num_weighted_examples)
    return matrix
