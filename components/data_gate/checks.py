"""Plain checks behind DataGate (TFDV only, no tfx): schema anomalies and drift, in plain words."""

from typing import Dict, List, Optional

import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

from modules import features


class DataValidationError(RuntimeError):
    """The data broke the schema or drifted: nothing downstream of the gate may run."""


def describe(anomalies: anomalies_pb2.Anomalies, where: str) -> List[str]:
    """One line per anomalous feature: where, which feature, what TFDV found."""
    lines = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        detail = "; ".join(r.description for r in info.reason) or info.description
        lines.append(f"{where}, feature '{feature}': {info.short_description} ({detail})")
    if anomalies.HasField("dataset_anomaly_info"):
        info = anomalies.dataset_anomaly_info
        lines.append(f"{where}: {info.short_description} ({info.description})")
    return lines


def schema_anomalies(anomalies_by_split: Dict[str, anomalies_pb2.Anomalies]) -> List[str]:
    return [line for split, a in sorted(anomalies_by_split.items()) for line in describe(a, f"split '{split}'")]


def drift_schema(schema: schema_pb2.Schema, label_linf: float, pixel_jsd: float) -> schema_pb2.Schema:
    """A copy of schema with the drift comparators: L-infinity on the label distribution,
    Jensen-Shannon divergence on the pixel-intensity histogram."""
    with_drift = schema_pb2.Schema()
    with_drift.CopyFrom(schema)
    tfdv.get_feature(with_drift, features.LABEL_KEY).drift_comparator.infinity_norm.threshold = label_linf
    tfdv.get_feature(with_drift, features.IMAGE_KEY).drift_comparator.jensen_shannon_divergence.threshold = pixel_jsd
    return with_drift


def drift(
    current: statistics_pb2.DatasetFeatureStatisticsList,
    previous: Optional[statistics_pb2.DatasetFeatureStatisticsList],
    schema: schema_pb2.Schema,
    label_linf: float,
    pixel_jsd: float,
) -> anomalies_pb2.Anomalies:
    """Drift anomalies of current against previous (empty when there is no previous span yet)."""
    result = anomalies_pb2.Anomalies()
    if previous is None:
        return result
    validated = tfdv.validate_statistics(
        current, drift_schema(schema, label_linf, pixel_jsd), previous_statistics=previous
    )
    result.CopyFrom(validated)
    # Keep only what the comparators found; plain schema anomalies are ExampleValidator's job.
    for feature in list(result.anomaly_info):
        reasons = [
            r
            for r in result.anomaly_info[feature].reason
            if "COMPARATOR" in anomalies_pb2.AnomalyInfo.Type.Name(r.type)
        ]
        if reasons:
            del result.anomaly_info[feature].reason[:]
            result.anomaly_info[feature].reason.extend(reasons)
        else:
            del result.anomaly_info[feature]
    result.ClearField("dataset_anomaly_info")
    return result
