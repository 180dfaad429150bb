"""Hostile traffic at the request-log proxy, in front of a recording upstream on 127.0.0.1: smuggled
and malformed bodies are answered plainly and never reach the upstream as requests, hop-by-hop
headers stay on their hop, answers are capped and their encoding kept consistent; and canary
traffic on a version label is logged with the version that answered (a real serving.server)."""

import gzip
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import requests
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from modules import push_layout
from monitoring import request_logs
from serving.clients.rest_client import RestClient
from serving.tools import log_proxy
from tests.serving.conftest import MODEL_NAME, publish, start_server


class _Recorder(BaseHTTPRequestHandler):
    """An upstream that records every request it gets and answers by path: /big (over the proxy's
    answer cap), /gzip (a gzip-encoded JSON body), anything else a small JSON."""

    protocol_version = "HTTP/1.1"
    seen: list

    def log_message(self, *args):
        pass

    def _any(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append((self.command, self.path, dict(self.headers), body))
        if self.path.endswith("/big"):
            payload, extra = b"x" * 5000, {}
        elif self.path.endswith("/gzip"):
            payload, extra = gzip.compress(b'{"zipped": true}'), {"Content-Encoding": "gzip"}
        else:
            payload, extra = b'{"ok": true}', {}
        self.send_response(200)
        for key, value in {"Content-Type": "application/json", "Connection": "X-Upstream-Hop", **extra}.items():
            self.send_header(key, value)
        self.send_header("X-Upstream-Hop", "secret")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _any


@pytest.fixture
def hostile(tmp_path):
    """(proxy port, the upstream's record of requests): the proxy takes bodies up to 1,000 bytes and
    answers up to 1,000 bytes."""
    seen = []
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), type("Recorder", (_Recorder,), {"seen": seen}))
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    config = tmp_path / "models.config"
    config.write_text(push_layout.render_models_config([(MODEL_NAME, "/unused")]))
    proxy, _ = log_proxy.make_server(
        f"http://127.0.0.1:{upstream.server_address[1]}",
        "127.0.0.1",
        0,
        str(config),
        max_request_bytes=1000,
        timeout_seconds=5,
        max_answer_bytes=1000,
    )
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    yield proxy.server_address[1], seen
    proxy.shutdown()
    upstream.shutdown()


