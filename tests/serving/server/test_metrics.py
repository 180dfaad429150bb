"""Prometheus metrics in TF Serving's names: the config flag, exact counts after known traffic over
REST and gRPC, and a real Prometheus server scraping serving.server on 127.0.0.1."""

import json
import re
import shutil
import subprocess
import time
import urllib.parse

import numpy as np
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from modules import signatures
from serving.clients.grpc_client import GrpcClient
from serving.clients.rest_client import RestClient, ServingRequestError
from serving.server import metrics
from tests.serving.conftest import MODEL_NAME, publish, start_server

PATH = "/monitoring/prometheus/metrics"


@pytest.mark.parametrize(
    "text, expected",
    [
        (f'prometheus_config {{ enable: true path: "{PATH}" }}', PATH),
        ('prometheus_config { enable: true, path: "/m" }', "/m"),
        ("prometheus_config { enable: true }", metrics.DEFAULT_PATH),
        ("prometheus_config { enable: false }", None),
        ("", None),
    ],
)
def test_monitoring_config_is_read_as_tf_serving_reads_it(tmp_path, text, expected):
    path = tmp_path / "monitoring.config"
    path.write_text(text)
    assert metrics.read_monitoring_config(str(path)) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("prometheus_config { enable: yes }", "enable must be true or false"),
        ("prometheus_config { enable: true port: 9 }", "unknown prometheus_config fields ['port']"),
        ("batching { }", "expected `prometheus_config"),
    ],
)
def test_a_bad_monitoring_config_is_refused_in_plain_words(tmp_path, text, message):
    path = tmp_path / "monitoring.config"
    path.write_text(text)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        metrics.read_monitoring_config(str(path))


