"""The models a server serves: versions found under each base path, loaded, swapped and unloaded.

Layout (the push directory, as TF Serving reads it): modules/push_layout.py, the one rule for what a
version directory is. Other names (a push's hidden staging directory) are ignored.
A new version is loaded completely before it replaces the old one, so requests never fail
during a swap; a version that fails to load is reported and the old one keeps serving.

Version policies as TF Serving's: latest N (default 1), all, specific. Version labels
(`version_labels { key: "stable" value: 3 }`) name loaded versions; as in TF Serving, a label may
only be given to a version that is AVAILABLE (unless allow_labels_for_unavailable, and then only a
new label), and a configuration that breaks this is refused whole. reload() applies a new
configuration: models added, removed, policies and labels changed, with no failed request for the
models that stay.
"""

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import grpc
import numpy as np
from tensorflow_serving.config import model_server_config_pb2

from modules.push_layout import version_dirs
from serving.server.errors import ServingError, invalid, not_found
from serving.server.metrics import NoMetrics
from serving.server.request_log import LoggingSpec, RequestLogger, spec_from_config
from serving.server.servable import DEFAULT_SIGNATURE, Servable, filter_outputs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelConfig:
    name: str
    base_path: str
    num_versions: int = 1  # version policy "latest N"
    specific_versions: Sequence[int] = ()  # version policy "specific" (overrides latest N)
    logging: Optional[LoggingSpec] = None  # logging_config: request logging on, where and how often
    all_versions: bool = False  # version policy "all"
    labels: Tuple[Tuple[str, int], ...] = ()  # version_labels, sorted by label


@dataclass
class VersionState:
    version: int
    state: str  # TF Serving's names: LOADING, AVAILABLE, END
    error: str = ""


def configs_from_file(path: str) -> List[ModelConfig]:
    """Reads a TF Serving models.config (text ModelServerConfig) with the same meaning; relative
    paths in it are relative to the file."""
    from google.protobuf import text_format

    with open(path) as f:
        config = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
    return configs_from_proto(config, os.path.dirname(os.path.abspath(path)))


def configs_from_proto(config: model_server_config_pb2.ModelServerConfig, config_dir: str) -> List[ModelConfig]:
    if config.HasField("custom_model_config"):
        raise ValueError("custom_model_config is not supported; use model_config_list")
    models = []
    for c in config.model_config_list.config:
        policy = c.model_version_policy
        base_path = c.base_path if os.path.isabs(c.base_path) else os.path.join(config_dir, c.base_path)
        models.append(
            ModelConfig(
                name=c.name,
                base_path=base_path,
                num_versions=(policy.latest.num_versions or 1) if policy.HasField("latest") else 1,
                specific_versions=tuple(policy.specific.versions) if policy.HasField("specific") else (),
                logging=spec_from_config(c.logging_config, config_dir),
                all_versions=policy.HasField("all"),
                labels=tuple(sorted(c.version_labels.items())),
            )
        )
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ValueError(f"a model name appears twice in the configuration: {sorted(names)}")
    return models


def _label_refused(model: str, version: int, why: str) -> ServingError:
    """TF Serving's refusal of a label on a version that is not available, with the reason appended."""
    return ServingError(
        grpc.StatusCode.FAILED_PRECONDITION,
        f"Request to assign label to version {version} of model {model}, which is not currently "
        f"available for inference{why}",
    )


UNKNOWN_MODEL = "unknown"  # the model_name label of requests for models this server does not have