def _exchange(port: int, raw: bytes) -> bytes:
    """Sends raw bytes and reads until the proxy closes the connection (or 5 s pass)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        sock.settimeout(5)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return answer


def _statuses(answer: bytes) -> list:
    return [int(line.split()[1]) for line in answer.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")]


@pytest.mark.parametrize(
    "head, body, status",
    [
        # A chunked body whose chunk is a second request: refused, the connection closed, nothing smuggled.
        (
            "POST /v1/models/m:predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n",
            "2c\r\nGET /v1/models/smuggled HTTP/1.1\r\nHost: x\r\n\r\n\r\n0\r\n\r\n",
            400,
        ),
        # Both lengths: the one a front proxy would honour (chunked) is refused, not the other taken.
        (
            "POST /v1/models/m:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n",
            "0\r\n\r\nGET /v1/models/smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
            400,
        ),
        ("POST /v1/models/m:predict HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n", "hello", 400),
        # Two lengths: neither is taken (the rest of the body would be read as another request).
        (
            "POST /v1/models/m:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 50\r\n",
            "{}GET /v1/models/smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
            400,
        ),
        ("POST /v1/models/m:predict HTTP/1.1\r\nHost: x\r\n", "GET /v1/models/smuggled HTTP/1.1\r\n\r\n", 400),
        ("POST /v1/models/m:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n", "x", 429),
        ("POST /v1/models/m:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n", "x" * 2000, 429),
    ],
)
def test_malformed_and_smuggled_bodies_are_answered_plainly_and_reach_no_one(hostile, head, body, status):
    port, seen = hostile
    answer = _exchange(port, (head + "\r\n" + body).encode())
    assert _statuses(answer) == [status], answer[:300]
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]
    assert seen == []  # the upstream saw no request at all, smuggled or not
    assert requests.get(f"http://127.0.0.1:{port}/v1/models/m", timeout=10).status_code == 200  # still serving


def test_hop_by_hop_headers_stay_on_their_hop_both_ways(hostile):
    port, seen = hostile
    answer = requests.get(
        f"http://127.0.0.1:{port}/v1/models/m",
        headers={
            "Connection": "keep-alive, X-Private",
            "X-Private": "1",
            "Proxy-Authorization": "Basic c2VjcmV0",
            "TE": "trailers",
        },
        timeout=10,
    )
    forwarded = {k.lower() for k in seen[-1][2]}
    assert not forwarded & {"x-private", "proxy-authorization", "te"}, forwarded
    assert "X-Upstream-Hop" not in answer.headers  # named in the upstream's Connection header
    assert answer.json() == {"ok": True}


def test_an_oversized_answer_is_a_502_and_an_encoded_one_arrives_decoded_without_its_encoding(hostile):
    port, _ = hostile
    big = requests.get(f"http://127.0.0.1:{port}/v1/models/big", timeout=10)
    assert big.status_code == 502 and "exceeds 1000 bytes" in big.json()["error"]
    zipped = requests.get(f"http://127.0.0.1:{port}/v1/models/gzip", timeout=10, headers={"Accept-Encoding": "gzip"})
    assert zipped.status_code == 200 and "Content-Encoding" not in zipped.headers
    assert zipped.json() == {"zipped": True} and int(zipped.headers["Content-Length"]) == len(zipped.content)


def test_predicts_on_a_version_label_are_logged_with_the_version_it_names(tmp_path, exported_model, test_images_labels):
    base = str(tmp_path / MODEL_NAME)
    publish(exported_model, base, 1)
    publish(exported_model, base, 2)

    def config(name: str, request_log=None) -> str:
        """A models.config serving versions 1 and 2 with the label stable on 1."""
        parsed = model_server_config_pb2.ModelServerConfig()
        text_format.Parse(push_layout.render_models_config([(MODEL_NAME, base)], 2, request_log=request_log), parsed)
        parsed.model_config_list.config[0].version_labels["stable"] = 1
        (tmp_path / name).write_text(text_format.MessageToString(parsed))
        return str(tmp_path / name)

    served, logged = config("server.config"), config("proxy.config", (str(tmp_path / "logs"), 1.0))
    images = test_images_labels[0][:2]
    with start_server("dev", base, f"--model_config_file={served}") as server:
        assert requests.get(f"{server.rest_url}/v1/models/{MODEL_NAME}/labels/stable", timeout=30).status_code == 200
        proxy, loggers = log_proxy.make_server(server.rest_url, "127.0.0.1", 0, logged)
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{proxy.server_address[1]}/v1/models/{MODEL_NAME}/labels/stable:predict"
            answer = requests.post(
                url, json={"signature_name": "predict_images", "instances": images.tolist()}, timeout=30
            )
            assert answer.status_code == 200
            latest = RestClient(f"http://127.0.0.1:{proxy.server_address[1]}", MODEL_NAME).predict_images(images[:1])
        finally:
            proxy.shutdown()
            for logger in loggers.values():
                logger.close()
    rows, problems = request_logs.read(
        request_logs.log_files(str(tmp_path / "logs" / MODEL_NAME / "requests")), MODEL_NAME
    )
    assert problems.bad_records == 0 and sum(loggers[MODEL_NAME].dropped.values()) == 0
    assert rows.versions.tolist() == [1, 1, 2]  # the label's version, then the newest for an unversioned call
    np.testing.assert_array_equal(rows.images, np.concatenate([images, images[:1]]))
    assert rows.request_ids.tolist()[2] == latest.request_id
