"""Slow and idle clients cannot starve the REST server: silent connections are closed after the
timeout, a normal client is served throughout, and connections beyond the cap get a 429."""

import json
import socket
import time

import requests

from tests.serving.conftest import MODEL_NAME, publish, start_server

STATUS = f"/v1/models/{MODEL_NAME}"


def _closed_by(sock: socket.socket, deadline: float) -> bool:
    """True when the server closes the connection (EOF) before `deadline` (time.monotonic()); reads
    past any answer."""
    try:
        while time.monotonic() < deadline:
            sock.settimeout(max(0.05, deadline - time.monotonic()))
            if sock.recv(65536) == b"":
                return True
    except (TimeoutError, ConnectionResetError):
        return False
    return False


def _still_open(sock: socket.socket) -> bool:
    """True when the server has not closed the connection (nothing to read yet, no EOF)."""
    sock.setblocking(False)
    try:
        return sock.recv(65536, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    finally:
        sock.setblocking(True)


TIMEOUT_S = 5  # the server's --rest_api_timeout_in_ms in the first test


def test_stalled_and_idle_connections_are_closed_and_others_are_served(tmp_path, exported_model):
    base = str(tmp_path / MODEL_NAME)
    publish(exported_model, base, 1)
    server = start_server(
        "dev", base, f"--rest_api_timeout_in_ms={TIMEOUT_S * 1000}", "--rest_api_max_connections=1000"
    )
    stalled, idle = [], []
    try:
        for _ in range(200):  # half a request, then silence
            sock = socket.create_connection(("127.0.0.1", server.rest_port), timeout=10)
            sock.sendall(f"POST {STATUS}:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{{".encode())
            stalled.append(sock)
        for _ in range(200):  # one complete keep-alive request, then silence
            sock = socket.create_connection(("127.0.0.1", server.rest_port), timeout=10)
            sock.sendall(f"GET {STATUS} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            idle.append(sock)
        opened = time.monotonic()
        # A normal client is answered while the 400 connections are held open (checked after its
        # answer: the stalled ones are not yet closed, so they were open while it was served).
        response = requests.get(server.rest_url + STATUS, timeout=TIMEOUT_S)
        assert response.status_code == 200 and json.loads(response.text)["model_version_status"]
        assert all(_still_open(sock) for sock in stalled), "stalled connections closed before the timeout"
        deadline = opened + TIMEOUT_S + 60  # the timeout, and a generous bound for a loaded machine
        closed = [_closed_by(sock, deadline) for sock in stalled + idle]
        assert all(closed), f"{closed.count(False)} of {len(closed)} connections still open"
        assert time.monotonic() - opened >= TIMEOUT_S  # not before the timeout
        assert requests.get(server.rest_url + STATUS, timeout=30).status_code == 200
        assert server.alive()
    finally:
        for sock in stalled + idle:
            sock.close()
        server.stop()


def test_connections_beyond_the_cap_get_a_429_with_json(tmp_path, exported_model):
    base = str(tmp_path / MODEL_NAME)
    publish(exported_model, base, 1)
    server = start_server("dev", base, "--rest_api_max_connections=5", "--rest_api_timeout_in_ms=10000")
    held = [socket.create_connection(("127.0.0.1", server.rest_port), timeout=10) for _ in range(5)]
    try:
        deadline = time.time() + 10  # until the server has accepted the five (slow on a loaded machine)
        response = requests.get(server.rest_url + STATUS, timeout=5)
        while response.status_code != 429 and time.time() < deadline:
            time.sleep(0.2)
            response = requests.get(server.rest_url + STATUS, timeout=5)
        assert response.status_code == 429 and "too many open connections" in response.json()["error"]
        for sock in held:
            sock.close()
        deadline = time.time() + 10
        while requests.get(server.rest_url + STATUS, timeout=5).status_code != 200:
            assert time.time() < deadline, "the freed connections were never counted down"
            time.sleep(0.1)
    finally:
        for sock in held:
            sock.close()
        server.stop()


def test_a_request_of_more_rows_than_the_limit_is_refused_before_the_model_runs(tmp_path, exported_model):
    """--max_batch_rows: Predict (images and pictures, REST and gRPC) and Classify requests of more
    rows get INVALID_ARGUMENT in plain words; requests at the limit are answered; --max_explain_rows
    the same for the explain signatures."""
    import grpc
    import numpy as np
    import pytest

    from modules import features, signatures
    from serving.clients.grpc_client import GrpcClient
    from serving.clients.images import png
    from serving.clients.rest_client import RestClient, ServingRequestError

    base = str(tmp_path / MODEL_NAME)
    publish(exported_model, base, 1)
    images = np.zeros((5, 28, 28), np.uint8)
    images[:, 8:20, 12:16] = 255
    with start_server("dev", base, "--max_batch_rows=4", "--max_explain_rows=2") as server:
        rest, grpc_client = RestClient(server.rest_url, MODEL_NAME), GrpcClient(server.grpc_target, MODEL_NAME)
        for client in (rest, grpc_client):
            assert client.predict_images(images[:4]).classes.shape == (4,)
            # An explain row costs a path of predictions and their gradients: its own, lower limit.
            assert client.explain_images(images[:2]).attributions.shape == (2, 28, 28)
            with pytest.raises(ServingRequestError) as refused:
                client.explain_images(images[:3])
            assert "holds 3 rows; this server explains at most 2 per request" in refused.value.message
            for call, rows in ((client.predict_images, images), (client.predict_pictures, [png(i) for i in images])):
                with pytest.raises(ServingRequestError) as refused:
                    call(rows)
                assert refused.value.status in (400, grpc.StatusCode.INVALID_ARGUMENT)
                assert "holds 5 rows; this server answers at most 4 per request" in refused.value.message
        grpc_client.close()
        body = {
            "signature_name": signatures.CLASSIFY_SIGNATURE,
            "examples": [{features.IMAGE_KEY: image.reshape(-1).tolist()} for image in images],
        }
        classify = requests.post(f"{server.rest_url}/v1/models/{MODEL_NAME}:classify", json=body, timeout=30)
        assert classify.status_code == 400 and "holds 5 rows" in classify.json()["error"]


def test_a_classify_context_copied_into_every_example_is_bounded_before_it_is_built(tmp_path, exported_model):
    """A context of 1.6 KB (gRPC) or 3 KB (JSON) shared by 1,000 empty examples would become 1.6 MB
    or more of examples from a small request: refused (INVALID_ARGUMENT, REST and gRPC) against a
    1 MiB limit before any is built."""
    import grpc
    import numpy as np
    from tensorflow_serving.apis import classification_pb2, prediction_service_pb2_grpc

    from modules import features, signatures

    base = str(tmp_path / MODEL_NAME)
    publish(exported_model, base, 1)
    pixels = np.full(features.NUM_PIXELS, 255, np.int64)  # 2 bytes a pixel in a tf.Example, 4 in JSON
    with start_server("dev", base, f"--max_request_bytes={1 << 20}", "--max_batch_rows=100000") as server:
        body = {
            "signature_name": signatures.CLASSIFY_SIGNATURE,
            "context": {features.IMAGE_KEY: pixels.tolist()},
            "examples": [{}] * 1000,
        }
        answer = requests.post(f"{server.rest_url}/v1/models/{MODEL_NAME}:classify", json=body, timeout=30)
        assert answer.status_code == 400 and "would be copied into" in answer.json()["error"]
        request = classification_pb2.ClassificationRequest()
        request.model_spec.name, request.model_spec.signature_name = MODEL_NAME, signatures.CLASSIFY_SIGNATURE
        shared = request.input.example_list_with_context
        shared.context.features.feature[features.IMAGE_KEY].int64_list.value.extend(pixels.tolist())
        for _ in range(1000):
            shared.examples.add()
        with grpc.insecure_channel(server.grpc_target) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            try:
                stub.Classify(request, timeout=30)
                raise AssertionError("the context bomb was answered")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "would be copied into" in e.details()
            small = classification_pb2.ClassificationRequest()
            small.CopyFrom(request)
            del small.input.example_list_with_context.examples[2:]
            assert len(stub.Classify(small, timeout=30).result.classifications) == 2  # still serving
