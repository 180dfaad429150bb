"""The models a server serves: versions found under each base path, loaded, swapped and unloaded.

Layout (the push directory, as TF Serving reads it): modules/push_layout.py, the one rule for what a
version directory is. Other names (a push's hidden staging directory) are ignored.
A new version is loaded completely before it replaces the old one, so requests never fail
during a swap; a version that fails to load is reported and the old one keeps serving.
"""

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from tensorflow_serving.config import model_server_config_pb2

from modules.push_layout import version_dirs
from serving.errors import not_found
from serving.metrics import NoMetrics
from serving.request_log import LoggingSpec, RequestLogger, spec_from_config
from serving.servable import DEFAULT_SIGNATURE, Servable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelConfig:
    name: str
    base_path: str
    num_versions: int = 1  # version policy "latest N"
    specific_versions: Sequence[int] = ()  # version policy "specific" (overrides latest N)
    logging: Optional[LoggingSpec] = None  # logging_config: request logging on, where and how often


@dataclass
class VersionState:
    version: int
    state: str  # TF Serving's names: LOADING, AVAILABLE, END
    error: str = ""


def configs_from_file(path: str) -> List[ModelConfig]:
    """Reads a TF Serving models.config (text ModelServerConfig) with the same meaning."""
    from google.protobuf import text_format

    with open(path) as f:
        config = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
    models = []
    for c in config.model_config_list.config:
        policy = c.model_version_policy
        base_path = c.base_path if os.path.isabs(c.base_path) else os.path.join(os.path.dirname(path), c.base_path)
        models.append(
            ModelConfig(
                name=c.name,
                base_path=base_path,
                num_versions=(policy.latest.num_versions or 1) if policy.HasField("latest") else 1,
                specific_versions=tuple(policy.specific.versions) if policy.HasField("specific") else (),
                logging=spec_from_config(c.logging_config, os.path.dirname(os.path.abspath(path))),
            )
        )
    return models


class ModelRepository:
    def __init__(self, models: Sequence[ModelConfig], metrics=None, **log_options):
        """log_options: RequestLogger's file rotation and queue settings, for models that log."""
        self.metrics = metrics or NoMetrics()
        self._loggers = {
            m.name: RequestLogger(m.logging, self.metrics, m.name, **log_options) for m in models if m.logging
        }
        self._configs = {m.name: m for m in models}
        self._servables: Dict[str, Dict[int, Servable]] = {m.name: {} for m in models}
        self._states: Dict[str, Dict[int, VersionState]] = {m.name: {} for m in models}
        self._failed: Dict[tuple, float] = {}  # (name, version) -> mtime of the directory that failed
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.scan_failures = 0  # scans of a model's base path that raised (logged; the next scan runs)

    def _wanted(self, config: ModelConfig) -> Dict[int, str]:
        available = version_dirs(config.base_path)
        if config.specific_versions:
            return {v: p for v, p in available.items() if v in config.specific_versions}
        return {v: available[v] for v in sorted(available)[-config.num_versions :]}

    def poll_once(self) -> None:
        """Scans every model's base path once. A scan that fails (a directory removed between listing
        and reading it, a file system error) is logged and counted; the other models and the next
        scan go on, and the versions already loaded keep serving."""
        for name, config in self._configs.items():
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
                servable = Servable(name, version, path, self.metrics)
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
        """Loads what is there now, then polls in the background (poll_seconds <= 0: never)."""
        self.poll_once()
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

    def model_names(self) -> List[str]:
        return sorted(self._configs)

    def servable(self, name: str, version: Optional[int] = None) -> Servable:
        """The requested version, or the newest loaded one; NOT_FOUND names what exists."""
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

    def states(self, name: str, version: Optional[int] = None) -> List[VersionState]:
        if name not in self._states:
            raise not_found(f"Could not find any versions of model {name}")
        with self._lock:
            states = dict(self._states[name])
        if version is not None:
            if version not in states:
                raise not_found(f"Could not find version {version} of model {name}")
            return [states[version]]
        return [states[v] for v in sorted(states, reverse=True)]
