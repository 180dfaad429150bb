"""Reads one pipeline run back from ML Metadata: what ran, how long, blessed or not, what was pushed."""

import json
import os
from typing import Any, Dict, List

import tensorflow as tf
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from components.release import formats, metrics
from modules.push_layout import RELEASE_FILE
from pipeline import metadata as metadata_lib

STATE_NAMES = {v: k for k, v in metadata_store_pb2.Execution.State.items()}


def read_only_store(metadata) -> metadata_store.MetadataStore:
    """The ML Metadata store of a run: a sqlite file (opened read-only) or a ConnectionConfig
    (a MySQL-compatible server, pipeline/metadata.py)."""
    if isinstance(metadata, metadata_store_pb2.ConnectionConfig):
        return metadata_lib.open_store(metadata)
    if not os.path.exists(metadata):
        raise FileNotFoundError(f"no ML Metadata at {metadata}: run the pipeline first")
    return metadata_store.MetadataStore(metadata_lib.sqlite_config(metadata, read_only=True))


def node_id(store, execution_id: int) -> str:
    for ctx in store.get_contexts_by_execution(execution_id):
        if store.get_context_types_by_id([ctx.type_id])[0].name == "node":
            return ctx.name.split(".", 1)[-1]  # node contexts are named "<pipeline>.<node id>"
    return "?"


def _outputs(store, execution_id: int) -> List[metadata_store_pb2.Artifact]:
    events = store.get_events_by_execution_ids([execution_id])
    ids = [e.artifact_id for e in events if e.type == metadata_store_pb2.Event.OUTPUT]
    return store.get_artifacts_by_id(ids)


def _custom(artifact, key: str):
    if key not in artifact.custom_properties:
        return None
    value = artifact.custom_properties[key]
    return getattr(value, value.WhichOneof("value"))


def latest_run_context(store, pipeline_name: str):
    """The newest pipeline_run context holding an execution of this pipeline."""
    pipeline_ctx = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline_ctx is None:
        raise LookupError(f"no pipeline {pipeline_name!r} in this metadata store")
    pipeline_execs = {e.id for e in store.get_executions_by_context(pipeline_ctx.id)}
    runs = [
        c
        for c in store.get_contexts_by_type("pipeline_run")
        if any(e.id in pipeline_execs for e in store.get_executions_by_context(c.id))
    ]
    if not runs:
        raise LookupError(f"pipeline {pipeline_name!r} has no runs yet")
    return max(runs, key=lambda c: (c.create_time_since_epoch, c.id))


def state_name(execution) -> str:
    return STATE_NAMES.get(execution.last_known_state, "UNKNOWN")


def summarize(metadata, pipeline_name: str) -> Dict[str, Any]:
    store = read_only_store(metadata)
    run = latest_run_context(store, pipeline_name)
    components: Dict[str, Dict[str, Any]] = {}
    summary: Dict[str, Any] = {
        "pipeline_name": pipeline_name,
        "run_id": run.name,
        "components": components,
        "span": None,
        "blessed": None,
        "test_accuracy": None,
        "pushed": False,
        "pushed_model_dir": None,
        "pushed_version": None,
        "artifacts": {},
    }
    for execution in sorted(store.get_executions_by_context(run.id), key=lambda e: e.id):
        node = node_id(store, execution.id)
        components[node] = {
            "state": state_name(execution),
            "wall_seconds": round(
                (execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000.0, 1
            ),
        }
        for artifact in _outputs(store, execution.id):
            type_name = store.get_artifact_types_by_id([artifact.type_id])[0].name
            summary["artifacts"][f"{node}.{type_name}"] = artifact.uri
            if type_name == "Examples" and node.endswith("ExampleGen"):
                summary["span"] = _custom(artifact, "span")
            elif type_name == "HyperParameters":
                with tf.io.gfile.GFile(os.path.join(artifact.uri, "best_hyperparameters.txt")) as f:
                    summary["tuned_hparams"] = json.loads(f.read())["values"]
            elif type_name == "ModelEvaluation":
                summary["test_accuracy"] = metrics.overall_accuracy(artifact.uri)
                summary["validation_failures"] = metrics.validation_failures(artifact.uri)
            elif type_name == "ModelBlessing":
                summary["blessed"] = bool(_custom(artifact, "blessed"))
            elif type_name == "PushedModel":
                summary["pushed"] = bool(_custom(artifact, "pushed"))
                if summary["pushed"]:
                    summary["pushed_model_dir"] = _custom(artifact, "pushed_destination")
                    summary["pushed_version"] = _custom(artifact, "pushed_version")
                released = os.path.join(artifact.uri, RELEASE_FILE)  # the release record travels with it
                if tf.io.gfile.exists(released):
                    with tf.io.gfile.GFile(released) as f:
                        shipped = json.load(f).get("formats")
                    if shipped:
                        summary["formats"] = formats.summary_line(shipped)
    return summary
