"""What the monitor compares served traffic with, found through ML Metadata lineage: for a pushed
version, the statistics of the data that trained it (skew) and of the test split (the class mix),
its test accuracy (online accuracy) and where it was pushed (the report explains its low-confidence
answers with the version's own explain signature)."""

import os
from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np
import tensorflow_data_validation as tfdv
from ml_metadata.metadata_store import metadata_store
from tensorflow_metadata.proto.v0 import statistics_pb2

from components import tfx_files
from modules import features
from runs import lineage, summary


@dataclass
class ServedModel:
    version: int
    statistics_uri: str  # the ExampleStatistics of the span that trained it
    train_statistics: statistics_pb2.DatasetFeatureStatisticsList
    test_class_mix: np.ndarray  # [10]: the share of each class in the test split
    test_accuracy: Optional[float]
    version_dir: Optional[str] = None  # the pushed version's folder, while it still exists


def class_mix(statistics: statistics_pb2.DatasetFeatureStatisticsList) -> np.ndarray:
    """The share of each class of the label feature (categorical: TFDV's top values)."""
    counts = np.zeros(features.NUM_CLASSES)
    for feature in statistics.datasets[0].features:
        if feature.path.step[0] == features.LABEL_KEY:
            for value in feature.string_stats.top_values:
                counts[int(value.value)] = value.frequency
    if not counts.sum():
        raise ValueError("the statistics hold no label counts")
    return counts / counts.sum()


def lookup(store, version: int) -> ServedModel:
    """LookupError when the open ML Metadata store knows no pushed version `version` (or nothing
    that trained it)."""
    chain = lineage.lineage(store, version)
    artifacts = [a for entry in chain for direction in ("inputs", "outputs") for a in entry[direction]]
    statistics = [a for a in artifacts if a["type"] == "ExampleStatistics"]
    if not statistics:
        raise LookupError(f"version {version}: no ExampleStatistics upstream of it in ML Metadata")
    accuracies = [a["test_accuracy"] for a in artifacts if a["type"] == "ModelEvaluation" and a.get("test_accuracy")]
    uri = min(statistics, key=lambda a: a["id"])["uri"]  # the StatisticsGen's own (the DataGate copies it)
    pushed = lineage.pushed_artifact(store, version).custom_properties.get("pushed_destination")
    version_dir = pushed.string_value if pushed is not None else None
    return ServedModel(
        version=version,
        statistics_uri=uri,
        train_statistics=tfdv.load_stats_binary(tfx_files.stats_path(uri, features.TRAIN_SPLIT)),
        test_class_mix=class_mix(tfdv.load_stats_binary(tfx_files.stats_path(uri, features.TEST_SPLIT))),
        test_accuracy=float(accuracies[0]) if accuracies else None,
        version_dir=version_dir if version_dir and os.path.isdir(version_dir) else None,
    )


def lookup_all(metadata, versions) -> "tuple[Dict[int, ServedModel], Dict[int, str]]":
    """({version: ServedModel}, {version: why it is unknown}) for each version in the logs.
    metadata: an open store (the command opens it once, up front), or a sqlite path or a
    ConnectionConfig, opened here once for all the versions."""
    wanted = sorted(set(int(v) for v in versions))
    try:
        store = metadata if isinstance(metadata, metadata_store.MetadataStore) else summary.read_only_store(metadata)
    except FileNotFoundError as e:  # no sqlite file: every version is unknown, for that reason
        return {}, {version: str(e) for version in wanted}
    found, unknown = {}, {}
    for version in wanted:
        try:
            found[version] = lookup(store, version)
        except (LookupError, FileNotFoundError) as e:
            unknown[version] = str(e)
    return found, unknown
