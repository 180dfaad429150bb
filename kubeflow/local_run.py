"""Runs a whole compiled pipeline.yaml on this machine, every container task through its own command.

    python -m kubeflow.local_run pipeline.yaml --root /tmp/kfp-local \
        --param trainer_custom_config='{"hparams": {"epochs": 2}}'

A KFP v2 backend runs a PipelineSpec; with no cluster here, this does its part by hand and
says what it emulates:
- order: tasks run one at a time in the topological order of their dependencies (KFP starts
  independent tasks in parallel; the result is the same);
- container tasks: `local_task` builds the ExecutorInput, runs the driver, then the task's own
  `command + args` (the image's python is this interpreter, its code this checkout);
- ML Metadata: KFP records every output artifact in its own metadata store; here each is a
  line of `<root>/artifacts.jsonl` (name, type, uri, metadata);
- resolver tasks (LatestBlessedModelResolver): KFP answers their `outputArtifactQueries`
  itself, with no container, by filtering its metadata; here the same filters are applied to
  artifacts.jsonl and the newest match wins (the filter language is only as much as TFX
  writes: `key=value` clauses joined by AND, with `{{$.inputs...}}` placeholders);
- caching: KFP reuses an earlier execution's outputs when the task's fingerprint (its container,
  its parameter values after the driver, the names of its input artifacts) matches; the same
  here, across runs under one root, for tasks compiled with caching on.
Pipeline parameters (`--param`) are the spec's root parameters, as a KFP run takes them.
"""

import argparse
import hashlib
import json
import os
import re
import sys
import time
from typing import Any, Dict, List, Optional

import yaml

from kubeflow import local_task

_PLACEHOLDER = re.compile(r"\{\{\$\.inputs\.artifacts\['([^']+)'\]\.metadata\['([^']+)'\]\}\}")


def topological_order(spec) -> List[str]:
    tasks = spec["root"]["dag"]["tasks"]

    def upstream(name):
        deps = set(tasks[name].get("dependentTasks", []))
        for source in tasks[name].get("inputs", {}).get("artifacts", {}).values():
            if "taskOutputArtifact" in source:
                deps.add(source["taskOutputArtifact"]["producerTask"])
        return deps

    order, done = [], set()
    while len(order) < len(tasks):
        ready = sorted(n for n in tasks if n not in done and upstream(n) <= done)
        if not ready:
            raise ValueError(f"the DAG has a cycle among {sorted(set(tasks) - done)}")
        order.extend(ready)
        done.update(ready)
    return order


