"""Reads the Evaluator's output into plain values: overall and per-class metrics of the candidate
and the baseline, the confusion matrix, the thresholds and the reasons for a NOT_BLESSED
decision. Used by the release, the model card, the run summary, the report and the lineage.

"overall" is the MNIST test rows: the Evaluator slices the test split by each example's source
(pipeline/blessing.py), because a span made from production feedback adds its held-out fresh rows to
it; those are read apart, as "fresh". Evaluations from before the source slices (an overall slice
and label slices) read the same way."""

from typing import Any, Dict, List, Optional, Tuple

import tensorflow_model_analysis as tfma
from google.protobuf import json_format

from modules import features, idx

# The blessing metric: the Keras metric class the EvalConfig names, and the key TFMA stores it under.
ACCURACY_CLASS = "SparseCategoricalAccuracy"
ACCURACY = "sparse_categorical_accuracy"
BASELINE = "baseline"


def _slice(slice_key) -> Tuple[Optional[str], Optional[int]]:
    """(source, class) of a slice key: None where the slice does not fix it."""
    source, cls = None, None
    for key in slice_key.single_slice_keys:
        if key.column == features.SOURCE_KEY:
            source = key.bytes_value.decode()
        elif key.column == features.LABEL_KEY:
            cls = int(key.int64_value)
    return source, cls


def _slice_name(slice_key) -> str:
    """ "overall", or the slice's columns and values: "source=t10k-fresh"."""
    parts = []
    for key in slice_key.single_slice_keys:
        kind = key.WhichOneof("kind")
        value = getattr(key, kind) if kind else ""
        parts.append(f"{key.column}={value.decode() if isinstance(value, bytes) else value}")
    return ", ".join(parts) or "overall"


def _mnist_test(source: Optional[str]) -> bool:
    """Whether a slice is of the MNIST test rows (None: an evaluation without source slices)."""
    return source in (None, idx.TEST_PAIR)


def _value(kv) -> Optional[float]:
    value = kv.value
    if value.HasField("double_value"):
        return value.double_value.value
    if value.HasField("bounded_value"):
        return value.bounded_value.value.value
    return None


def read(evaluation_uri: str) -> Dict[str, Any]:
    """{"candidate": {"overall": {metric: v}, "per_class": {k: {metric: v}}}, "baseline": ... or None,
    "confusion_matrix": [[count of actual i predicted j]], "fresh": {"candidate": {metric: v},
    "baseline": ...} or None}: overall, per_class and the matrix on the MNIST test rows, fresh on
    the held-out fresh rows of a span made from feedback."""
    models: Dict[str, Dict[str, Any]] = {}
    fresh: Dict[str, Dict[str, float]] = {}
    for metrics in tfma.load_metrics(evaluation_uri):
        source, cls = _slice(metrics.slice_key)
        for kv in metrics.metric_keys_and_values:
            if kv.key.is_diff or _value(kv) is None:
                continue
            model = BASELINE if kv.key.model_name == BASELINE else "candidate"
            if not _mnist_test(source):
                if cls is None:
                    fresh.setdefault(model, {})[kv.key.name] = _value(kv)
                continue
            entry = models.setdefault(model, {"overall": {}, "per_class": {}})
            target = entry["overall"] if cls is None else entry["per_class"].setdefault(cls, {})
            target[kv.key.name] = _value(kv)
    matrix = confusion_matrix(evaluation_uri)
    if models.get("candidate"):
        models["candidate"]["overall"].update(precision_recall(matrix))
    return {
        "candidate": models.get("candidate"),
        "baseline": models.get(BASELINE),
        "confusion_matrix": matrix,
        "fresh": {"candidate": fresh.get("candidate"), "baseline": fresh.get(BASELINE)} if fresh else None,
    }


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
    """The candidate's argmax confusion matrix on the MNIST test rows (rows: actual, columns: predicted)."""
    n = features.NUM_CLASSES
    matrix = [[0] * n for _ in range(n)]
    for plots in tfma.load_plots(evaluation_uri):
        source, cls = _slice(plots.slice_key)
        if cls is not None or not _mnist_test(source):
            continue
        for kv in plots.plot_keys_and_values:
            if kv.key.model_name == BASELINE or not kv.value.HasField("multi_class_confusion_matrix_at_thresholds"):
                continue
            for entry in kv.value.multi_class_confusion_matrix_at_thresholds.matrices[0].entries:
                if 0 <= entry.actual_class_id < n and 0 <= entry.predicted_class_id < n:
                    matrix[entry.actual_class_id][entry.predicted_class_id] = int(entry.num_weighted_examples)
    return matrix


def overall_accuracy(evaluation_uri: str) -> Optional[float]:
    """The candidate's accuracy on the MNIST test rows (not per class, not a diff)."""
    for metrics in tfma.load_metrics(evaluation_uri):
        source, cls = _slice(metrics.slice_key)
        if cls is not None or not _mnist_test(source):
            continue
        for kv in metrics.metric_keys_and_values:
            key = kv.key
            if key.name == ACCURACY and not key.is_diff and key.model_name != BASELINE:
                return kv.value.double_value.value
    return None


def validation_failures(evaluation_uri: str) -> List[str]:
    """Plain-words reasons for a NOT_BLESSED decision, from TFMA's validation result."""
    result = tfma.load_validation_result(evaluation_uri)
    reasons = []
    for per_slice in result.metric_validations_per_slice:
        where = _slice_name(per_slice.slice_key)
        for f in per_slice.failures:
            kind = "change against the baseline" if f.metric_key.is_diff else "value"
            value = f.metric_value.double_value.value
            threshold = json_format.MessageToDict(f.metric_threshold)
            reasons.append(f"{f.metric_key.name} {kind} {value:.4f} ({where}) fails {threshold} {f.message}".strip())
    return reasons


def thresholds(evaluation_uri: str) -> Dict[str, Optional[float]]:
    """The blessing thresholds of the EvalConfig the Evaluator ran with (pipeline/blessing.py);
    fresh_min_gain is None when the run had no fresh rows to beat the baseline on."""
    from tensorflow_model_analysis.writers import eval_config_writer

    eval_config = eval_config_writer.load_eval_run(evaluation_uri)[0]
    found = {"min_accuracy": None, "max_accuracy_drop": None, "fresh_min_gain": None}
    for spec in eval_config.metrics_specs:
        for metric in spec.metrics:
            for per_slice in metric.per_slice_thresholds:
                sources = {s.feature_values.get(features.SOURCE_KEY) for s in per_slice.slicing_specs}
                threshold = per_slice.threshold
                if not any(_mnist_test(source) for source in sources):
                    if threshold.change_threshold.HasField("absolute"):
                        found["fresh_min_gain"] = threshold.change_threshold.absolute.value
                    continue
                if threshold.value_threshold.HasField("lower_bound"):
                    found["min_accuracy"] = threshold.value_threshold.lower_bound.value
                if threshold.change_threshold.HasField("absolute"):
                    found["max_accuracy_drop"] = -threshold.change_threshold.absolute.value
    return found
