"""Request logging for deployments on the real tensorflow_model_server, which has none that works in
its open-source build (tensorflow/serving#408, #2223): a thin REST proxy in front of it that writes
the same PredictionLog files as serving.server (serving/server/request_log.py) and gives every answer an
X-Request-Id of its own making (a client's own comes back as X-Client-Request-Id).

    python -m serving.tools.log_proxy --upstream http://127.0.0.1:8501 --port 8511 \
        --model_config_file serving_model/models.config

Every request is forwarded unchanged, except one: a :predict without a version is pinned to the
newest AVAILABLE version (from the upstream's status, refreshed every second), so the version in
the log is the one that answered; if that version was unloaded meanwhile, it is retried once
unpinned. Models are logged as their logging_config in models.config says. gRPC is not proxied:
log REST traffic, or send gRPC clients through serving.server. The proxy's own counters (records
written and dropped) are at /log_proxy/metrics. serving/deploy/docker-compose.yml runs it.
"""

import argparse
import json
import logging
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Dict, Optional, Tuple
from urllib.parse import quote

import requests

from serving.server import request_log
from serving.server.errors import ServingError
from serving.server.main import DEFAULT_MAX_REQUEST_BYTES
from serving.server.metrics import CONTENT_TYPE, ServingMetrics
from serving.server.rest_api import ROUTE, BoundedServer, read_body

log = logging.getLogger("serving.tools.log_proxy")
METRICS_PATH = "/log_proxy/metrics"
# Headers for one hop only (RFC 9110 7.6.1), never forwarded either way; so are those a message's
# Connection header names, and Content-Encoding of an answer (its body is forwarded decoded).
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
}
DEFAULT_MAX_ANSWER_BYTES = 64 << 20  # an upstream answer larger than this is not relayed (502)


def _end_to_end(headers, also=()) -> Dict[str, str]:
    """The headers that are not hop-by-hop: neither _HOP_BY_HOP nor named in Connection."""
    values = [v for k, v in headers.items() if k.lower() == "connection"]
    named = {token.strip().lower() for value in values for token in value.split(",")}
    dropped = _HOP_BY_HOP | named | {a.lower() for a in also}
    return {k: v for k, v in headers.items() if k.lower() not in dropped}


@dataclass
class _Answer:
    status_code: int
    headers: Dict[str, str]
    content: bytes


LOOKUP_SECONDS = 1.0  # how long the newest version and a label's version are taken as known
LABELS_KEPT = 256


class Upstream:
    """The real server's REST API: what the proxy needs to know to log a predict call."""

    def __init__(self, url: str, timeout: float = 30.0):
        self.url, self.timeout = url.rstrip("/"), timeout
        self._local = threading.local()
        self._signatures: Dict[Tuple[str, int], dict] = {}
        self._latest: Dict[str, Tuple[float, Optional[int]]] = {}
        self._labels: Dict[Tuple[str, str], Tuple[float, int]] = {}  # labels the upstream resolved

    @property
    def session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def label_version(self, model: str, label: str) -> Optional[int]:
        """The version a label names now (None: the upstream does not say). A resolved label is asked
        again after LOOKUP_SECONDS; at most LABELS_KEPT are kept (labels come from the configuration,
        so a client sending made-up ones gets no entry)."""
        checked, version = self._labels.get((model, label), (0.0, None))
        if time.monotonic() - checked <= LOOKUP_SECONDS:
            return version
        try:
            path = f"/v1/models/{quote(model, safe='')}/labels/{quote(label, safe='')}"
            status = self.session.get(self.url + path, timeout=self.timeout)
            version = int(status.json()["model_version_status"][0]["version"]) if status.status_code == 200 else None
        except (requests.RequestException, ValueError, KeyError, IndexError, TypeError):
            version = None
        if version is not None:
            if len(self._labels) >= LABELS_KEPT:
                self._labels.clear()
            self._labels[(model, label)] = (time.monotonic(), version)
        return version

    def latest_version(self, model: str) -> Optional[int]:
        checked, version = self._latest.get(model, (0.0, None))
        if time.monotonic() - checked > LOOKUP_SECONDS:
            try:
                status = self.session.get(f"{self.url}/v1/models/{model}", timeout=self.timeout).json()
                available = [
                    int(s["version"]) for s in status.get("model_version_status", []) if s["state"] == "AVAILABLE"
                ]
                version = max(available) if available else None
            except (requests.RequestException, ValueError, KeyError):
                version = None
            self._latest[model] = (time.monotonic(), version)
        return version

    def signature(self, model: str, version: int, name: str) -> dict:
        """The SignatureDef (as TF Serving's JSON) of a version's signature."""
        key = (model, version)
        if key not in self._signatures:
            answer = self.session.get(f"{self.url}/v1/models/{model}/versions/{version}/metadata", timeout=self.timeout)
            answer.raise_for_status()
            self._signatures[key] = answer.json()["metadata"]["signature_def"]["signature_def"]
        return self._signatures[key][name or "serving_default"]


