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
    rows get INVALID_ARGUMENT in plain words; requests at the limit are answered."""
    import grpc
    import numpy as np
    import pytest

    from modules import features, signatures
    from serving.client import RestClient, ServingRequestError
    from serving.grpc_client import GrpcClient
    from serving.images import png

    base = str(tmp_path / MODEL_NAME)
    publish(exported_model, base, 1)
    images = np.zeros((5, 28, 28), np.uint8)
    images[:, 8:20, 12:16] = 255
    with start_server("dev", base, "--max_batch_rows=4") as server:
        rest, grpc_client = RestClient(server.rest_url, MODEL_NAME), GrpcClient(server.grpc_target, MODEL_NAME)
        for client in (rest, grpc_client):
            assert client.predict_images(images[:4]).classes.shape == (4,)
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
