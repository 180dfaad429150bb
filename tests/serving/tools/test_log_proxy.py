"""The request-log proxy in front of a model server (serving.server, and the real
tensorflow_model_server when it is on PATH): answers pass through unchanged, each with an id, and the
log holds exactly what was asked and answered, by the version that answered."""

import threading

import numpy as np
import pytest
import requests

from modules import push_layout, signatures
from monitoring import request_logs
from serving.clients.rest_client import RestClient
from serving.tools import log_proxy
from tests.ports import refusing_port
from tests.serving.conftest import MODEL_NAME


@pytest.fixture
def proxy(server, tmp_path):
    """The proxy on a free port in front of `server` (each kind), logging every request."""
    config = tmp_path / "models.config"
    config.write_text(
        push_layout.render_models_config([(MODEL_NAME, "/unused")], request_log=(str(tmp_path / "logs"), 1.0))
    )
    http, loggers = log_proxy.make_server(server.rest_url, "127.0.0.1", 0, str(config))
    threading.Thread(target=http.serve_forever, daemon=True).start()
    http.url = f"http://127.0.0.1:{http.server_address[1]}"
    http.loggers = loggers
    http.log_prefix = str(tmp_path / "logs" / MODEL_NAME / "requests")
    yield http
    http.shutdown()
    for logger in loggers.values():
        logger.close()


def test_answers_pass_through_with_an_id_and_the_log_holds_them(proxy, server, test_images_labels):
    images = test_images_labels[0][:6]
    direct = RestClient(server.rest_url, MODEL_NAME).predict_images(images[:3])
    through = RestClient(proxy.url, MODEL_NAME)
    first = through.predict_images(images[:3])
    np.testing.assert_allclose(first.probabilities, direct.probabilities, atol=1e-6)
    assert first.request_id and len(first.request_id) == 32
    # Columnar format, an explicit version, and a client's own id.
    columnar = requests.post(
        f"{proxy.url}/v1/models/{MODEL_NAME}/versions/1:predict",
        headers={"X-Request-Id": "trace-9"},
        json={"signature_name": signatures.IMAGES_SIGNATURE, "inputs": {"images": images[3:6].tolist()}},
        timeout=30,
    )
    assert columnar.status_code == 200 and columnar.headers["X-Client-Request-Id"] == "trace-9"
    assert len(columnar.headers["X-Request-Id"]) == 32  # the proxy's own: the key in the log
    # Errors and other routes pass through untouched (and are not logged).
    missing = requests.get(f"{proxy.url}/v1/models/nope", timeout=30)
    assert missing.status_code == 404 and missing.headers["X-Request-Id"]
    status = requests.get(f"{proxy.url}/v1/models/{MODEL_NAME}", timeout=30).json()
    assert status["model_version_status"][0]["state"] == "AVAILABLE"
    for logger in proxy.loggers.values():
        logger.close()

    rows, problems = request_logs.read(request_logs.log_files(proxy.log_prefix), MODEL_NAME)
    assert problems.bad_records == 0
    assert rows.request_ids.tolist() == [first.request_id] * 3 + [columnar.headers["X-Request-Id"]] * 3
    assert rows.versions.tolist() == [1] * 6  # pinned to the answering version, explicit or not
    np.testing.assert_array_equal(rows.images, images)
    np.testing.assert_allclose(rows.probabilities[:3], first.probabilities, atol=1e-6)
    np.testing.assert_allclose(rows.probabilities[3:], np.array(columnar.json()["outputs"]["probabilities"]), atol=1e-6)


def test_a_dead_upstream_is_a_503_in_plain_words(tmp_path):
    config = tmp_path / "models.config"
    config.write_text(push_layout.render_models_config([(MODEL_NAME, "/unused")]))
    with refusing_port() as dead:
        http, _ = log_proxy.make_server(f"http://127.0.0.1:{dead}", "127.0.0.1", 0, str(config))
        threading.Thread(target=http.serve_forever, daemon=True).start()
        try:
            answer = requests.get(f"http://127.0.0.1:{http.server_address[1]}/v1/models/{MODEL_NAME}", timeout=30)
            assert answer.status_code == 503 and "did not answer" in answer.json()["error"]
        finally:
            http.shutdown()


def test_targets_that_name_another_host_are_refused_and_reach_nobody(proxy):
    """The proxy forwards only origin-form /v1/ paths: a target that would make the upstream URL name
    another host ("@host/...", absolute-form, "//host") is a 400 in TF Serving's JSON error shape,
    and nothing connects to that host."""
    import json
    import socket

    from tests.serving.server.test_fuzz import _raw_request

    with socket.socket() as bait:  # another address on this machine: it must see no connection
        bait.bind(("127.0.0.1", 0))
        bait.listen(8)
        bait.settimeout(1.0)
        other = f"127.0.0.1:{bait.getsockname()[1]}"
        port = int(proxy.url.rsplit(":", 1)[1])
        for target in (f"@{other}/v1/models/{MODEL_NAME}", f"http://{other}/v1/models/x", f"//{other}/v1/models/x"):
            request = f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
            status, _, body = _raw_request(port, request)
            assert status == 400 and "only /v1/ paths" in json.loads(body)["error"], (target, body)
        with pytest.raises(TimeoutError):
            bait.accept()
    assert requests.get(f"{proxy.url}/v1/models/{MODEL_NAME}", timeout=30).status_code == 200


def test_a_resolved_label_is_asked_once_a_second_and_an_unknown_one_is_not_kept(monkeypatch):
    from serving.tools import log_proxy

    asked = []

    class Answer:
        def __init__(self, label):
            self.status_code = 200 if label == "stable" else 400

        def json(self):
            return {"model_version_status": [{"version": "3"}]}

    class Session:
        def get(self, url, timeout):
            asked.append(url)
            return Answer(url.rsplit("/", 1)[1])

    upstream = log_proxy.Upstream("http://upstream")
    upstream._local.session = Session()
    assert [upstream.label_version("mnist", "stable") for _ in range(3)] == [3, 3, 3]
    assert [upstream.label_version("mnist", "made-up") for _ in range(2)] == [None, None]
    assert len(asked) == 3
    monkeypatch.setattr(log_proxy, "LOOKUP_SECONDS", -1.0)  # the second passed: asked again
    assert upstream.label_version("mnist", "stable") == 3 and len(asked) == 4
