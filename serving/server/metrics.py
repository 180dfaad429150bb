"""The server's Prometheus metrics: TF Serving's own names and labels, so that the dashboards and
alerts written for the real server work against this one, plus the project's own under `mnist_tfx_`.

TF Serving (tensorflow_serving/servables/tensorflow/util.cc, tensorflow/cc/saved_model/loader.cc):
    :tensorflow:serving:request_count{model_name, status}            requests, by error-code name
    :tensorflow:serving:request_latency{model_name, API, entrypoint}  microseconds, REST or GRPC
    :tensorflow:serving:runtime_latency{model_name, API, runtime}     microseconds in the model
    :tensorflow:cc:saved_model:load_attempt_count{model_path, status} success / fail
    :tensorflow:cc:saved_model:load_latency{model_path}               microseconds spent loading
Both latency histograms use TF Serving's buckets: 10 us growing by 1.8, 33 of them (~20 min).

prometheus_client's text format appends `_total` to every counter's name; TF Serving's counters
have none, so they are exposed as untyped families under their exact names (a PromQL query or an
alert on `:tensorflow:serving:request_count` reads them the same way).

Enabled with TF Serving's own flag, --monitoring_config_file, holding a MonitoringConfig text proto:
    prometheus_config { enable: true path: "/monitoring/prometheus/metrics" }
"""

import re
import threading
from typing import Dict, Optional, Tuple

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.metrics_core import Metric

from modules.signatures import DEFAULT_LOW_CONFIDENCE_BOUND

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_PATH = "/monitoring/prometheus/metrics"  # TF Serving's path when the config names none
LATENCY_BUCKETS_US = tuple(10 * 1.8**i for i in range(33))  # monitoring::Buckets::Exponential(10, 1.8, 33)
RUNTIME = "TF2"  # the runtime label: this server runs SavedModels with TensorFlow 2's runtime
PROJECT_PREFIX = "mnist_tfx"

_FIELD = re.compile(r'(\w+)\s*:\s*("(?:[^"\\]|\\.)*"|\w+)')


def read_monitoring_config(path: str) -> Optional[str]:
    """The metrics path a MonitoringConfig text file enables, or None when Prometheus is disabled.

    Reads the fields TF Serving's MonitoringConfig has for Prometheus (`enable`, `path`); anything
    else is refused with a plain message rather than ignored."""
    with open(path) as f:
        text = f.read()
    match = re.fullmatch(r"\s*(?:prometheus_config\s*:?\s*\{(?P<body>[^{}]*)\})?\s*", text)
    if not match:
        raise ValueError(f'{path}: expected `prometheus_config {{ enable: true path: "..." }}`; got {text!r}')
    fields = dict(_FIELD.findall(match.group("body") or ""))
    unknown = sorted(set(fields) - {"enable", "path"})
    if unknown:
        raise ValueError(f"{path}: unknown prometheus_config fields {unknown}; known: enable, path")
    if fields.get("enable", "false") not in ("true", "false"):
        raise ValueError(f"{path}: enable must be true or false; got {fields['enable']}")
    if fields.get("enable") != "true":
        return None
    metrics_path = fields.get("path", '""')[1:-1] or DEFAULT_PATH
    if not metrics_path.startswith("/"):
        raise ValueError(f"{path}: path must start with '/'; got {metrics_path!r}")
    return metrics_path


class _UntypedCounters:
    """Counters exposed under their exact names (no `_total`), as TF Serving exposes its own."""

    def __init__(self):
        self._values: Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float] = {}
        self._help: Dict[str, str] = {}
        self._lock = threading.Lock()

    def declare(self, name: str, documentation: str) -> None:
        self._help[name] = documentation

    def inc(self, name: str, labels: Dict[str, str], amount: float = 1.0) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def collect(self):
        with self._lock:
            values = dict(self._values)
        for name, documentation in self._help.items():
            family = Metric(name, documentation, "unknown")
            for (sample_name, labels), value in sorted(values.items()):
                if sample_name == name:
                    family.add_sample(name, dict(labels), value)
            yield family


