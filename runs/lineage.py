"""What made a pushed version: its chain in ML Metadata, from the served model back to the raw span.

    python -m runs.lineage --version 1795329869            # reads outputs/metadata.sqlite
    python -m runs.lineage --version N --metadata PATH --json
    python -m runs.lineage --version N --metadata-mysql HOST:PORT/DB   # credentials: pipeline/metadata.py

Walks the events upstream from the PushedModel whose pushed_version is N: each producing
execution (component, state, parameters) and each artifact it read (type, URI, and what matters
for that type: span, blessing, accuracy, hyperparameters).
"""

import argparse
import json
import os
import sys
from typing import Any, Dict, List

from ml_metadata.proto import metadata_store_pb2

from components.release import metrics
from pipeline import configs, metadata
from runs import summary

_SHOWN_PROPERTIES = ("span", "version", "split_names", "blessed", "pushed", "pushed_version", "pushed_destination")
_SHOWN_PARAMETERS = (
    "custom_config",
    "train_args",
    "eval_args",
    "eval_config",
    "example_splits",
    "input_base",
    "splits_config",
    "label_drift_threshold",
    "pixel_drift_threshold",
    "schema_file",
)


def _value(value):
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def _describe_artifact(store, artifact) -> Dict[str, Any]:
    type_name = store.get_artifact_types_by_id([artifact.type_id])[0].name
    described = {"id": artifact.id, "type": type_name, "uri": artifact.uri}
    for key in _SHOWN_PROPERTIES:
        for props in (artifact.properties, artifact.custom_properties):
            if key in props:
                described[key] = _value(props[key])
    if type_name == "ModelEvaluation":
        described["test_accuracy"] = metrics.overall_accuracy(artifact.uri)
    return described


def _describe_execution(store, execution) -> Dict[str, Any]:
    parameters = {}
    for key in _SHOWN_PARAMETERS:
        if key in execution.custom_properties:
            raw = _value(execution.custom_properties[key])
            try:
                parameters[key] = json.loads(raw) if isinstance(raw, str) else raw
            except ValueError:
                parameters[key] = raw
    return {
        "id": execution.id,
        "component": summary.node_id(store, execution.id),
        "state": summary.state_name(execution),
        "parameters": parameters,
    }


def pushed_artifact(store, version: int):
    for artifact in store.get_artifacts_by_type("PushedModel"):
        props = artifact.custom_properties
        if (
            "pushed_version" in props
            and _value(props["pushed_version"]) == str(version)
            and _value(props.get("pushed", metadata_store_pb2.Value())) == 1
        ):
            return artifact
    known = sorted(
        _value(a.custom_properties["pushed_version"])
        for a in store.get_artifacts_by_type("PushedModel")
        if "pushed_version" in a.custom_properties
    )
    raise LookupError(f"no pushed version {version} in this metadata store; pushed versions: {known or 'none'}")


def _event_key(event) -> str:
    """The component's input or output name the event went through (e.g. model, baseline_model)."""
    return event.path.steps[0].key if event.path.steps else "?"


def lineage(store, version: int) -> List[Dict[str, Any]]:
    """Executions from the Pusher upstream (breadth first), each with the artifacts it read and wrote.

    An artifact reused from cache has several producing executions (the one that made it and
    each CACHED one after); the chain follows the one that made it."""
    chain, seen, frontier = [], set(), [pushed_artifact(store, version).id]
    while frontier:
        makers = {}
        for event in store.get_events_by_artifact_ids(frontier):
            if event.type == metadata_store_pb2.Event.OUTPUT:
                makers[event.artifact_id] = min(makers.get(event.artifact_id, event.execution_id), event.execution_id)
        producers = sorted(set(makers.values()) - seen)
        seen.update(producers)
        frontier = []
        for execution in store.get_executions_by_id(producers):
            entry = _describe_execution(store, execution)
            events = store.get_events_by_execution_ids([execution.id])
            for direction, kind in (
                ("inputs", metadata_store_pb2.Event.INPUT),
                ("outputs", metadata_store_pb2.Event.OUTPUT),
            ):
                selected = [e for e in events if e.type == kind]
                artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in selected])}
                entry[direction] = [
                    {"key": _event_key(e), **_describe_artifact(store, artifacts[e.artifact_id])} for e in selected
                ]
            chain.append(entry)
            frontier += [a["id"] for a in entry["inputs"]]
    return chain


def format_chain(version: int, chain: List[Dict[str, Any]]) -> str:
    lines = [f"pushed version {version} was made by:"]
    for entry in chain:
        lines.append(f"\n{entry['component']} (execution {entry['id']}, {entry['state']})")
        for key, value in entry["parameters"].items():
            lines.append(f"    {key}: {json.dumps(value)[:300]}")
        for direction in ("inputs", "outputs"):
            for artifact in entry[direction]:
                extras = ", ".join(f"{k}={v}" for k, v in artifact.items() if k not in ("id", "type", "uri", "key"))
                arrow = "<-" if direction == "inputs" else "->"
                lines.append(
                    f"  {arrow} {artifact['key']}: {artifact['type']} #{artifact['id']} {artifact['uri']}"
                    + (f" ({extras})" if extras else "")
                )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", type=int, required=True, help="the pushed version (its directory name)")
    p.add_argument("--metadata", default=os.path.join(configs.OUTPUT_ROOT, configs.METADATA_FILE))
    metadata.add_mysql_argument(p, "--metadata")
    p.add_argument("--json", action="store_true", help="print the chain as JSON")
    args = p.parse_args(argv)
    try:
        store = summary.read_only_store(
            metadata.mysql_config(args.metadata_mysql) if args.metadata_mysql else args.metadata
        )
    except FileNotFoundError as e:
        raise SystemExit(f"{e} or pass --metadata") from e
    except (ValueError, metadata.MetadataUnavailable) as e:
        raise SystemExit(str(e)) from e
    try:
        chain = lineage(store, args.version)
    except LookupError as e:
        raise SystemExit(str(e)) from e
    print(json.dumps(chain, indent=2, default=str) if args.json else format_chain(args.version, chain))
    return 0


if __name__ == "__main__":
    sys.exit(main())
