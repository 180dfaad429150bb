"""1,000+ malformed requests: each gets a 4xx with a JSON error, and the server keeps serving."""

import http.client
import json
import random
import re
import socket

import grpc
import numpy as np
import pytest

from modules import signatures
from serving.clients.grpc_client import GrpcClient
from serving.clients.rest_client import ServingRequestError
from tests.serving.conftest import MODEL_NAME

PREDICT = f"/v1/models/{MODEL_NAME}:predict"
OK_IMAGE = np.zeros((28, 28), int).tolist()


def _json(obj) -> bytes:
    return json.dumps(obj).encode()


def _bad_values(rng: random.Random):
    """Values that are not a uint8 [n, 28, 28] tensor."""
    choice = rng.randrange(9)
    if choice == 0:  # wrong shape
        dims = [rng.randint(1, 3), rng.choice([0, 1, 27, 29, 56]), rng.choice([1, 27, 29])]
        return np.zeros(dims, int).tolist()
    if choice == 1:  # out of uint8 range
        return (np.zeros((1, 28, 28), int) + rng.choice([-1, 256, 10**6, -(10**12)])).tolist()
    if choice == 2:  # non-integer pixels
        return (np.zeros((1, 28, 28)) + rng.choice([0.5, 1e-3, 254.9])).tolist()
    if choice == 3:  # strings where numbers belong
        return [[["x"] * 28] * 28]
    if choice == 4:  # ragged rows
        return [OK_IMAGE[:-1] + [[0] * rng.randint(0, 27)]]
    if choice == 5:  # nulls and objects
        return [[[rng.choice([None, {}, {"b64": "AAAA"}, []])] * 28] * 28]
    if choice == 6:  # a scalar or an empty list
        return rng.choice([0, 3.5, "seven", [], True])
    if choice == 7:  # too many dimensions
        return np.zeros((1, 1, 28, 28), int).tolist()
    return [OK_IMAGE, [[0] * 28] * 27]  # two instances of different shapes


def _bad_requests(rng: random.Random, n: int):
    """(method, path, body) triples, every one of them malformed in some way."""
    for i in range(n):
        kind = i % 14
        signature = signatures.IMAGES_SIGNATURE
        if kind == 0:  # not JSON at all
            yield "POST", PREDICT, bytes(rng.randrange(256) for _ in range(rng.randint(1, 200)))
        elif kind == 1:  # truncated JSON
            body = _json({"signature_name": signature, "instances": [OK_IMAGE]})
            yield "POST", PREDICT, body[: rng.randint(1, len(body) - 1)]
        elif kind == 2:  # JSON, but not an object
            yield "POST", PREDICT, _json(rng.choice([[1, 2], 3, "instances", None, True]))
        elif kind == 3:  # neither or both of instances / inputs
            body = rng.choice(
                [
                    {"signature_name": signature},
                    {"instances": [OK_IMAGE], "inputs": [OK_IMAGE], "signature_name": signature},
                    {},
                ]
            )
            yield "POST", PREDICT, _json(body)
        elif kind in (4, 5):  # wrong shapes and dtypes, in both formats
            key = "instances" if kind == 4 else "inputs"
            yield "POST", PREDICT, _json({"signature_name": signature, key: _bad_values(rng)})
        elif kind == 6:  # unknown or malformed signature name, unknown input name
            yield (
                "POST",
                PREDICT,
                _json(
                    rng.choice(
                        [
                            {
                                "signature_name": rng.choice(["nope", "__saved_model_init_op", "", "x" * 500]),
                                "inputs": {"pixels": [OK_IMAGE]},
                            },
                            {"signature_name": 7, "instances": [OK_IMAGE]},
                            {"signature_name": signature, "inputs": {"images": [OK_IMAGE], "extra": [1]}},
                        ]
                    )
                ),
            )
        elif kind == 7:  # bad b64 / garbage bytes for the serialized-example signature
            yield (
                "POST",
                PREDICT,
                _json(
                    {
                        "instances": [
                            rng.choice(
                                [
                                    {"b64": "!!!"},
                                    {"b64": "AAA"},
                                    {"b64": 5},
                                    {"b64": "AAAA", "x": 1},
                                    {"b64": "aGVsbG8="},
                                ]
                            )
                        ]
                    }
                ),
            )
        elif kind == 8:  # unknown models, names trying to escape the base path, bad versions
            name = rng.choice(["nosuch", "..", "%2e%2e", "..%2F..%2Fetc%2Fpasswd", "mnist%00", "MNIST", "a" * 300])
            version = rng.choice(
                [
                    "",
                    "/versions/0",
                    "/versions/99",
                    "/versions/-1",
                    "/versions/abc",
                    "/versions/1%2F..",
                    "/labels/stable",
                ]
            )
            target = rng.choice([f"/v1/models/{name}{version}:predict", f"/v1/models/{MODEL_NAME}{version}:predict"])
            if target == PREDICT:
                target = f"/v1/models/{name}:predict"
            yield "POST", target, _json({"signature_name": signature, "instances": [OK_IMAGE]})
        elif kind == 9:  # unknown paths, traversal in the path itself
            yield (
                "GET",
                rng.choice(
                    [
                        "/v1/models",
                        "/v1/models/",
                        "/../../etc/passwd",
                        "/v2/models/mnist",
                        f"/v1/models/{MODEL_NAME}/metadata/../..",
                        f"/v1/models/{MODEL_NAME}:explain",
                        "/index.html/../../serving/server/main.py",
                        f"/v1/models/{MODEL_NAME}/versions/",
                    ]
                ),
                b"",
            )
        elif kind == 10:  # wrong methods
            yield rng.choice(
                [
                    ("GET", PREDICT, b""),
                    ("PUT", PREDICT, b"{}"),
                    ("DELETE", f"/v1/models/{MODEL_NAME}", b""),
                    ("POST", f"/v1/models/{MODEL_NAME}", b"{}"),
                    ("POST", f"/v1/models/{MODEL_NAME}:classify", b"{}"),
                ]
            )
        elif kind == 11:  # a nesting bomb: deeper than any JSON parser recurses
            depth = rng.choice([5_000, 100_000])
            yield "POST", PREDICT, b'{"instances": ' + b"[" * depth + b"]" * depth + b"}"
        elif kind == 12:  # methods TF Serving does not serve
            yield rng.choice(["OPTIONS", "PATCH", "TRACE"]), rng.choice([PREDICT, f"/v1/models/{MODEL_NAME}"]), b""
        else:  # bodies over the 1 MiB limit
            yield "POST", PREDICT, b"{" + b" " * ((1 << 20) + rng.randint(1, 4096)) + b"}"