def samples(text: str) -> dict:
    """{(sample name, sorted labels): value} of a Prometheus text page."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(page: dict, name: str, **labels) -> float:
    return page.get((name, tuple(sorted(labels.items()))), 0.0)


def test_exposition_keeps_tf_serving_names_and_buckets():
    m = metrics.ServingMetrics(low_confidence_bound=0.6)
    m.request("mnist", "Predict", "REST", "OK", 0.002)
    m.request("mnist", "Predict", "REST", "INVALID_ARGUMENT", 0.001)
    m.predictions("mnist", 7, np.array([[0.9, 0.1], [0.3, 0.7], [0.45, 0.55]]))
    text = m.exposition().decode()
    assert "# TYPE :tensorflow:serving:request_count untyped" in text  # exact name: no _total suffix
    page = samples(text)
    assert value(page, ":tensorflow:serving:request_count", model_name="mnist", status="OK") == 1
    assert value(page, ":tensorflow:serving:request_count", model_name="mnist", status="INVALID_ARGUMENT") == 1
    labels = dict(model_name="mnist", API="Predict", entrypoint="REST")
    cumulative = sorted(
        (float(dict(k[1])["le"]), v)
        for k, v in page.items()
        if k[0] == ":tensorflow:serving:request_latency_bucket" and dict(k[1]).items() > labels.items()
    )
    assert [le for le, _ in cumulative][:-1] == pytest.approx(metrics.LATENCY_BUCKETS_US)  # 33 bounds, then +Inf
    # 1,000 us falls in the bucket up to 10 * 1.8**8 (1,102 us), 2,000 us in the one up to 10 * 1.8**10.
    first_with = {n: next(le for le, count in cumulative if count >= n) for n in (1, 2)}
    assert first_with == {1: pytest.approx(10 * 1.8**8), 2: pytest.approx(10 * 1.8**10)}
    assert value(page, ":tensorflow:serving:request_latency_count", **labels) == 2
    assert value(page, "mnist_tfx_predictions_total", model_name="mnist", version="7", **{"class": "0"}) == 1
    assert value(page, "mnist_tfx_predictions_total", model_name="mnist", version="7", **{"class": "1"}) == 2
    assert value(page, "mnist_tfx_low_confidence_predictions_total", model_name="mnist", version="7") == 1  # 0.55
    assert not any(name.endswith("_created") for name, _ in page)


@pytest.fixture(scope="module")
def monitored(tmp_path_factory, exported_model):
    root = tmp_path_factory.mktemp("monitored")
    base = str(root / MODEL_NAME)
    publish(exported_model, base, 1)
    config = root / "monitoring.config"
    config.write_text(f'prometheus_config {{ enable: true path: "{PATH}" }}\n')
    srv = start_server("dev", base, f"--monitoring_config_file={config}", "--low_confidence_bound=0.9")
    yield srv, f"{base}/1"
    srv.stop()


def scrape(srv) -> dict:
    response = requests.get(srv.rest_url + PATH, timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    return samples(response.text)


def send_known_traffic(srv, images):
    """3 REST predictions of 2 images, 2 gRPC predictions of 1, one refused on each API."""
    rest, grpc_client = RestClient(srv.rest_url, MODEL_NAME), GrpcClient(srv.grpc_target, MODEL_NAME)
    answers = []
    try:
        for i in range(3):
            answers.append(rest.predict_images(images[2 * i : 2 * i + 2]))
        for i in range(2):
            answers.append(grpc_client.predict_images(images[6 + i : 7 + i]))
        with pytest.raises(ServingRequestError):  # wrong shape: INVALID_ARGUMENT before the model runs
            rest.predict(signatures.IMAGES_SIGNATURE, {signatures.IMAGES_INPUT: [[1, 2, 3]]})
        with pytest.raises(ServingRequestError):  # no version 9: NOT_FOUND
            grpc_client.predict_images(images[:1], version=9)
    finally:
        grpc_client.close()
    return answers


def test_counts_after_known_traffic_are_exact(monitored, test_images_labels):
    srv, version_path = monitored
    before = scrape(srv)
    answers = send_known_traffic(srv, test_images_labels[0])
    after = scrape(srv)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    count = ":tensorflow:serving:request_count"
    assert delta(count, model_name=MODEL_NAME, status="OK") == 5
    assert delta(count, model_name=MODEL_NAME, status="INVALID_ARGUMENT") == 1
    assert delta(count, model_name=MODEL_NAME, status="NOT_FOUND") == 1
    latency = ":tensorflow:serving:request_latency_count"
    assert delta(latency, model_name=MODEL_NAME, API="Predict", entrypoint="REST") == 4
    assert delta(latency, model_name=MODEL_NAME, API="Predict", entrypoint="GRPC") == 3
    runtime = ":tensorflow:serving:runtime_latency_count"
    assert delta(runtime, model_name=MODEL_NAME, API="Predict", runtime=metrics.RUNTIME) == 5  # models that ran
    classes = np.concatenate([a.classes for a in answers])
    probabilities = np.concatenate([a.probabilities for a in answers])
    for cls in range(10):
        expected = int(np.sum(classes == cls))
        assert (
            delta("mnist_tfx_predictions_total", model_name=MODEL_NAME, version="1", **{"class": str(cls)}) == expected
        )
    low = int(np.sum(probabilities.max(axis=1) < 0.9))
    assert delta("mnist_tfx_low_confidence_predictions_total", model_name=MODEL_NAME, version="1") == low
    load = ":tensorflow:cc:saved_model:load_attempt_count"
    assert value(after, load, model_path=version_path, status="success") == 1
    assert value(after, ":tensorflow:cc:saved_model:load_latency", model_path=version_path) > 0


def test_requests_for_a_thousand_invented_model_names_add_no_series(monitored, test_images_labels):
    """Every name the server does not have is counted under one model_name, "unknown": a client
    inventing names cannot grow the metrics page without bound."""
    srv, _ = monitored
    rng = np.random.default_rng(0)
    names = [f"m{rng.integers(1 << 60):x}" for _ in range(1002)]

    def ask_rest(session, name):
        answer = session.post(f"{srv.rest_url}/v1/models/{name}:predict", json={"instances": [[0]]}, timeout=30)
        assert answer.status_code == 404

    def ask(session, name):
        ask_rest(session, name)
        grpc_client = GrpcClient(srv.grpc_target, name)
        try:
            with pytest.raises(ServingRequestError):
                grpc_client.predict_images(test_images_labels[0][:1])
        finally:
            grpc_client.close()

    with requests.Session() as session:
        ask(session, names[0])  # the first unknown request on each API may add the "unknown" series
        before = scrape(srv)
        for name in names[1:1001]:
            ask_rest(session, name)
        ask(session, names[1001])
    after = scrape(srv)
    assert set(after) == set(before)
    assert not any(name in str(key) for key in after for name in names)
    count = ":tensorflow:serving:request_count"
    unknown = value(after, count, model_name="unknown", status="NOT_FOUND")
    assert unknown - value(before, count, model_name="unknown", status="NOT_FOUND") == 1002


def test_without_the_flag_there_is_no_metrics_page(server):
    assert requests.get(server.rest_url + PATH, timeout=10).status_code == 404


PROMETHEUS_CONFIG = """
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: serving
    metrics_path: {path}
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""


