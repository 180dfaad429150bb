"""TF Serving's REST API over HTTP/1.1, plus the draw-a-digit page at `/`.

    GET  /v1/models/{name}[/versions/{v}]            model status (/labels/{l} for /versions/{v} too)
    GET  /v1/models/{name}[/versions/{v}]/metadata   signatures
    POST /v1/models/{name}[/versions/{v}]:predict    {"instances": ...} or {"inputs": ...}
    POST /v1/models/{name}[/versions/{v}]:classify   {"signature_name": "classify", "examples": [...]}
    POST /v1/models/{name}[/versions/{v}]:regress    (no model here has a regression signature)
    GET  <metrics path>                              Prometheus text (with --monitoring_config_file)
Errors answer {"error": "<plain message>"} with a 4xx status; nothing a client sends stops the server.
Every answer carries an X-Request-Id header (the client's own, if it sent a plain one), the key
under which a logged request is found again (serving/request_log.py).
"""

import json
import logging
import os
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

import grpc
from google.protobuf import json_format

from modules.signatures import REGRESS_METHOD
from serving import metrics, request_log, responses, rest_codec
from serving.errors import ServingError, invalid, not_found
from serving.repository import ModelRepository

log = logging.getLogger(__name__)
access_log = logging.getLogger("serving.access")  # one line per request; the server's --access_log turns it on

WEB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "web")
_DRAIN_LIMIT_BYTES = 256 * 1024 * 1024  # larger refused bodies are not read: the connection closes
ROUTE = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<action>/metadata|:predict|:classify|:regress)?$"
)
# TF Serving's API label of each route, for the request metrics.
_API = {
    "": "GetModelStatus",
    "/metadata": "GetModelMetadata",
    ":predict": "Predict",
    ":classify": "Classify",
    ":regress": "Regress",
}


def _proto_json(message) -> dict:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections
    server_version = "mnist-tfx-dev-model-server"
    repository: ModelRepository
    max_request_bytes: int
    metrics_path: Optional[str]  # where Prometheus scrapes; None: metrics are not served

    def setup(self):
        super().setup()
        # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every keep-alive response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send_error(self, code, message=None, explain=None):
        """http.server's own refusals (an unknown method, a bad request line, oversized headers) as
        TF Serving-style JSON instead of an HTML page; an unknown method is a malformed request (400)."""
        if code == 501:
            code, message = 400, f"Malformed request: unsupported method {self.command}"
        self.close_connection = True
        try:
            self._send_json(code, {"error": message or explain or "bad request"})
        except OSError:
            pass  # the client is gone

    def log_message(self, format, *args):
        # Control characters a client put in the request line are escaped, as the standard library's
        # own log_message does: a request cannot forge or break lines of the access log.
        message = (format % args).translate(self._control_char_table)
        access_log.info("%s %s", self.address_string(), message)

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header(request_log.REQUEST_ID_HEADER, self._request_id())
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":  # a HEAD answer has headers only
            self.wfile.write(body)

    def _send_json(self, status: int, payload: dict) -> None:
        self._send(status, json.dumps(payload).encode())

    def _request_id(self) -> str:
        if getattr(self, "request_id", None) is None:  # http.server refusals come before _handle
            headers = getattr(self, "headers", None)  # absent when the request line itself was bad
            self.request_id = request_log.request_id(headers.get(request_log.REQUEST_ID_HEADER) if headers else None)
        return self.request_id

    def _route(self, method: str, path: str, match: Optional[re.Match]):
        """(model name, version, label, action) of a /v1/ request whose path gave `match`, or the refusal."""
        if not path.startswith("/v1/"):  # as TF Serving's HTTP server: nothing is served there
            raise not_found(f"no such page: {self.path[:200]}")
        if not match or method not in ("GET", "POST"):  # TF Serving's REST handler owns /v1/
            raise invalid(f"Malformed request: {method} {self.path[:200]}")
        version: Optional[int] = None
        if match["version"] is not None:
            if not (match["version"].isascii() and match["version"].isdigit()) or len(match["version"]) > 19:
                raise invalid(f"the version must be a positive 64-bit integer; got '{match['version'][:50]}'")
            version = int(match["version"])
        action = match["action"] or ""
        expected = "POST" if action.startswith(":") else "GET"
        if method != expected:
            raise ServingError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{method} is not allowed here; use {expected} for {action or 'status'}",
            )
        return match["name"], version, match["label"], action

    def _body(self, method: str) -> bytes:
        """Reads the whole body (whatever the method, so the next request on the connection starts clean)."""
        length = self.headers.get("Content-Length")
        if length is None and method != "POST":
            return b""
        if length is None or not length.isdigit():
            self.close_connection = True
            raise invalid("the request needs a Content-Length header with the body's size in bytes")
        if int(length) > self.max_request_bytes:
            # Read and drop a body of reasonable size, so the client can finish sending and read
            # the 413 (closing on a client mid-send gives it a broken pipe, not an answer).
            if int(length) <= _DRAIN_LIMIT_BYTES:
                remaining = int(length)
                while remaining > 0:
                    chunk = self.rfile.read(min(remaining, 1 << 16))
                    if not chunk:
                        break
                    remaining -= len(chunk)
            else:
                self.close_connection = True
            raise ServingError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"request body of {length} bytes exceeds the limit of {self.max_request_bytes}",
            )
        return self.rfile.read(int(length))

    def _handle(self, method: str) -> None:
        started, status = time.perf_counter(), "OK"
        self.request_id = None  # a fresh id per request on a keep-alive connection
        path = self.path.split("?", 1)[0]
        addressed = ROUTE.match(path)  # a request to a model is counted and timed, whatever its outcome
        try:
            body = self._body(method)
            if method == "GET" and path in ("/", "/index.html"):
                with open(os.path.join(WEB_DIR, "index.html"), "rb") as f:
                    self._send(200, f.read(), "text/html; charset=utf-8")
                return
            if method == "GET" and self.metrics_path and path == self.metrics_path:
                self._send(200, self.repository.metrics.exposition(), metrics.CONTENT_TYPE)
                return
            name, version, label, action = self._route(method, path, addressed)
            if action == "":
                self._send_json(200, _proto_json(responses.model_status(self.repository, name, version, label)))
            elif action == "/metadata":
                self._send_json(200, _proto_json(responses.model_metadata(self.repository, name, version, label)))
            elif action == ":classify":
                servable = self.repository.servable(name, version, label)
                signature, examples = rest_codec.parse_classify(body)
                self._send_json(200, rest_codec.format_classify(*servable.classify(signature, examples)))
            elif action == ":regress":  # no model here has a regression signature: TF Serving's refusal
                servable = self.repository.servable(name, version, label)
                signature, _ = rest_codec.parse_classify(body)
                servable.check_method(signature, REGRESS_METHOD, "regression")
                raise ServingError(grpc.StatusCode.UNIMPLEMENTED, "Regress is not implemented by this server")
            else:
                servable = self.repository.servable(name, version, label)
                signature, inputs, rows = rest_codec.parse_predict(body, servable.input_specs)
                outputs = self.repository.predict(servable, signature, inputs)
                self._send_json(200, rest_codec.format_predict(outputs, rows))
                self.repository.log_request(self._request_id(), servable, signature, inputs, outputs)
        except TimeoutError:  # the client stalled mid-body past the timeout: drop the connection
            status = grpc.StatusCode.DEADLINE_EXCEEDED.name
            self.close_connection = True
        except ServingError as e:
            status = e.code.name
            self._send_json(e.http_status, {"error": e.message})
        except Exception as e:  # a bug must not take the server down
            status = grpc.StatusCode.INTERNAL.name
            log.exception("internal error on %s %s", method, self.path)
            # The details go to the log, not to the caller.
            self._send_json(500, {"error": f"internal error ({type(e).__name__}); the server log has the details"})
        finally:
            if addressed:
                api = _API[addressed["action"] or ""]
                self.repository.count_request(addressed["name"], api, "REST", status, time.perf_counter() - started)

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_PUT(self):
        self._handle("PUT")

    def do_DELETE(self):
        self._handle("DELETE")

    # Methods TF Serving does not serve get its JSON error too, not http.server's HTML 501 page.
    def do_HEAD(self):
        self._handle("HEAD")

    def do_OPTIONS(self):
        self._handle("OPTIONS")

    def do_PATCH(self):
        self._handle("PATCH")