class ModelRepository:
    def __init__(
        self,
        models: Sequence[ModelConfig],
        metrics=None,
        allow_labels_for_unavailable: bool = False,
        batcher=None,
        max_rows: Optional[int] = None,
        max_explain_rows: Optional[int] = None,
        **log_options,
    ):
        """allow_labels_for_unavailable: TF Serving's --allow_version_labels_for_unavailable_models.
        batcher: a serving.server.batching.Batcher (--enable_batching), or None: each request runs alone.
        max_rows: the most rows one request may hold (--max_batch_rows; None: no limit); max_explain_rows:
        the most an explain signature's request may hold (--max_explain_rows).
        log_options: RequestLogger's file rotation and queue settings, for models that log."""
        self.metrics = metrics or NoMetrics()
        self.batcher = batcher
        self.max_rows, self.max_explain_rows = max_rows, max_explain_rows
        self.allow_labels_for_unavailable = allow_labels_for_unavailable
        self._log_options = log_options
        self._loggers: Dict[str, RequestLogger] = {}
        self._configs: Dict[str, ModelConfig] = {}
        self._servables: Dict[str, Dict[int, Servable]] = {}
        self._states: Dict[str, Dict[int, VersionState]] = {}
        self._labels: Dict[str, Dict[str, int]] = {}
        self._failed: Dict[tuple, float] = {}  # (name, version) -> mtime of the directory that failed
        self._lock = threading.Lock()
        # One configuration change or scan at a time (the version poller, the config poller, gRPC's
        # HandleReloadConfigRequest); reentrant: reload() scans.
        self._reload_lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.scan_failures = 0  # scans of a model's base path that raised (logged; the next scan runs)
        self._apply(models)

    def _apply(self, models: Sequence[ModelConfig]) -> None:
        """Takes a configuration's models: new ones get empty tables, removed ones are unloaded."""
        wanted = {m.name: m for m in models}
        with self._lock:
            for name in wanted:
                self._servables.setdefault(name, {})
                self._states.setdefault(name, {})
            removed = [n for n in self._configs if n not in wanted]
            self._configs = wanted
            for name in removed:
                self._servables.pop(name, None)
                self._states.pop(name, None)
                self._labels.pop(name, None)
        for name in removed:
            log.info("model %s removed from the configuration: unloaded", name)
            logger = self._loggers.pop(name, None)
            if logger:
                logger.close()
        for m in models:
            current = self._loggers.get(m.name)
            if current and current.spec != m.logging:
                self._loggers.pop(m.name).close()
            if m.logging and m.name not in self._loggers:
                self._loggers[m.name] = RequestLogger(m.logging, self.metrics, m.name, **self._log_options)

    def _check_labels(self, models: Sequence[ModelConfig]) -> Dict[str, Dict[str, int]]:
        """The label maps of a configuration, or FAILED_PRECONDITION as TF Serving refuses them."""
        labels = {}
        for m in models:
            loaded = self._servables.get(m.name, {})
            for label, version in m.labels:
                if version in loaded:
                    continue
                new_label = label not in self._labels.get(m.name, {})
                if not (self.allow_labels_for_unavailable and new_label):
                    raise _label_refused(
                        m.name, version, ". Version labels can only be assigned to available versions."
                    )
            labels[m.name] = dict(m.labels)
        return labels

    def reload(self, models: Sequence[ModelConfig]) -> None:
        """Applies a new configuration: loads what its policies want (waiting for it), then sets its
        labels. A label on a version its policy does not serve refuses the whole configuration; one
        on a version that failed to load refuses the labels (ServingError) while the rest stays
        applied, as TF Serving's ReloadConfig does."""
        with self._reload_lock:
            # Stricter than TF Serving, which applies the policies before it refuses the labels: a
            # label on a version the new policies will not serve refuses the whole configuration before
            # anything changes, so a bad edit cannot unload the version clients reach by a label.
            for m in models:
                wanted = self._wanted(m)
                for label, version in m.labels:
                    if version not in wanted and not self.allow_labels_for_unavailable:
                        raise _label_refused(
                            m.name,
                            version,
                            " (its version policy does not serve it); nothing of this configuration was applied.",
                        )
            self._apply(models)
            self.poll_once()
            labels = self._check_labels(models)
            with self._lock:
                self._labels = labels
        log.info("configuration applied: models %s", sorted(m.name for m in models))

    def _wanted(self, config: ModelConfig) -> Dict[int, str]:
        available = version_dirs(config.base_path)
        if config.all_versions:
            return available
        if config.specific_versions:
            return {v: p for v, p in available.items() if v in config.specific_versions}
        return {v: available[v] for v in sorted(available)[-config.num_versions :]}

    def poll_once(self) -> None:
        """Scans every model's base path once. A scan that fails (a directory removed between listing
        and reading it, a file system error) is logged and counted; the other models and the next
        scan go on, and the versions already loaded keep serving."""
        with self._reload_lock:
            for name, config in list(self._configs.items()):
                try:
                    self._scan(name, config)
                except Exception:  # the poller must outlive whatever the file system does
                    self.scan_failures += 1
                    log.exception("scan of model %s under %s failed; the next scan retries", name, config.base_path)

    def _scan(self, name: str, config: ModelConfig) -> None:
        wanted = self._wanted(config)
        for version, path in sorted(wanted.items()):
            if version in self._servables[name]:
                continue
            mtime = os.path.getmtime(path)
            if self._failed.get((name, version)) == mtime:
                continue  # failed before and unchanged since: do not retry every poll
            with self._lock:
                self._states[name][version] = VersionState(version, "LOADING")
            started = time.perf_counter()
            try:
                servable = Servable(name, version, path, self.metrics, self.max_rows, self.max_explain_rows)
            except Exception as e:  # noqa: BLE001  any load failure is reported, never fatal
                self.metrics.load(path, False, time.perf_counter() - started)
                log.error("model %s version %d failed to load: %s", name, version, e)
                self._failed[(name, version)] = mtime
                with self._lock:
                    self._states[name][version] = VersionState(version, "END", f"failed to load: {e}")
                continue
            self.metrics.load(path, True, time.perf_counter() - started)
            with self._lock:  # the swap: a new dict, so readers see the old or the new, never half
                self._servables[name] = {**self._servables[name], version: servable}
                self._states[name][version] = VersionState(version, "AVAILABLE")
            log.info("model %s version %d AVAILABLE from %s", name, version, path)
        # Unload versions no longer wanted, but only once a wanted version serves.
        loaded = self._servables[name]
        if any(v in loaded for v in wanted):
            with self._lock:
                self._servables[name] = {v: s for v, s in loaded.items() if v in wanted}
                for v in loaded:
                    if v not in wanted:
                        self._states[name][v] = VersionState(v, "END")
                        log.info("model %s version %d unloaded", name, v)

    def start(self, poll_seconds: float) -> None:
        """Loads what is there now and sets the labels (ServingError if one names a version that did
        not load), then polls in the background (poll_seconds <= 0: never)."""
        self.reload(list(self._configs.values()))
        if poll_seconds > 0:

            def loop():
                while not self._stop.wait(poll_seconds):
                    self.poll_once()

            self._thread = threading.Thread(target=loop, name="model-poller", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        for logger in self._loggers.values():
            logger.close()

    def predict(self, servable: Servable, signature_name: str, inputs, output_filter=None):
        """A Predict call (refused when it holds more than max_rows rows), through the batcher when
        batching is on."""
        servable.check_rows(max((np.shape(a)[0] for a in inputs.values() if np.ndim(a)), default=0), signature_name)
        if self.batcher is None:
            return servable.predict(signature_name, inputs, output_filter)
        return filter_outputs(self.batcher.predict(servable, signature_name, inputs), output_filter)

    def log_request(self, request_id: str, servable: Servable, signature_name: str, inputs, outputs) -> None:
        """Offers an answered Predict call to its model's request log, when that model logs."""
        logger = self._loggers.get(servable.name)
        if logger is not None:
            signature_name = signature_name or DEFAULT_SIGNATURE
            dtypes = {k: spec.dtype for k, spec in servable.input_specs(signature_name).items()}
            logger.offer(request_id, servable.version, signature_name, inputs, dtypes, outputs)

    def polling(self) -> bool:
        """Whether the background poller is running."""
        return self._thread is not None and self._thread.is_alive()

    def configs(self) -> List[ModelConfig]:
        """The configuration in force, in its order."""
        return list(self._configs.values())

    def model_names(self) -> List[str]:
        return sorted(self._configs)

    def count_request(self, model_name: str, api: str, entrypoint: str, status: str, seconds: float) -> None:
        """Counts and times one request. Its model_name label is a model this server is configured
        with, or "unknown": a client inventing names cannot add metric series."""
        known = model_name if model_name in self._configs else UNKNOWN_MODEL
        self.metrics.request(known, api, entrypoint, status, seconds)

    def version_of_label(self, name: str, label: str) -> int:
        """The version a label names; INVALID_ARGUMENT with TF Serving's message when it names none."""
        version = self._labels.get(name, {}).get(label)
        if version is None:
            raise invalid(f"Unrecognized servable version label: {label}")
        return version

    def labels(self, name: str) -> Dict[int, List[str]]:
        """{version: its labels} of a model."""
        by_version: Dict[int, List[str]] = {}
        for label, version in sorted(self._labels.get(name, {}).items()):
            by_version.setdefault(version, []).append(label)
        return by_version

    def servable(self, name: str, version: Optional[int] = None, label: Optional[str] = None) -> Servable:
        """The requested version (by number or label), or the newest loaded one; NOT_FOUND names what exists."""
        if label is not None and name in self._servables:
            version = self.version_of_label(name, label)
        if name not in self._servables:
            raise not_found(
                f"Servable not found for request: no model named '{name}' (this server has {self.model_names()})"
            )
        loaded = self._servables[name]
        if version is None:
            if not loaded:
                raise not_found(f"Servable not found for request: Latest({name}): no version is loaded yet")
            return loaded[max(loaded)]
        if version not in loaded:
            raise not_found(
                f"Servable not found for request: Specific({name}, {version}); loaded versions: {sorted(loaded)}"
            )
        return loaded[version]

    def states(self, name: str, version: Optional[int] = None, label: Optional[str] = None) -> List[VersionState]:
        if label is not None and name in self._states:
            version = self.version_of_label(name, label)
        if name not in self._states:
            raise not_found(f"Could not find any versions of model {name}")
        with self._lock:
            states = dict(self._states[name])
        if version is not None:
            if version not in states:
                raise not_found(f"Could not find version {version} of model {name}")
            return [states[version]]
        return [states[v] for v in sorted(states, reverse=True)]


def watch_config_file(repository: ModelRepository, path: str, every_seconds: float, stop: threading.Event) -> None:
    """Re-reads a models.config every `every_seconds` and applies it when it differs from the
    configuration in force (which HandleReloadConfigRequest may also have changed), as TF Serving's
    --model_config_file_poll_wait_seconds does. A file that does not parse or a refused
    configuration is logged once and the one in force stays, until the file changes again."""

    def loop():
        refused = None
        while not stop.wait(every_seconds):
            text = None
            try:
                with open(path) as f:
                    text = f.read()
                if text == refused:
                    continue
                models = configs_from_file(path)
                if models == repository.configs():
                    continue
                repository.reload(models)
            except Exception as e:  # noqa: BLE001  the watcher must outlive a bad edit
                refused = text
                log.error("configuration in %s not applied: %s", path, getattr(e, "message", e))

    threading.Thread(target=loop, name="config-poller", daemon=True).start()