def _specs(signature_def: dict):
    """{input name: tf.TensorSpec} from a SignatureDef's JSON."""
    import tensorflow as tf
    from tensorflow.core.framework import types_pb2

    specs = {}
    for name, info in signature_def["inputs"].items():
        shape = info.get("tensor_shape", {})
        dims = (
            None
            if shape.get("unknown_rank")
            else [int(d["size"]) if int(d["size"]) >= 0 else None for d in shape.get("dim", [])]
        )
        specs[name] = tf.TensorSpec(dims, tf.dtypes.as_dtype(types_pb2.DataType.Value(info["dtype"])), name)
    return specs


class _TooLarge(Exception):
    pass


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream: Upstream
    loggers: Dict[str, request_log.RequestLogger]
    metrics: ServingMetrics
    max_request_bytes: int
    max_answer_bytes: int

    def setup(self):
        super().setup()
        # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every keep-alive answer (measured: 48 ms p50 at batch 1).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):
        pass

    def _answer(self, status: int, headers, body: bytes, request_id: str) -> None:
        self.send_response(status)
        also = ("content-length", "content-encoding", request_log.REQUEST_ID_HEADER, request_log.CLIENT_ID_HEADER)
        for key, value in _end_to_end(headers, also).items():
            self.send_header(key, value)
        self.send_header(request_log.REQUEST_ID_HEADER, request_id)
        client_id = request_log.client_request_id(self.headers.get(request_log.REQUEST_ID_HEADER))
        if client_id:
            self.send_header(request_log.CLIENT_ID_HEADER, client_id)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _forward(self, method: str, path: str, body: bytes) -> _Answer:
        """Asks the upstream. path is an origin-form target under /v1/ (checked in _handle), so the
        upstream's scheme, host and port are the only ones a request can reach; redirects are not followed."""
        headers = _end_to_end(self.headers, ("host", "content-length"))
        answer = self.upstream.session.request(
            method,
            self.upstream.url + path,
            data=body or None,
            headers=headers,
            timeout=self.upstream.timeout,
            allow_redirects=False,
            stream=True,
        )
        content, size = [], 0
        with answer:
            for chunk in answer.iter_content(1 << 16):  # decoded, as the Content-Encoding said
                size += len(chunk)
                if size > self.max_answer_bytes:
                    raise _TooLarge(f"the model server's answer exceeds {self.max_answer_bytes} bytes")
                content.append(chunk)
        return _Answer(answer.status_code, dict(answer.headers), b"".join(content))

    def _refuse(self, status: int, message: str, request_id: str) -> None:
        """TF Serving's JSON error shape."""
        self._answer(status, {"Content-Type": "application/json"}, json.dumps({"error": message}).encode(), request_id)

    def _handle(self, method: str) -> None:
        request_id = request_log.request_id()
        try:
            body = read_body(self, method, self.max_request_bytes)
        except ServingError as e:
            self._refuse(e.http_status, e.message, request_id)
            return
        path = self.path.split("?", 1)[0]
        if method == "GET" and path == METRICS_PATH:
            self._answer(200, {"Content-Type": CONTENT_TYPE}, self.metrics.exposition(), request_id)
            return
        if not path.startswith("/v1/"):  # absolute-form, "@host/...", "//host/...": never another address
            self._refuse(400, f"only /v1/ paths of the model server are served; got '{path[:100]}'", request_id)
            return
        route = ROUTE.match(path)
        logger = (
            self.loggers.get(route["name"]) if route and route["action"] == ":predict" and method == "POST" else None
        )
        version = None
        if logger is not None and route["version"] is None:  # pinned, so the log names who answered
            if route["label"] is None:
                version = self.upstream.latest_version(route["name"])
            else:
                version = self.upstream.label_version(route["name"], route["label"])
        pinned = f"/v1/models/{route['name']}/versions/{version}:predict" if version else self.path
        try:
            answer = self._forward(method, pinned, body)
            if version and answer.status_code == 404:  # the pinned version went away: ask as the client asked
                version, answer = None, self._forward(method, self.path, body)
        except _TooLarge as e:
            self._refuse(502, str(e), request_id)
            return
        except requests.RequestException as e:
            self._refuse(503, f"the model server did not answer: {type(e).__name__}", request_id)
            return
        self._answer(answer.status_code, answer.headers, answer.content, request_id)
        if logger is not None and answer.status_code == 200:
            version = version or (int(route["version"]) if route["version"] and route["version"].isdigit() else None)
            self._log(logger, route["name"], version, body, answer.content, request_id)

    def _log(self, logger, model: str, version: Optional[int], body: bytes, answer: bytes, request_id: str) -> None:
        """Decodes what was asked and answered, then offers it to the log; a failure costs the record only."""
        from serving.server import rest_codec

        try:
            if version is None:
                raise ValueError("the answering version is unknown")
            name = json.loads(body).get("signature_name", "")
            signature_def = self.upstream.signature(model, version, name)
            specs = _specs(signature_def)
            signature, inputs, row_format = rest_codec.parse_predict(body, lambda _: specs)
            outputs = rest_codec.parse_predict_response(answer, sorted(signature_def["outputs"]), row_format)
            logger.offer(
                request_id,
                version,
                signature or "serving_default",
                inputs,
                {k: s.dtype for k, s in specs.items()},
                outputs,
            )
        except Exception as e:  # noqa: BLE001  an undecodable exchange is dropped and counted, never answered
            logger.dropped["undecodable"] = logger.dropped.get("undecodable", 0) + 1
            self.metrics.request_log_dropped(model, "undecodable")
            log.warning("a %s request was not logged: %s", model, e)

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_HEAD(self):
        self._handle("HEAD")

    def do_PUT(self):
        self._handle("PUT")

    def do_DELETE(self):
        self._handle("DELETE")


