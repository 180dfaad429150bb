"""1,000+ malformed requests: each gets a 4xx with a JSON error, and the server keeps serving."""

import http.client
import json
import random

import grpc
import numpy as np
import pytest

from modules import signatures
from serving.client import ServingRequestError
from serving.grpc_client import GrpcClient
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
        kind = i % 12
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
                        "/index.html/../../serving/server.py",
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
    rng = random.Random(20261122)
    conn_holder = [http.client.HTTPConnection("127.0.0.1", dev_server.rest_port, timeout=30)]
    answers = {}
    n = 1200
    for method, path, body in _bad_requests(rng, n):
        status, payload = _send(conn_holder, dev_server, method, path, body)
        assert 400 <= status < 500, f"{method} {path} {body[:120]!r} -> {status} {payload[:300]!r}"
        assert json.loads(payload)["error"], payload
        answers[status] = answers.get(status, 0) + 1
    assert sum(answers.values()) == n
    assert {400, 404, 413} <= set(answers), answers
    assert dev_server.alive()
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
