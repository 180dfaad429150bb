"""DataGate, a Python function component: anomalies or drift stop the run before Transform.

TFX's ExampleValidator only reports; wiring Transform after this gate makes a bad data drop
fail the run with every anomaly listed, so it can never train, be evaluated or be pushed.

Drift is measured against the statistics of the last span that passed the gate, kept at
`baseline_uri` (a folder under the pipeline root). A plain folder rather than an ML Metadata
query works the same under every orchestrator (Kubeflow's compiler accepts only two resolver
strategies and neither can filter by producer) and can never hold a rejected span.
"""

import json
import os

import tensorflow as tf
import tensorflow_data_validation as tfdv
from tensorflow_data_validation.utils import anomalies_util
from tfx import v1 as tfx
from tfx.types import artifact_utils
from tfx.types.standard_artifacts import ExampleAnomalies, ExampleStatistics, Schema

from components import tfx_files
from components.data_gate import checks
from modules.features import TRAIN_SPLIT

DRIFT_FILE = "drift_anomalies.pbtxt"
SOURCE_FILE = "source.json"  # which statistics artifact the baseline was copied from
DRIFT_SPLIT = TRAIN_SPLIT  # the split compared with the previous span's


def load_baseline(baseline_uri: str):
    path = os.path.join(baseline_uri, tfx_files.STATS_FILE)
    return tfdv.load_stats_binary(path) if tf.io.gfile.exists(path) else None


def save_baseline(baseline_uri: str, stats_path: str, source: dict) -> None:
    """Replaces the baseline by renaming a complete copy over it: a reader never sees half a file."""
    tf.io.gfile.makedirs(baseline_uri)
    for name, write in (
        (tfx_files.STATS_FILE, lambda tmp: tf.io.gfile.copy(stats_path, tmp, overwrite=True)),
        (SOURCE_FILE, lambda tmp: tf.io.gfile.GFile(tmp, "w").write(json.dumps(source))),
    ):
        tmp = os.path.join(baseline_uri, f".{name}.tmp")
        write(tmp)
        tf.io.gfile.rename(tmp, os.path.join(baseline_uri, name), overwrite=True)


@tfx.dsl.components.component
def DataGate(
    statistics: tfx.dsl.components.InputArtifact[ExampleStatistics],
    schema: tfx.dsl.components.InputArtifact[Schema],
    anomalies: tfx.dsl.components.InputArtifact[ExampleAnomalies],
    validated_statistics: tfx.dsl.components.OutputArtifact[ExampleStatistics],
    baseline_uri: tfx.dsl.components.Parameter[str],
    label_drift_threshold: tfx.dsl.components.Parameter[float],
    pixel_drift_threshold: tfx.dsl.components.Parameter[float],
) -> None:
    problems = checks.schema_anomalies(
        {
            split: anomalies_util.load_anomalies_binary(tfx_files.anomalies_path(anomalies.uri, split))
            for split in artifact_utils.decode_split_names(anomalies.split_names)
        }
    )

    schema_proto = tfdv.load_schema_text(tfx_files.schema_path(schema.uri))
    current_path = tfx_files.stats_path(statistics.uri, DRIFT_SPLIT)
    drift = checks.drift(
        tfdv.load_stats_binary(current_path),
        load_baseline(baseline_uri),
        schema_proto,
        label_drift_threshold,
        pixel_drift_threshold,
    )
    problems += checks.describe(drift, f"split '{DRIFT_SPLIT}' against the last validated span")
    if problems:
        raise checks.DataValidationError(
            "data validation failed; the run stops before Transform, Trainer and Pusher:\n  - "
            + "\n  - ".join(problems)
        )

    # Local orchestration creates output folders; the Kubeflow entrypoint does not (found running it).
    tf.io.gfile.makedirs(validated_statistics.uri)
    tfdv.write_anomalies_text(drift, os.path.join(validated_statistics.uri, DRIFT_FILE))
    validated_statistics.split_names = statistics.split_names
    for split in artifact_utils.decode_split_names(statistics.split_names):
        target = tfx_files.stats_path(validated_statistics.uri, split)
        tf.io.gfile.makedirs(os.path.dirname(target))
        tf.io.gfile.copy(tfx_files.stats_path(statistics.uri, split), target, overwrite=True)
    save_baseline(baseline_uri, current_path, {"statistics_uri": statistics.uri, "split": DRIFT_SPLIT})
