"""Slow and idle clients cannot starve the REST server: silent connections are closed after the
timeout, a normal client is served throughout, and connections beyond the cap get a 429."""

import json
import socket
import time

import requests

from tests.serving.conftest import MODEL_NAME, publish, start_server

STATUS = f"/v1/models/{MODEL_NAME}"


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """True when the server closes the connection (EOF) within `seconds`; reads past any answer."""
    sock.settimeout(seconds)
    deadline = time.time() + seconds
    try:
        while time.time() < deadline:
            if sock.recv(65536) == b"":
                return True
    except (TimeoutError, ConnectionResetError):
        return False
    return False


def test_stalled_and_idle_connections_are_closed_and_others_are_served(tmp_path, exported_model):
    base = str(tmp_path / MODEL_NAME)
    publish(exported_model, base, 1)
    server = start_server("dev", base, "--rest_api_timeout_in_ms=2000", "--rest_api_max_connections=1000")
    stalled, idle = [], []
    try:
        for _ in range(200):  # half a request, then silence
            sock = socket.create_connection(("127.0.0.1", server.rest_port))
            sock.sendall(f"POST {STATUS}:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{{".encode())
            stalled.append(sock)
        for _ in range(200):  # one complete keep-alive request, then silence
            sock = socket.create_connection(("127.0.0.1", server.rest_port))
            sock.sendall(f"GET {STATUS} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            idle.append(sock)
        opened = time.time()
        latencies = []
        while time.time() - opened < 1.5:  # inside the timeout: all 400 connections still open
            started = time.perf_counter()
            response = requests.get(server.rest_url + STATUS, timeout=5)
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200 and json.loads(response.text)["model_version_status"]
        assert max(latencies) < 1.0, max(latencies)
        closed = [_closed_within(sock, 2.0 + 5.0 - (time.time() - opened)) for sock in stalled + idle]
        assert all(closed), f"{closed.count(False)} of {len(closed)} connections still open"
        assert time.time() - opened >= 2.0  # not before the timeout
        assert requests.get(server.rest_url + STATUS, timeout=5).status_code == 200
        assert server.alive()
    finally:
        for sock in stalled + idle:
            sock.close()
        server.stop()


def test_connections_beyond_the_cap_get_a_429_with_json(tmp_path, exported_model):
    base = str(tmp_path / MODEL_NAME)
    publish(exported_model, base, 1)
    server = start_server("dev", base, "--rest_api_max_connections=5", "--rest_api_timeout_in_ms=10000")
    held = [socket.create_connection(("127.0.0.1", server.rest_port)) for _ in range(5)]
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
