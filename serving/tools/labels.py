"""Canary releases with TF Serving's version labels: edits models.config, and waits for the server
(serving.server or tensorflow_model_server, both started with --model_config_file_poll_wait_seconds)
to apply each step before the next, so no labelled request ever meets a version that is not loaded.

    python -m serving.tools.labels --config serving_model/models.config show
    python -m serving.tools.labels --config ... --server http://127.0.0.1:8501 stable      # start: newest = stable
    python -m serving.tools.labels --config ... --server ... canary 1795390000             # a pushed version
    python -m serving.tools.labels --config ... --server ... promote                       # canary becomes stable
    python -m serving.tools.labels --config ... --server ... rollback                      # canary dropped

Clients address `/v1/models/<name>/labels/stable` or `/labels/canary` (gRPC: version_label). Once a
model has labels, a push (components/release) loads the new version beside the labelled ones, with
no label: traffic moves only when `canary` and then `promote` say so. A label is given only to a
version the server reports AVAILABLE (TF Serving refuses anything else), hence the two steps of
`canary` (load, then label) and of `promote` (move the label, then unload the old version).
"""

import argparse
import sys
import time
from typing import Dict, Optional

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from modules import push_layout

STABLE, CANARY = "stable", "canary"


def _read(path: str) -> model_server_config_pb2.ModelServerConfig:
    with open(path) as f:
        return text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())


def _apply(path: str, name: str, before: Dict[str, int], labels: Dict[str, int], add=(), remove=(), only=None):
    """Changes the model's labels from `before` to `labels` and its served versions in the
    models.config on disk, read afresh and written in one rename under the lock a release takes too
    (modules/push_layout.py): `add` and `remove` change the versions served now, so a version a push
    added between two steps stays loaded; `only` replaces them (the `stable` reset). Nothing is
    written, and the command stops in plain words, when the labels on disk are no longer `before`
    or a label would name a version no longer served (a push between two steps unloads an
    unlabelled version, and TF Serving refuses a label on a version it does not load)."""

    def change(text: Optional[str]) -> str:
        config = text_format.Parse(text or "", model_server_config_pb2.ModelServerConfig())
        model = _model(config, name)
        if only is None and dict(model.version_labels) != before:
            raise SystemExit(
                f"the labels changed meanwhile (now {dict(model.version_labels)}, expected {before}); nothing changed"
            )
        served = set(only) if only is not None else (set(served_versions(model)) | set(add)) - set(remove)
        gone = sorted(set(labels.values()) - served)
        if gone:
            raise SystemExit(
                f"version(s) {gone} are no longer served (a push changed models.config meanwhile); "
                f"nothing changed in this step: run the command again"
            )
        _set(model, labels, served)
        return text_format.MessageToString(config)

    push_layout.update_models_config(path, change)


def served_versions(model) -> list:
    """The versions a `specific` policy serves (empty for `latest` and `all`)."""
    policy = model.model_version_policy
    return list(policy.specific.versions) if policy.WhichOneof("policy_choice") == "specific" else []


def _model(config, name: str):
    for model in config.model_config_list.config:
        if model.name == name:
            return model
    raise SystemExit(f"no model {name!r} in the configuration")


def _set(model, labels: Dict[str, int], served) -> None:
    model.version_labels.clear()
    model.version_labels.update(labels)
    model.model_version_policy.Clear()
    model.model_version_policy.specific.versions.extend(sorted(set(served)))


class Server:
    """Waits, through the REST API, for the server to show what the configuration asks."""

    def __init__(self, url: Optional[str], model: str, timeout: float):
        self.url, self.model, self.timeout = url, model, timeout

    def _until(self, what: str, done) -> None:
        if not self.url:
            return
        import requests

        deadline = time.time() + self.timeout
        while time.time() < deadline:
            try:
                if done(requests):
                    return
            except (requests.RequestException, ValueError, KeyError, IndexError):
                pass
            time.sleep(0.5)
        raise SystemExit(
            f"the server at {self.url} did not show {what} within {self.timeout:.0f} s; "
            "the steps after it were not taken"
        )

    def available(self, version: int) -> None:
        def done(requests):
            status = requests.get(f"{self.url}/v1/models/{self.model}", timeout=5).json()
            return any(
                int(s["version"]) == version and s["state"] == "AVAILABLE" for s in status["model_version_status"]
            )

        self._until(f"version {version} AVAILABLE", done)

    def labelled(self, label: str, version: int) -> None:
        def done(requests):
            status = requests.get(f"{self.url}/v1/models/{self.model}/labels/{label}", timeout=5).json()
            return int(status["model_version_status"][0]["version"]) == version

        self._until(f"label {label} on version {version}", done)


def newest_version(model) -> int:
    from modules.push_layout import version_dirs

    versions = version_dirs(model.base_path)
    if not versions:
        raise SystemExit(f"no version under {model.base_path}")
    return max(versions)


def run(args) -> str:
    config = _read(args.config)
    model = _model(config, args.model_name)
    labels = dict(model.version_labels)
    server = Server(args.server, args.model_name, args.timeout)
    if args.action == "show":
        policy = text_format.MessageToString(model.model_version_policy, as_one_line=True)
        return f"model {model.name}: labels {labels or 'none'}; policy {policy or 'latest 1'}"
    if args.action == "stable":
        version = args.version or newest_version(model)
        _apply(args.config, model.name, labels, {STABLE: version}, only=[version])
        server.labelled(STABLE, version)
        return f"stable = version {version}; every other version unloaded"
    if STABLE not in labels:
        raise SystemExit("no stable label yet: run `stable` first")
    stable = labels[STABLE]
    if args.action == "canary":
        if not args.version:
            raise SystemExit("canary needs the version to label")
        # 1: load it, unlabelled (a canary it replaces is unloaded); 2: label it
        replaced = [labels[CANARY]] if labels.get(CANARY) not in (None, stable, args.version) else []
        _apply(args.config, model.name, labels, {STABLE: stable}, add=[args.version], remove=replaced)
        server.available(args.version)
        _apply(args.config, model.name, {STABLE: stable}, {STABLE: stable, CANARY: args.version})
        server.labelled(CANARY, args.version)
        return f"canary = version {args.version}; stable stays on version {stable}"
    if CANARY not in labels:
        raise SystemExit("no canary label: nothing to promote or roll back")
    canary = labels[CANARY]
    if args.action == "promote":
        _apply(args.config, model.name, labels, {STABLE: canary})  # 1: move stable while both are loaded
        server.labelled(STABLE, canary)
        _apply(args.config, model.name, {STABLE: canary}, {STABLE: canary}, remove=[stable])  # 2: unload the old one
        return f"stable = version {canary} (was {stable}); canary label removed, version {stable} unloaded"
    _apply(args.config, model.name, labels, {STABLE: stable}, remove=[canary])  # rollback
    return f"canary version {canary} dropped; stable stays on version {stable}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="the models.config the server polls")
    p.add_argument("--server", help="the server's REST address, to wait for each step (recommended)")
    p.add_argument("--model_name", default="mnist")
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("action", choices=("show", "stable", "canary", "promote", "rollback"))
    p.add_argument("version", nargs="?", type=int)
    print(run(p.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