def _send(conn_holder, server, method, path, body):
    for attempt in range(2):
        conn = conn_holder[0]
        try:
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            return response.status, response.read()
        except (http.client.HTTPException, ConnectionError):
            # The server closes a connection after refusing an oversized body unread.
            conn.close()
            conn_holder[0] = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
            if attempt:
                raise


def test_a_thousand_malformed_rest_requests_get_4xx_and_the_server_survives(dev_server):
    """... and the server's memory after them is within 10% of where it was (resident set size,
    after a warm-up of each answer kind, so the first-use allocations are not counted as growth)."""
    import psutil

    rng = random.Random(20261122)
    conn_holder = [http.client.HTTPConnection("127.0.0.1", dev_server.rest_port, timeout=30)]
    for method, path, body in _bad_requests(random.Random(1), 200):  # warm-up
        _send(conn_holder, dev_server, method, path, body)
    before = psutil.Process(dev_server.process.pid).memory_info().rss
    answers = {}
    n = 1200
    for method, path, body in _bad_requests(rng, n):
        status, payload = _send(conn_holder, dev_server, method, path, body)
        assert 400 <= status < 500, f"{method} {path} {body[:120]!r} -> {status} {payload[:300]!r}"
        assert json.loads(payload)["error"], payload
        answers[status] = answers.get(status, 0) + 1
    assert sum(answers.values()) == n
    assert {400, 404, 429} <= set(answers), answers
    assert dev_server.alive()
    after = psutil.Process(dev_server.process.pid).memory_info().rss
    assert after <= 1.10 * before, f"resident memory grew from {before >> 20} MiB to {after >> 20} MiB"
    good = {"signature_name": signatures.IMAGES_SIGNATURE, "instances": [OK_IMAGE]}
    status, payload = _send(conn_holder, dev_server, "POST", PREDICT, _json(good))
    assert status == 200 and len(json.loads(payload)["predictions"]) == 1


