"""DataGate, a Python function component: anomalies or drift stop the run before Transform.

TFX's ExampleValidator only reports; wiring Transform after this gate makes a bad data drop
fail the run with every anomaly listed, so it can never train, be evaluated or be pushed.
The gate's output is the statistics it let through: the next run compares its span with them.
"""
import os

import tensorflow as tf
import tensorflow_data_validation as tfdv
from tensorflow_data_validation.utils import anomalies_util
from tfx import v1 as tfx
from tfx.types import artifact_utils
from tfx.types.standard_artifacts import ExampleAnomalies, ExampleStatistics, Schema

from components.data_gate import checks

STATS_FILE = "FeatureStats.pb"  # StatisticsGen's file name in each Split-<name> folder
ANOMALIES_FILE = "SchemaDiff.pb"  # ExampleValidator's
DRIFT_FILE = "drift_anomalies.pbtxt"
DRIFT_SPLIT = "train"  # the split compared with the previous span's


def _split_file(artifact, split: str, name: str) -> str:
    return os.path.join(artifact_utils.get_split_uri([artifact], split), name)


def _splits(artifact):
    return artifact_utils.decode_split_names(artifact.split_names)


@tfx.dsl.components.component
def DataGate(
    statistics: tfx.dsl.components.InputArtifact[ExampleStatistics],
    schema: tfx.dsl.components.InputArtifact[Schema],
    anomalies: tfx.dsl.components.InputArtifact[ExampleAnomalies],
    validated_statistics: tfx.dsl.components.OutputArtifact[ExampleStatistics],
    label_drift_threshold: tfx.dsl.components.Parameter[float],
    pixel_drift_threshold: tfx.dsl.components.Parameter[float],
    baseline_statistics: tfx.dsl.components.InputArtifact[ExampleStatistics] = None,
) -> None:
    problems = checks.schema_anomalies(
        {split: anomalies_util.load_anomalies_binary(_split_file(anomalies, split, ANOMALIES_FILE))
         for split in _splits(anomalies)})

    schema_proto = tfdv.load_schema_text(os.path.join(schema.uri, "schema.pbtxt"))
    current = tfdv.load_stats_binary(_split_file(statistics, DRIFT_SPLIT, STATS_FILE))
    previous = None
    if baseline_statistics is not None:
        previous = tfdv.load_stats_binary(_split_file(baseline_statistics, DRIFT_SPLIT, STATS_FILE))
    drift = checks.drift(current, previous, schema_proto, label_drift_threshold, pixel_drift_threshold)
    # Written before any failure, so the drift verdict can be read with tfdv.load_anomalies_text.
    tfdv.write_anomalies_text(drift, os.path.join(validated_statistics.uri, DRIFT_FILE))
    problems += checks.describe(drift, f"split '{DRIFT_SPLIT}' against the last validated span")
    if problems:
        raise checks.DataValidationError(
            "data validation failed; the run stops before Transform, Trainer and Pusher:\n  - "
            + "\n  - ".join(problems))

    validated_statistics.split_names = statistics.split_names
    for split in _splits(statistics):
        target = artifact_utils.get_split_uri([validated_statistics], split)
        tf.io.gfile.makedirs(target)
        tf.io.gfile.copy(_split_file(statistics, split, STATS_FILE), os.path.join(target, STATS_FILE), overwrite=True)
