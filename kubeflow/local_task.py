"""Runs one task of a compiled pipeline.yaml on this machine, exactly as its container would.

    python -m kubeflow.local_task pipeline.yaml IdxExampleGen --root /tmp/task-root \
        --param input_base=/path/to/data/mnist

What a KFP v2 backend does for a task, done by hand: build the ExecutorInput (parameter values
from the spec, input artifacts from upstream ExecutorOutputs, output artifacts under a local
root), substitute it for the `{{$}}` placeholder in the task's own command + args, run the
pre-cache driver first when the spec has one (ExampleGen resolves its span there), and read the
ExecutorOutput the entrypoint writes. No cluster, no docker: the image's code is this checkout.
"""

import argparse
import json
import os
import subprocess
import sys
from typing import Any, Dict, Optional, Tuple

import yaml

PLACEHOLDER = "{{$}}"


def load_spec(path: str) -> Dict[str, Any]:
    with open(path) as f:
        return yaml.safe_load(f)


def _parameter_values(spec, task: str, overrides: Dict[str, Any]) -> Dict[str, Any]:
    values = {}
    root_defaults = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    for name, source in spec["root"]["dag"]["tasks"][task].get("inputs", {}).get("parameters", {}).items():
        if "runtimeValue" in source:
            values[name] = source["runtimeValue"]["constant"]
        elif "componentInputParameter" in source:  # a pipeline runtime parameter
            values[name] = root_defaults[source["componentInputParameter"]].get("defaultValue")
    values.update(overrides)
    return values


def executor_input(
    spec,
    task: str,
    task_root: str,
    inputs: Optional[Dict[str, dict]] = None,
    overrides: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """The ExecutorInput JSON for task; inputs maps input names to upstream runtime artifacts."""
    component = spec["components"][spec["root"]["dag"]["tasks"][task]["componentRef"]["name"]]
    outputs = {}
    for name, definition in component.get("outputDefinitions", {}).get("artifacts", {}).items():
        outputs[name] = {
            "artifacts": [
                {
                    # Unique as KFP's metadata names are: a downstream blessing refers to it by name.
                    "name": os.path.join(task_root, task, name),
                    "type": definition["artifactType"],
                    "uri": os.path.join(task_root, task, name),
                    "metadata": {},
                }
            ]
        }
    return {
        "inputs": {
            "parameterValues": _parameter_values(spec, task, overrides or {}),
            "artifacts": {k: {"artifacts": [v]} for k, v in (inputs or {}).items()},
        },
        "outputs": {"artifacts": outputs, "outputFile": os.path.join(task_root, task, "executor_output.json")},
    }


def _run(command, args, invocation: Dict[str, Any], env=None) -> Dict[str, Any]:
    argv = [a.replace(PLACEHOLDER, json.dumps(invocation)) if PLACEHOLDER in a else a for a in args]
    if command[0] == "python":  # the image's python is this interpreter here
        command = [sys.executable, *command[1:]]
    os.makedirs(os.path.dirname(invocation["outputs"]["outputFile"]), exist_ok=True)
    proc = subprocess.run([*command, *argv], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    with open(invocation["outputs"]["outputFile"]) as f:
        return json.load(f)


def prepare(
    spec,
    task: str,
    task_root: str,
    inputs: Optional[Dict[str, dict]] = None,
    overrides: Optional[Dict[str, Any]] = None,
    env=None,
) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(container, ExecutorInput) for task, after its driver (if the spec has one) ran."""
    executor_label = spec["components"][spec["root"]["dag"]["tasks"][task]["componentRef"]["name"]]["executorLabel"]
    container = spec["deploymentSpec"]["executors"][executor_label]["container"]
    invocation = executor_input(spec, task, task_root, inputs, overrides)
    driver = container.get("lifecycle", {}).get("preCacheCheck")
    if driver:
        driven = _run(driver["command"], driver["args"], invocation, env)
        # What the backend does between driver and executor: take its parameters and artifacts.
        invocation["inputs"]["parameterValues"].update(driven.get("parameterValues", {}))
        for name, value in driven.get("artifacts", {}).items():
            invocation["outputs"]["artifacts"][name]["artifacts"][0].update(value["artifacts"][0])
    return container, invocation


def execute(container: Dict[str, Any], invocation: Dict[str, Any], env=None) -> Dict[str, Any]:
    """Runs the executor's own command; returns its output artifacts (name -> runtime artifact)."""
    output = _run(container["command"], container["args"], invocation, env)
    # The executor reports only what changed; the artifact is the one it was given, plus that.
    result = {}
    for name, declared in invocation["outputs"]["artifacts"].items():
        artifact = dict(declared["artifacts"][0])
        reported = output.get("artifacts", {}).get(name, {}).get("artifacts", [{}])[0]
        artifact["metadata"] = {**artifact.get("metadata", {}), **reported.get("metadata", {})}
        result[name] = artifact
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec")
    p.add_argument("task")
    p.add_argument("--root", required=True, help="local folder standing in for the pipeline root")
    p.add_argument("--param", action="append", default=[], help="NAME=VALUE parameter override")
    p.add_argument(
        "--input",
        action="append",
        default=[],
        help="NAME=FILE: an input artifact, as a JSON runtime artifact (a printed output)",
    )
    args = p.parse_args(argv)
    overrides = dict(kv.split("=", 1) for kv in args.param)
    inputs = {}
    for kv in args.input:
        name, path = kv.split("=", 1)
        with open(path) as f:
            inputs[name] = json.load(f)
    print(json.dumps(execute(*prepare(load_spec(args.spec), args.task, args.root, inputs, overrides)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