def test_a_real_prometheus_scrapes_the_exact_counts(monitored, tmp_path, test_images_labels):
    binary = shutil.which("prometheus")
    assert binary, "prometheus is not on PATH (bootstrap.sh --browser installs Debian's prometheus)"
    srv, _ = monitored
    send_known_traffic(srv, test_images_labels[0])
    expected = value(scrape(srv), ":tensorflow:serving:request_count", model_name=MODEL_NAME, status="OK")
    config = tmp_path / "prometheus.yml"
    config.write_text(PROMETHEUS_CONFIG.format(path=PATH, port=srv.rest_port))
    subprocess.run(["promtool", "check", "config", str(config)], check=True, capture_output=True, timeout=60)
    log = open(tmp_path / "prometheus.log", "w")
    # Port 0: the system picks a free port; Prometheus logs the one it bound ('msg="Listening on" address=...').
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            "--web.listen-address=127.0.0.1:0",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    query = urllib.parse.quote(f':tensorflow:serving:request_count{{model_name="{MODEL_NAME}",status="OK"}}')
    got = None
    try:
        deadline = time.time() + 60
        port = None
        while port is None and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
            bound = re.search(
                r'msg="Listening on" address=127\.0\.0\.1:(\d+)', (tmp_path / "prometheus.log").read_text()
            )
            port = int(bound.group(1)) if bound else None
        assert port, "Prometheus reported no port: " + (tmp_path / "prometheus.log").read_text()[-2000:]
        while time.time() < deadline and got != expected:
            time.sleep(1)
            try:
                body = requests.get(f"http://127.0.0.1:{port}/api/v1/query?query={query}", timeout=5).json()
            except (requests.RequestException, json.JSONDecodeError):
                continue
            result = body.get("data", {}).get("result", [])
            got = float(result[0]["value"][1]) if result else None
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        log.close()
    assert got == expected, (tmp_path / "prometheus.log").read_text()[-2000:]


def test_a_grpc_call_that_fails_unexpectedly_is_counted_as_an_error_not_ok():
    from tensorflow_serving.apis import predict_pb2

    from serving.server import grpc_api

    counted = []

    class Broken:  # a repository whose lookup has a bug
        def servable(self, *args):
            raise RuntimeError("a bug")

        def count_request(self, *args):
            counted.append(args)

    class Context:
        def invocation_metadata(self):
            return ()

        def set_trailing_metadata(self, metadata):
            pass

    request = predict_pb2.PredictRequest()
    request.model_spec.name = MODEL_NAME
    with pytest.raises(RuntimeError):
        grpc_api.PredictionService(Broken(), 1 << 20).Predict(request, Context())
    [(model_name, api, entrypoint, status, _)] = counted
    assert (model_name, api, entrypoint, status) == (MODEL_NAME, "Predict", "GRPC", "UNKNOWN")
