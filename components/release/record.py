"""The release record of a blessed model: what release.json holds and the model card shows.

Built from plain values (artifact URIs, the chosen version), so it can be tested without TFX.
"""

import json
import os
import time
from typing import Any, Dict, Iterable, Optional

from components.release import formats, inputs, metrics, model_card
from modules import export
from modules.push_layout import CARD_FILE, RELEASE_FILE


def build(
    *,
    model_name: str,
    version: int,
    saved_model_dir: str,
    model_uri: str,
    evaluation_uri: str,
    blessing_uri: str,
    examples_uri: str,
    span: Optional[int],
    statistics_uri: str,
    splits: Iterable[str],
    schema_uri: str,
    formats_record: Dict[str, Any],
    confidence_record: Optional[Dict[str, Any]] = None,
    robustness_record: Optional[Dict[str, Any]] = None,
    adversarial_record: Optional[Dict[str, Any]] = None,
    explanations_record: Optional[Dict[str, Any]] = None,
    now: Optional[float] = None,
) -> Dict[str, Any]:
    training = export.read_training_record(saved_model_dir)
    return {
        "model_name": model_name,
        "version": version,
        "pushed_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now)),
        "data": {"span": span, "uri": examples_uri, "split_counts": inputs.split_counts(statistics_uri, splits)},
        "schema": inputs.describe_schema(schema_uri),
        "training": {**training, "epochs_run": len(training.get("history", {}).get("epoch_seconds", [])) or "?"},
        # (epsilon, delta) of a DP-SGD run (modules/privacy.py), or "not private".
        "privacy": training.get("privacy") or "not private",
        "metrics": metrics.read(evaluation_uri),
        # Every format beside the SavedModel: size, test accuracy, latency, or why it is missing.
        "formats": formats_record,
        # With the temperature the Trainer fitted, and the eval split's error before and after it.
        "confidence": {**confidence_record, "calibration": training.get("calibration")} if confidence_record else None,
        # Each handwriting family at its middle strength, with the replaced version's accuracy.
        "robustness": robustness_record,
        # FGSM and PGD at each L-infinity budget, with the replaced version's accuracy.
        "adversarial": adversarial_record,
        # The most confident mistakes and each class's mean attribution map (explanations.png).
        "explanations": explanations_record,
        "saved_model_size_bytes": inputs.dir_bytes(saved_model_dir),
        "thresholds": metrics.thresholds(evaluation_uri),
        "lineage": {"model": model_uri, "evaluation": evaluation_uri, "blessing": blessing_uri},
    }


def summary_line(record: Dict[str, Any], destination: str) -> str:
    accuracy = record["metrics"]["candidate"]["overall"].get(metrics.ACCURACY)
    return (
        f"released version {record['version']} to {destination}: accuracy {accuracy:.4f}\n"
        f"{formats.summary_line(record['formats'])}"
    )


def card_files(record: Dict[str, Any], directory: str) -> Dict[str, str]:
    """Writes model_card.md and release.json into directory; returns {name in the version dir: path}."""
    paths = {CARD_FILE: os.path.join(directory, CARD_FILE), RELEASE_FILE: os.path.join(directory, RELEASE_FILE)}
    with open(paths[CARD_FILE], "w") as f:
        f.write(model_card.render(record))
    with open(paths[RELEASE_FILE], "w") as f:
        json.dump(record, f, indent=2, default=str)
    return paths