class ArtifactStore:
    """What the backend's ML Metadata holds for this emulation: every artifact and cached execution."""

    def __init__(self, root: str):
        self.artifacts_path = os.path.join(root, "artifacts.jsonl")
        self.cache_path = os.path.join(root, "cache.json")
        os.makedirs(root, exist_ok=True)

    def artifacts(self) -> List[Dict[str, Any]]:
        if not os.path.exists(self.artifacts_path):
            return []
        with open(self.artifacts_path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def record(self, artifacts: Dict[str, Dict[str, Any]]) -> None:
        with open(self.artifacts_path, "a") as f:
            for artifact in artifacts.values():
                f.write(json.dumps(artifact) + "\n")

    def _cache(self) -> Dict[str, Any]:
        if not os.path.exists(self.cache_path):
            return {}
        with open(self.cache_path) as f:
            return json.load(f)

    def cached(self, key: str) -> Optional[Dict[str, Any]]:
        return self._cache().get(key)

    def remember(self, key: str, outputs: Dict[str, Any]) -> None:
        cache = self._cache()
        cache[key] = outputs
        tmp = self.cache_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(cache, f)
        os.replace(tmp, self.cache_path)


def schema_title(artifact: Dict[str, Any]) -> str:
    artifact_type = artifact.get("type", {})
    if "schemaTitle" in artifact_type:
        return artifact_type["schemaTitle"]
    return yaml.safe_load(artifact_type.get("instanceSchema", "{}") or "{}").get("title", "")


def _clause_matches(artifact: Dict[str, Any], key: str, value: str) -> bool:
    wanted = json.loads(value) if value.startswith('"') else float(value) if value[0].isdigit() else value
    if key == "schema_title":
        return schema_title(artifact) == wanted
    if key == "state":
        return wanted == "LIVE"  # nothing here is ever marked deleted
    if key == "name":
        return artifact["name"] == wanted
    match = re.fullmatch(r"metadata\.([^.]+)\.(number_value|string_value|bool_value)", key)
    if not match:
        raise ValueError(f"a resolver filter clause this emulation does not know: {key}={value}")
    have = artifact.get("metadata", {}).get(match.group(1))
    if match.group(2) == "number_value":
        return isinstance(have, (int, float)) and float(have) == float(wanted)
    return have == wanted


def resolve(query: str, inputs: Dict[str, Dict[str, Any]], artifacts: List[Dict[str, Any]]) -> Optional[dict]:
    """The newest artifact matching a KFP artifact filter; None when a placeholder has no input."""

    def substitute(match):
        artifact = inputs.get(match.group(1))
        if artifact is None or match.group(2) not in artifact.get("metadata", {}):
            raise LookupError
        return str(artifact["metadata"][match.group(2)])

    try:
        query = _PLACEHOLDER.sub(substitute, query)
    except LookupError:
        return None
    clauses = [c.strip().split("=", 1) for c in query.split(" AND ")]
    found = [a for a in artifacts if all(_clause_matches(a, k.strip(), v.strip()) for k, v in clauses)]
    return found[-1] if found else None


def _fingerprint(container, invocation) -> str:
    key = {
        "container": container,
        "parameters": invocation["inputs"]["parameterValues"],
        "inputs": {k: [a["name"] for a in v["artifacts"]] for k, v in invocation["inputs"]["artifacts"].items()},
        "outputs": sorted(invocation["outputs"]["artifacts"]),
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _task_parameters(spec, task: str, params: Dict[str, Any]) -> Dict[str, Any]:
    """The run's pipeline parameters, as the task's inputs name them."""
    sources = spec["root"]["dag"]["tasks"][task].get("inputs", {}).get("parameters", {})
    return {
        name: params[source["componentInputParameter"]]
        for name, source in sources.items()
        if source.get("componentInputParameter") in params
    }


def run(spec, root: str, run_id: str, params: Optional[Dict[str, Any]] = None, env=None, log=print) -> Dict[str, Any]:
    """Runs every task; returns {task: {"state": EXECUTED|CACHED|RESOLVED|NONE, "outputs": {...}}}."""
    unknown = set(params or {}) - set(spec["root"].get("inputDefinitions", {}).get("parameters", {}))
    if unknown:
        raise ValueError(f"the pipeline has no parameter {', '.join(sorted(unknown))}")
    store = ArtifactStore(root)
    task_root = os.path.join(root, run_id)
    tasks = spec["root"]["dag"]["tasks"]
    results: Dict[str, Dict[str, Any]] = {}
    for task in topological_order(spec):
        inputs = {}
        for name, source in tasks[task].get("inputs", {}).get("artifacts", {}).items():
            producer = source["taskOutputArtifact"]
            artifact = results[producer["producerTask"]]["outputs"].get(producer["outputArtifactKey"])
            if artifact is not None:  # an optional input a resolver left empty is not passed
                inputs[name] = artifact
        executor_label = spec["components"][tasks[task]["componentRef"]["name"]]["executorLabel"]
        executor = spec["deploymentSpec"]["executors"][executor_label]
        started = time.time()
        if "resolver" in executor:
            outputs = {}
            for name, query in executor["resolver"]["outputArtifactQueries"].items():
                found = resolve(query["filter"], inputs, store.artifacts())
                if found is not None:
                    outputs[name] = found
            results[task] = {"state": "RESOLVED" if outputs else "NONE", "outputs": outputs}
        elif "container" in executor:
            overrides = _task_parameters(spec, task, params or {})
            container, invocation = local_task.prepare(spec, task, task_root, inputs, overrides, env)
            key = _fingerprint(container, invocation)
            caching = tasks[task].get("cachingOptions", {}).get("enableCache", False)
            outputs = store.cached(key) if caching else None
            if outputs is not None:
                results[task] = {"state": "CACHED", "outputs": outputs}
            else:
                outputs = local_task.execute(container, invocation, env)
                store.record(outputs)
                if caching:
                    store.remember(key, outputs)
                results[task] = {"state": "EXECUTED", "outputs": outputs}
        else:
            raise ValueError(f"task {task}: an executor kind this emulation does not run: {sorted(executor)}")
        log(f"{task}: {results[task]['state']} ({time.time() - started:.0f} s)")
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec")
    p.add_argument("--root", required=True, help="local folder standing in for the pipeline root and KFP's metadata")
    p.add_argument("--run-id", default=None, help="default: UTC time")
    p.add_argument("--param", action="append", default=[], help="NAME=VALUE: a pipeline parameter")
    args = p.parse_args(argv)
    run_id = args.run_id or time.strftime("run-%Y%m%d-%H%M%S", time.gmtime())
    params = dict(kv.split("=", 1) for kv in args.param)
    try:
        results = run(local_task.load_spec(args.spec), args.root, run_id, params)
    except (RuntimeError, ValueError) as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    json.dump({t: r["state"] for t, r in results.items()}, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