def test_malformed_grpc_requests_get_tf_serving_codes(dev_server):
    client = GrpcClient(dev_server.grpc_target, MODEL_NAME)
    rng = np.random.default_rng(0)
    cases = 0
    try:
        for shape in [(1, 28), (2, 27, 28), (1, 28, 28, 1), (0,)]:
            with pytest.raises(ServingRequestError) as e:
                client.predict(signatures.IMAGES_SIGNATURE, {signatures.IMAGES_INPUT: np.zeros(shape, np.uint8)})
            assert e.value.status == grpc.StatusCode.INVALID_ARGUMENT
            cases += 1
        for inputs in [
            {signatures.IMAGES_INPUT: rng.random((1, 28, 28)).astype(np.float32)},  # wrong dtype
            {"pixels": np.zeros((1, 28, 28), np.uint8)},  # unknown input name
            {},
        ]:
            with pytest.raises(ServingRequestError) as e:
                client.predict(signatures.IMAGES_SIGNATURE, inputs)
            assert e.value.status == grpc.StatusCode.INVALID_ARGUMENT
            cases += 1
        with pytest.raises(ServingRequestError) as e:
            client.predict_examples([b"\x00garbage", b"not a tf.Example"])
        assert e.value.status == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(ServingRequestError) as e:  # larger than the 1 MiB message limit
            client.predict(signatures.IMAGES_SIGNATURE, {signatures.IMAGES_INPUT: np.zeros((2000, 28, 28), np.uint8)})
        assert e.value.status == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert client.predict_images(np.zeros((1, 28, 28), np.uint8)).classes.shape == (1,)
    finally:
        client.close()
    assert cases == 7 and dev_server.alive()


def test_a_few_bytes_declaring_a_huge_tensor_are_refused_before_any_allocation(dev_server):
    """A 30-byte TensorProto that declares uint8 [200000, 28, 28] (157 MB; TensorFlow would fill it
    from its one value) is refused by its declared size, larger than the 1 MiB message limit, and
    the server's memory does not grow by it."""
    import psutil
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    bomb = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_UINT8,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[{"size": 200000}, {"size": 28}, {"size": 28}]),
        int_val=[0],
    )
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = MODEL_NAME, signatures.IMAGES_SIGNATURE
    request.inputs[signatures.IMAGES_INPUT].CopyFrom(bomb)
    assert request.ByteSize() < 100
    server_process = psutil.Process(dev_server.process.pid)
    before = server_process.memory_info().rss
    with grpc.insecure_channel(dev_server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for _ in range(3):
            with pytest.raises(grpc.RpcError) as e:
                stub.Predict(request, timeout=30)
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "declares shape [200000, 28, 28]" in e.value.details()
    assert server_process.memory_info().rss - before < 50 << 20  # far below the 157 MB declared
    client = GrpcClient(dev_server.grpc_target, MODEL_NAME)
    try:
        assert client.predict_images(np.zeros((1, 28, 28), np.uint8)).classes.shape == (1,)
    finally:
        client.close()


def _raw_request(port: int, request: bytes) -> tuple:
    """Sends request bytes as they are (http.client refuses non-ASCII paths); -> (status, headers+body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
        head, _, body = answer.partition(b"\r\n\r\n")
        length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
        while len(body) < length:
            body += sock.recv(65536)
        return int(head.split()[1]), head, body


def test_non_ascii_digits_as_a_version_are_a_400_with_json(dev_server):
    # '\xb2' is '²' once the request line is decoded: str.isdigit() says yes, int() says no.
    # A 5,000-digit version: past Python's 4,300-digit int() limit and any version a server holds.
    for version in (b"\xb2", b"\xd9\xa3", b"9" * 5000):
        request = b"GET /v1/models/" + MODEL_NAME.encode() + b"/versions/" + version + b" HTTP/1.1\r\n"
        status, _, body = _raw_request(dev_server.rest_port, request + b"Host: x\r\nConnection: close\r\n\r\n")
        assert status == 400 and json.loads(body)["error"], body


def test_head_answers_with_headers_only_and_the_connection_stays_usable(dev_server):
    conn = http.client.HTTPConnection("127.0.0.1", dev_server.rest_port, timeout=30)
    conn.request("HEAD", f"/v1/models/{MODEL_NAME}")
    response = conn.getresponse()
    assert response.status == 400 and response.getheader("Content-Type") == "application/json"
    assert response.read() == b""
    conn.request("GET", f"/v1/models/{MODEL_NAME}")  # the same keep-alive connection
    response = conn.getresponse()
    assert response.status == 200 and json.loads(response.read())["model_version_status"]
    conn.close()
