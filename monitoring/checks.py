"""The monitor's checks, as plain functions over arrays and TFDV statistics (no files, no servers).

Each returns a `Check`: the measured value, the bound, and whether it is flagged; a check that
cannot be judged (too few rows, no labels, no previous window) says why and is not flagged.
"""

import math
from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np
import pyarrow as pa
import tensorflow_data_validation as tfdv
from tensorflow_data_validation.statistics import stats_impl
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from modules import calibration, features

SERVING_ENVIRONMENT = "SERVING"  # the schema's environment without the label
_WILSON_Z = 1.645  # one-sided 95%


@dataclass
class Check:
    name: str
    value: Optional[float]
    bound: Optional[float]
    flagged: bool
    detail: str

    def as_dict(self) -> dict:
        return asdict(self)


def statistics(images: np.ndarray, schema: schema_pb2.Schema) -> statistics_pb2.DatasetFeatureStatisticsList:
    """TFDV statistics of served images ([n, 28, 28] uint8) in the schema's SERVING environment:
    the same feature (`image`, 784 int64 pixels) ExampleGen writes, so they compare with training's."""
    pixels = np.asarray(images, np.int64).reshape(len(images), features.NUM_PIXELS)
    column = pa.array(list(pixels), type=pa.list_(pa.int64()))
    batch = pa.RecordBatch.from_arrays([column], [features.IMAGE_KEY])
    return stats_impl.generate_statistics_in_memory(batch, tfdv.StatsOptions(schema=schema))


def schema_anomalies(served: statistics_pb2.DatasetFeatureStatisticsList, schema: schema_pb2.Schema) -> Check:
    """The served inputs against the schema's SERVING environment (shape, range, presence)."""
    anomalies = tfdv.validate_statistics(served, schema, environment=SERVING_ENVIRONMENT)
    lines = [f"feature '{name}': {info.description}" for name, info in sorted(anomalies.anomaly_info.items())]
    return Check("schema", float(len(lines)), 0.0, bool(lines), "; ".join(lines) or "no anomalies")


def _pixel_jsd_schema(schema: schema_pb2.Schema, threshold: float, kind: str) -> schema_pb2.Schema:
    copy = schema_pb2.Schema()
    copy.CopyFrom(schema)
    comparator = getattr(tfdv.get_feature(copy, features.IMAGE_KEY), kind)
    comparator.jensen_shannon_divergence.threshold = threshold
    return copy


def _jsd(anomalies, kind: str) -> float:
    for info in anomalies.drift_skew_info:
        if info.path.step[0] == features.IMAGE_KEY:
            for measurement in getattr(info, kind):
                return float(measurement.value)
    raise ValueError(f"TFDV reported no {kind} for '{features.IMAGE_KEY}'")


def pixel_skew(
    served: statistics_pb2.DatasetFeatureStatisticsList,
    training: statistics_pb2.DatasetFeatureStatisticsList,
    schema: schema_pb2.Schema,
    threshold: float,
) -> Check:
    """Jensen-Shannon divergence of the served pixel-intensity histogram from training's."""
    anomalies = tfdv.validate_statistics(
        training, _pixel_jsd_schema(schema, threshold, "skew_comparator"), serving_statistics=served
    )
    value = _jsd(anomalies, "skew_measurements")
    return Check("pixel_skew", value, threshold, value > threshold, "served pixels against the training span's")


def pixel_drift(
    served: statistics_pb2.DatasetFeatureStatisticsList,
    previous: Optional[statistics_pb2.DatasetFeatureStatisticsList],
    schema: schema_pb2.Schema,
    threshold: float,
) -> Check:
    """Jensen-Shannon divergence of this window's pixel histogram from the previous window's."""
    if previous is None:
        return Check("pixel_drift", None, threshold, False, "no previous window to compare with")
    anomalies = tfdv.validate_statistics(
        served,
        _pixel_jsd_schema(schema, threshold, "drift_comparator"),
        previous_statistics=previous,
        environment=SERVING_ENVIRONMENT,
    )
    value = _jsd(anomalies, "drift_measurements")
    return Check("pixel_drift", value, threshold, value > threshold, "this window's pixels against the previous one's")


def class_mix(probabilities: np.ndarray) -> np.ndarray:
    """The share of each predicted class."""
    predicted = np.asarray(probabilities).argmax(axis=1)
    return np.bincount(predicted, minlength=features.NUM_CLASSES) / max(len(predicted), 1)


def class_mix_shift(probabilities: np.ndarray, test_mix: np.ndarray, threshold: float) -> Check:
    """L-infinity distance of the predicted-class mix from the test split's label mix."""
    value = float(np.max(np.abs(class_mix(probabilities) - test_mix)))
    return Check("class_mix", value, threshold, value > threshold, "predicted classes against the test split's labels")


def low_confidence(probabilities: np.ndarray, bound: float, max_rate: float) -> Check:
    rate = calibration.low_confidence_rate(probabilities, bound)
    return Check(
        "low_confidence", rate, max_rate, rate > max_rate, f"share of predictions with top probability under {bound}"
    )


def wilson_upper(correct: int, total: int, z: float = _WILSON_Z) -> float:
    """The upper end of the Wilson score interval of a proportion."""
    p = correct / total
    centre = p + z * z / (2 * total)
    spread = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    return min(1.0, (centre + spread) / (1 + z * z / total))


def online_accuracy(
    probabilities: np.ndarray, labels: np.ndarray, test_accuracy: Optional[float], max_drop: float, min_labelled: int
) -> Check:
    """Accuracy of what was served on the rows that came back labelled, against the served version's
    test accuracy: flagged when even its upper confidence bound is more than max_drop below it."""
    n = len(labels)
    if test_accuracy is None:
        return Check("online_accuracy", None, None, False, "the served version's test accuracy is unknown")
    bound = test_accuracy - max_drop
    if n < min_labelled:
        return Check("online_accuracy", None, bound, False, f"{n} labelled rows; {min_labelled} needed to judge")
    correct = int(np.sum(np.asarray(probabilities).argmax(axis=1) == labels))
    upper = wilson_upper(correct, n)
    return Check(
        "online_accuracy",
        correct / n,
        bound,
        upper < bound,
        f"{correct}/{n} labelled rows right (95% upper bound {upper:.4f}); test accuracy {test_accuracy:.4f}",
    )
