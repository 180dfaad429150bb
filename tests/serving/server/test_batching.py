"""Server-side batching (--enable_batching, TF Serving's BatchingParameters): concurrent batch-1
calls are answered exactly as unbatched ones while the model runs fewer, larger calls; a bad
request fails alone; a full queue answers UNAVAILABLE (503)."""

import os
import threading

import numpy as np
import pytest
import requests
import tensorflow as tf

from modules import signatures
from pipeline.configs import PROJECT_ROOT
from serving.server import batching
from tests.serving.conftest import MODEL_NAME, publish, start_server
from tests.serving.server.test_metrics import samples


def test_the_deployments_batching_parameters_are_read_and_unknown_ones_refused(tmp_path):
    deployed = batching.read_parameters(os.path.join(PROJECT_ROOT, "serving", "deploy", "batching_parameters.txt"))
    assert deployed == batching.BatchingParameters(64, 2000, 100, 2)
    bad = tmp_path / "batching.txt"
    bad.write_text("max_batch_size { value: 8 } allowed_batch_sizes: 4 allowed_batch_sizes: 8")  # TF Serving has it
    with pytest.raises(ValueError, match=r"\['allowed_batch_sizes'\] are not supported"):
        batching.read_parameters(str(bad))


def _batching_server(tmp_path, exported_model, parameters: str, *flags: str):
    base = str(tmp_path / MODEL_NAME)
    publish(exported_model, base, 1)
    params = tmp_path / "batching.txt"
    params.write_text(parameters)
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text('prometheus_config { enable: true path: "/metrics" }')
    return start_server(
        "dev",
        base,
        "--enable_batching",
        f"--batching_parameters_file={params}",
        f"--monitoring_config_file={monitoring}",
        *flags,
    )


def _predict(url: str, images: np.ndarray) -> requests.Response:
    return requests.post(
        f"{url}/v1/models/{MODEL_NAME}:predict",
        json={"signature_name": signatures.IMAGES_SIGNATURE, "instances": images.tolist()},
        timeout=30,
    )


def test_concurrent_calls_share_model_calls_and_get_their_own_rows(tmp_path, exported_model, test_images_labels):
    images = test_images_labels[0][:64]
    expected = (
        tf.saved_model.load(exported_model)
        .signatures[signatures.IMAGES_SIGNATURE](images=tf.constant(images))[signatures.PROBABILITIES_OUTPUT]
        .numpy()
    )
    server = _batching_server(
        tmp_path,
        exported_model,
        "max_batch_size { value: 16 } batch_timeout_micros { value: 20000 } num_batch_threads { value: 1 }",
        "--tensorflow_intra_op_parallelism=1",  # TF Serving's thread flags, often tuned with batching
        "--tensorflow_inter_op_parallelism=1",
    )
    answers, bad = [None] * 64, []
    try:

        def client(k):
            for i in range(k, 64, 8):
                answers[i] = _predict(server.rest_url, images[i : i + 1])
            bad.append(_predict(server.rest_url, np.zeros((1, 27, 28), np.uint8)))  # joins no batch

        threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        page = samples(requests.get(f"{server.rest_url}/metrics", timeout=30).text)
        with open(server.log.name) as f:
            log = f.read()
    finally:
        server.stop()
    assert "TensorFlow threads: intra-op 1, inter-op 1" in log
    got = np.array([a.json()["predictions"][0]["probabilities"] for a in answers])
    np.testing.assert_allclose(got, expected, atol=1e-5)  # each caller got its own row
    assert [b.status_code for b in bad] == [400] * 8
    model_calls = page[
        (
            ":tensorflow:serving:runtime_latency_count",
            (("API", "Predict"), ("model_name", MODEL_NAME), ("runtime", "TF2")),
        )
    ]
    assert model_calls < 64 / 2  # 64 good requests in batches: at least two per call on average


def test_a_full_batch_queue_answers_unavailable(tmp_path, exported_model, test_images_labels):
    images = test_images_labels[0][:1]
    server = _batching_server(
        tmp_path,
        exported_model,
        "max_batch_size { value: 1 } batch_timeout_micros { value: 0 } max_enqueued_batches { value: 1 } "
        "num_batch_threads { value: 1 }",
    )
    codes = []
    try:

        def client():
            for _ in range(30):
                codes.append(_predict(server.rest_url, images).status_code)

        threads = [threading.Thread(target=client) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        server.stop()
    assert set(codes) == {200, 503} and codes.count(200) >= 30