_TOO_MANY_BODY = json.dumps({"error": "the server has too many open connections; retry shortly"}).encode()
_TOO_MANY_CONNECTIONS = (
    b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nConnection: close\r\n"
    + f"Content-Length: {len(_TOO_MANY_BODY)}\r\n\r\n".encode()
    + _TOO_MANY_BODY
)


class BoundedServer(ThreadingHTTPServer):
    """A thread per connection, at most `max_connections` at once: one more is answered 429
    (RESOURCE_EXHAUSTED, as TF Serving answers an exhausted resource) and closed, unread."""

    daemon_threads = True
    max_connections = 0  # 0: no cap
    # The listen backlog: socketserver's 5 makes a burst of connects wait for SYN retries (1 s each).
    request_queue_size = 1024

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._open = 0
        self._open_lock = threading.Lock()

    def process_request(self, request, client_address):
        with self._open_lock:
            refused = 0 < self.max_connections <= self._open
            if not refused:
                self._open += 1
        if refused:
            try:
                request.sendall(_TOO_MANY_CONNECTIONS)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._open_lock:
                self._open -= 1


def make_server(
    repository: ModelRepository,
    host: str,
    port: int,
    max_request_bytes: int,
    metrics_path: Optional[str] = None,
    timeout_seconds: float = 30.0,
    max_connections: int = 0,
) -> ThreadingHTTPServer:
    """metrics_path: serve the repository's metrics there (TF Serving's prometheus_config path).
    timeout_seconds: a connection that sends nothing for this long (a stalled request, an idle
    keep-alive) is closed and its thread freed. max_connections: the cap on open connections."""
    handler = type(
        "Handler",
        (_Handler,),
        {
            "repository": repository,
            "max_request_bytes": max_request_bytes,
            "metrics_path": metrics_path,
            "timeout": timeout_seconds,  # socket timeout of every read (StreamRequestHandler)
        },
    )
    server = BoundedServer((host, port), handler)
    server.max_connections = max_connections
    return server