def make_server(
    upstream_url: str,
    host: str,
    port: int,
    model_config_file: str,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    timeout_seconds: float = 30.0,
    max_connections: int = 512,
    max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
    **log_options,
):
    """-> (the HTTP server, its loggers by model name). The limits are serving.server's, with its
    defaults and answers: a body over max_request_bytes is 429, a connection silent for
    timeout_seconds is closed, one more than max_connections gets a 429 unread; an upstream answer
    over max_answer_bytes is a 502."""
    from serving.server.repository import configs_from_file

    metrics = ServingMetrics()
    loggers = {
        m.name: request_log.RequestLogger(m.logging, metrics, m.name, **log_options)
        for m in configs_from_file(model_config_file)
        if m.logging
    }
    handler = type(
        "Handler",
        (_ProxyHandler,),
        {
            "upstream": Upstream(upstream_url, timeout_seconds),
            "loggers": loggers,
            "metrics": metrics,
            "timeout": timeout_seconds,  # socket timeout of every read
            "max_request_bytes": max_request_bytes,
            "max_answer_bytes": max_answer_bytes,
        },
    )
    server = BoundedServer((host, port), handler)
    server.max_connections = max_connections
    return server, loggers


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--upstream", required=True, help="the model server's REST address, e.g. http://127.0.0.1:8501")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8511)
    p.add_argument("--model_config_file", required=True, help="the models.config with logging_config")
    p.add_argument("--max_request_bytes", type=int, default=DEFAULT_MAX_REQUEST_BYTES, help="largest body accepted")
    p.add_argument("--rest_api_timeout_in_ms", type=int, default=30000, help="a connection silent this long is closed")
    p.add_argument("--rest_api_max_connections", type=int, default=512, help="open connections at most")
    p.add_argument("--max_answer_bytes", type=int, default=DEFAULT_MAX_ANSWER_BYTES, help="largest upstream answer")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    server, loggers = make_server(
        args.upstream,
        args.host,
        args.port,
        args.model_config_file,
        args.max_request_bytes,
        args.rest_api_timeout_in_ms / 1000,
        args.rest_api_max_connections,
        args.max_answer_bytes,
    )
    # SIGTERM (docker stop, kubectl delete): stop serving, then write what is queued and close the files.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    log.info("logging proxy on http://%s:%d for %s; logging %s", args.host, args.port, args.upstream, sorted(loggers))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        for logger in loggers.values():
            logger.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
