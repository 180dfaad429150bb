"""serving/deploy/nginx/nginx.conf with the real nginx on 127.0.0.1 in front of a model server: a
burst over the limit gets 429 (REST) and RESOURCE_EXHAUSTED (gRPC) at once, and only the requests
nginx let through reached the model server (its own request count)."""

import os
import shutil
import socket
import subprocess
import time

import grpc
import pytest
import requests

from pipeline.configs import PROJECT_ROOT
from serving.clients.grpc_client import GrpcClient
from serving.clients.rest_client import ServingRequestError
from tests.serving.conftest import MODEL_NAME, publish, start_server
from tests.serving.server.test_metrics import PATH, samples
from tests.timeouts import COMMAND_TIMEOUT

CONFIG = os.path.join(PROJECT_ROOT, "serving", "deploy", "nginx", "nginx.conf")
BURST = 20  # the config's burst; its rate is 10 a second


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, process) -> None:
    deadline = time.monotonic() + COMMAND_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nginx did not listen on {port}")


@pytest.fixture(scope="module")
def proxied(tmp_path_factory, exported_model):
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    assert nginx, "nginx is missing: ./bootstrap.sh --browser installs it"
    base = str(tmp_path_factory.mktemp("push_nginx") / MODEL_NAME)
    publish(exported_model, base, 1)
    monitoring = tmp_path_factory.mktemp("monitoring") / "monitoring.config"
    monitoring.write_text(f'prometheus_config {{ enable: true path: "{PATH}" }}')
    upstream = start_server("dev", base, f"--monitoring_config_file={monitoring}")
    rest_port, grpc_port = _free_port(), _free_port()
    prefix = tmp_path_factory.mktemp("nginx")
    with open(CONFIG) as f:  # the committed file; only its addresses change
        text = f.read()
    for old, new in (
        ("127.0.0.1:8501", upstream.rest_url.split("//")[1]),
        ("127.0.0.1:8500", upstream.grpc_target),
        ("127.0.0.1:8080", f"127.0.0.1:{rest_port}"),
        ("127.0.0.1:8081", f"127.0.0.1:{grpc_port}"),
        ("rate=10r/s", "rate=1r/m"),  # no token comes back during the test, however slow the machine
    ):
        assert old in text
        text = text.replace(old, new)
    (prefix / "nginx.conf").write_text(text)
    process = subprocess.Popen(
        [nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for(rest_port, process)
        _wait_for(grpc_port, process)
        yield upstream, f"http://127.0.0.1:{rest_port}", f"127.0.0.1:{grpc_port}"
    finally:
        process.terminate()
        process.wait(timeout=COMMAND_TIMEOUT)
        upstream.stop()


def _answered(upstream) -> float:
    page = samples(requests.get(upstream.rest_url + PATH, timeout=30).text)
    return page.get((":tensorflow:serving:request_count", (("model_name", MODEL_NAME), ("status", "OK"))), 0)


def test_a_burst_through_nginx_is_cut_to_the_limit_and_only_the_rest_reaches_the_server(proxied, test_images_labels):
    upstream, rest, grpc_target = proxied
    body = {"signature_name": "predict_images", "instances": test_images_labels[0][:1].tolist()}
    before = _answered(upstream)
    answers = [requests.post(f"{rest}/v1/models/{MODEL_NAME}:predict", json=body, timeout=30) for _ in range(2 * BURST)]
    codes = [a.status_code for a in answers]
    assert codes == [200] * (BURST + 1) + [429] * (BURST - 1)  # the first, the burst, then refusals
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.json()["error"].startswith("rate limit reached") and refused.headers["Retry-After"] == "1"
    assert _answered(upstream) - before == codes.count(200)  # nginx's 429s never reached the model server
    # gRPC through nginx: RESOURCE_EXHAUSTED in gRPC's own status, not a transport error.
    client = GrpcClient(grpc_target, MODEL_NAME, timeout=30)
    statuses = []
    for _ in range(2 * BURST):
        try:
            client.predict_images(test_images_labels[0][:1])
            statuses.append(grpc.StatusCode.OK)
        except ServingRequestError as error:
            statuses.append(error.status)
    assert statuses == [grpc.StatusCode.RESOURCE_EXHAUSTED] * (2 * BURST)  # the same address, its bucket empty
    other = requests.get(f"{rest}/anything", timeout=30)
    assert other.status_code == 404 and other.json() == {"error": "no such page"}