class ServingMetrics:
    """What the REST and gRPC handlers and the model repository report; exposition() is the page."""

    def __init__(self, low_confidence_bound: float = DEFAULT_LOW_CONFIDENCE_BOUND):
        disable_created_metrics()  # no `_created` series: TF Serving exposes none
        self.low_confidence_bound = low_confidence_bound
        self.registry = CollectorRegistry(auto_describe=True)
        self._counters = _UntypedCounters()
        self._counters.declare(":tensorflow:serving:request_count", "The total number of requests.")
        self._counters.declare(
            ":tensorflow:cc:saved_model:load_attempt_count", "The number of times a SavedModel was successfully loaded."
        )
        self._counters.declare(
            ":tensorflow:cc:saved_model:load_latency",
            "Latency in microseconds for SavedModels that were successfully loaded.",
        )
        self.registry.register(self._counters)
        self._request_latency = Histogram(
            ":tensorflow:serving:request_latency",
            "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            ["model_name", "API", "entrypoint"],
            buckets=LATENCY_BUCKETS_US,
            registry=self.registry,
        )
        self._runtime_latency = Histogram(
            ":tensorflow:serving:runtime_latency",
            "Distribution of wall time (in microseconds) for Tensorflow runtime.",
            ["model_name", "API", "runtime"],
            buckets=LATENCY_BUCKETS_US,
            registry=self.registry,
        )
        self._predictions = Counter(
            f"{PROJECT_PREFIX}_predictions",
            "Predicted digits, by class and by the model version that answered.",
            ["model_name", "version", "class"],
            registry=self.registry,
        )
        self._log_written = Counter(
            f"{PROJECT_PREFIX}_request_log_records",
            "Request-log records written (sampled Predict calls, see serving/server/request_log.py).",
            ["model_name"],
            registry=self.registry,
        )
        self._log_dropped = Counter(
            f"{PROJECT_PREFIX}_request_log_dropped_records",
            "Request-log records dropped: the queue was full or the disk refused the write.",
            ["model_name", "reason"],
            registry=self.registry,
        )
        self._throttled = Counter(
            f"{PROJECT_PREFIX}_throttled_requests",
            "Requests refused by the per-client rate limit or quota (serving/server/rate_limit.py).",
            ["entrypoint", "limit"],
            registry=self.registry,
        )
        self._low_confidence = Counter(
            f"{PROJECT_PREFIX}_low_confidence_predictions",
            "Predictions whose top probability is below the server's --low_confidence_bound.",
            ["model_name", "version"],
            registry=self.registry,
        )

    def request(self, model_name: str, api: str, entrypoint: str, status: str, seconds: float) -> None:
        """One finished request: status is the error-code name (OK, INVALID_ARGUMENT, ...)."""
        self._counters.inc(":tensorflow:serving:request_count", {"model_name": model_name, "status": status})
        self._request_latency.labels(model_name, api, entrypoint).observe(seconds * 1e6)

    def runtime(self, model_name: str, api: str, seconds: float) -> None:
        self._runtime_latency.labels(model_name, api, RUNTIME).observe(seconds * 1e6)

    def load(self, model_path: str, ok: bool, seconds: float) -> None:
        self._counters.inc(
            ":tensorflow:cc:saved_model:load_attempt_count",
            {"model_path": model_path, "status": "success" if ok else "fail"},
        )
        if ok:
            self._counters.inc(":tensorflow:cc:saved_model:load_latency", {"model_path": model_path}, seconds * 1e6)

    def predictions(self, model_name: str, version: int, probabilities: np.ndarray) -> None:
        """Counts the predicted class of each row of [batch, classes] probabilities, and the rows
        whose top probability is below the low-confidence bound."""
        probabilities = np.asarray(probabilities)
        probabilities = probabilities.reshape(-1, probabilities.shape[-1])
        top = probabilities.argmax(axis=1)
        counts = np.bincount(top, minlength=probabilities.shape[-1])  # a fraction of np.unique's cost
        for cls in np.flatnonzero(counts):
            self._predictions.labels(model_name, str(version), str(cls)).inc(int(counts[cls]))
        low = int(np.count_nonzero(probabilities[np.arange(len(top)), top] < self.low_confidence_bound))
        if low:
            self._low_confidence.labels(model_name, str(version)).inc(low)

    def request_log_written(self, model_name: str) -> None:
        self._log_written.labels(model_name).inc()

    def request_log_dropped(self, model_name: str, reason: str) -> None:
        self._log_dropped.labels(model_name, reason).inc()

    def throttled(self, entrypoint: str, limit: str) -> None:
        """One request refused by the rate limit ("rate") or the quota ("quota"), REST or GRPC."""
        self._throttled.labels(entrypoint, limit).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class NoMetrics:
    """Stands in when --monitoring_config_file is not given: every report is a no-op."""

    def request(self, *args) -> None:
        pass

    def runtime(self, *args) -> None:
        pass

    def load(self, *args) -> None:
        pass

    def predictions(self, *args) -> None:
        pass

    def request_log_written(self, *args) -> None:
        pass

    def request_log_dropped(self, *args) -> None:
        pass

    def throttled(self, *args) -> None:
        pass
