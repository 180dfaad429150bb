"""Where TFX's standard components put their files inside an artifact's URI: the one home of these
names for the gate, the release, the run report, the benchmarks and the tests.

TFX fixes these layouts (tfx/types/artifact_utils.py, tfx/utils/path_utils.py); they are spelled
here once so that nothing else hard-codes them.
"""

import os

SPLIT_PREFIX = "Split-"  # each split of Examples, ExampleStatistics, ExampleAnomalies: <uri>/Split-<name>/
STATS_FILE = "FeatureStats.pb"  # StatisticsGen, in each split folder
ANOMALIES_FILE = "SchemaDiff.pb"  # ExampleValidator, in each split folder
SCHEMA_FILE = "schema.pbtxt"  # SchemaGen / ImportSchemaGen, at the artifact's root
SERVING_MODEL_DIR = "Format-Serving"  # Trainer: the SavedModel inside a Model artifact


def split_dir(uri: str, split: str) -> str:
    return os.path.join(uri, f"{SPLIT_PREFIX}{split}")


def split_name(split_dir_name: str) -> str:
    """'Split-train' -> 'train'."""
    return split_dir_name[len(SPLIT_PREFIX) :] if split_dir_name.startswith(SPLIT_PREFIX) else split_dir_name


def stats_path(statistics_uri: str, split: str) -> str:
    return os.path.join(split_dir(statistics_uri, split), STATS_FILE)


def anomalies_path(anomalies_uri: str, split: str) -> str:
    return os.path.join(split_dir(anomalies_uri, split), ANOMALIES_FILE)


def schema_path(schema_uri: str) -> str:
    return os.path.join(schema_uri, SCHEMA_FILE)


def serving_model_path(model_uri: str) -> str:
    return os.path.join(model_uri, SERVING_MODEL_DIR)
