"""The TF Serving contract, over REST and gRPC: run against serving.server always, and against the
real tensorflow_model_server whenever it is on PATH (otherwise those cases are skipped, saying so)."""

import base64
import os
import threading
import time

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf

from components.idx_example_gen.executor import to_example
from modules import signatures
from serving.clients.grpc_client import GrpcClient
from serving.clients.rest_client import RestClient, ServingRequestError
from tests.serving.conftest import MODEL_NAME, publish, start_server


@pytest.fixture(scope="module")
def clients(server):
    grpc_client = GrpcClient(server.grpc_target, MODEL_NAME)
    yield RestClient(server.rest_url, MODEL_NAME), grpc_client
    grpc_client.close()


@pytest.fixture(scope="module")
def batch(test_images_labels):
    images, labels = test_images_labels
    return images[:32], labels[:32]


@pytest.fixture(scope="module")
def in_process(exported_model, batch):
    """The same inputs through the SavedModel in this process: what the servers must return."""
    signature = tf.saved_model.load(exported_model).signatures[signatures.IMAGES_SIGNATURE]
    return signature(images=tf.constant(batch[0]))[signatures.PROBABILITIES_OUTPUT].numpy()


def test_status_over_both_protocols(clients):
    for client in clients:
        assert client.status() == [{"version": 1, "state": "AVAILABLE"}]
        assert client.status(version=1) == [{"version": 1, "state": "AVAILABLE"}]


def test_metadata_lists_the_signatures_with_their_inputs(clients):
    for client in clients:
        defs = client.metadata()["metadata"]["signature_def"]["signature_def"]
        assert {signatures.SERVING_SIGNATURE, signatures.IMAGES_SIGNATURE} <= set(defs)
        images_input = defs[signatures.IMAGES_SIGNATURE]["inputs"][signatures.IMAGES_INPUT]
        assert images_input["dtype"] == "DT_UINT8"
        assert [int(d["size"]) for d in images_input["tensor_shape"]["dim"]] == [-1, 28, 28]
        assert set(defs[signatures.IMAGES_SIGNATURE]["outputs"]) == {
            signatures.PROBABILITIES_OUTPUT,
            signatures.CLASSES_OUTPUT,
        }


def test_predict_images_over_both_protocols_equals_the_savedmodel(clients, batch, in_process):
    rest, grpc_client = clients
    for client in clients:
        prediction = client.predict_images(batch[0])
        np.testing.assert_allclose(prediction.probabilities, in_process, rtol=0, atol=1e-6)
        assert prediction.classes.tolist() == in_process.argmax(axis=1).tolist()
    assert grpc_client.predict_images(batch[0]).version == 1


def test_rest_row_format_gives_one_prediction_per_instance(server, batch, in_process):
    body = {"signature_name": signatures.IMAGES_SIGNATURE, "instances": batch[0][:3].tolist()}
    response = requests.post(f"{server.rest_url}/v1/models/{MODEL_NAME}:predict", json=body, timeout=30)
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    assert len(predictions) == 3
    assert [p[signatures.CLASSES_OUTPUT] for p in predictions] == in_process[:3].argmax(axis=1).tolist()


def test_serialized_examples_with_b64_give_the_same_probabilities(clients, batch, in_process):
    serialized = [to_example(img, lab, "t10k").SerializeToString() for img, lab in zip(*batch)]
    for client in clients:
        np.testing.assert_allclose(client.predict_examples(serialized), in_process, rtol=0, atol=1e-6)
    rows = {"instances": [{"b64": base64.b64encode(s).decode()} for s in serialized[:2]]}
    response = requests.post(f"{clients[0].url}/v1/models/{MODEL_NAME}:predict", json=rows, timeout=30)
    assert response.status_code == 200 and len(response.json()["predictions"]) == 2


@pytest.mark.parametrize(
    "path, status",
    [
        ("/v1/models/nosuchmodel:predict", 404),
        (f"/v1/models/{MODEL_NAME}/versions/99:predict", 404),
    ],
)
def test_rest_unknown_model_or_version_is_404_with_an_error(server, batch, path, status):
    body = {"signature_name": signatures.IMAGES_SIGNATURE, "instances": batch[0][:1].tolist()}
    response = requests.post(server.rest_url + path, json=body, timeout=30)
    assert response.status_code == status
    assert response.json()["error"]


def test_rest_bad_signature_and_shape_are_400_with_an_error(server, batch):
    url = f"{server.rest_url}/v1/models/{MODEL_NAME}:predict"
    wrong_signature = requests.post(url, json={"signature_name": "nope", "instances": [[1]]}, timeout=30)
    wrong_shape = requests.post(
        url,
        json={"signature_name": signatures.IMAGES_SIGNATURE, "instances": np.zeros((1, 27, 28), int).tolist()},
        timeout=30,
    )
    for response in (wrong_signature, wrong_shape):
        assert response.status_code == 400, response.text
        assert response.json()["error"]


def test_grpc_errors_carry_tf_serving_status_codes(clients, batch):
    _, grpc_client = clients
    with pytest.raises(ServingRequestError) as unknown_version:
        grpc_client.predict_images(batch[0][:1], version=99)
    assert unknown_version.value.status == grpc.StatusCode.NOT_FOUND
    with pytest.raises(ServingRequestError) as wrong_shape:
        grpc_client.predict(signatures.IMAGES_SIGNATURE, {signatures.IMAGES_INPUT: np.zeros((1, 28), np.uint8)})
    assert wrong_shape.value.status == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(ServingRequestError) as wrong_signature:
        grpc_client.predict("nope", {signatures.IMAGES_INPUT: batch[0][:1]})
    assert wrong_signature.value.status in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION)
    assert grpc_client.status() == [{"version": 1, "state": "AVAILABLE"}]  # still serving


@pytest.mark.parametrize("kind", ["dev", "tensorflow_model_server"])
def test_hot_swap_to_a_new_version_fails_no_request(kind, tmp_path, exported_model, batch):
    """While clients call both APIs non-stop, version 2 is pushed: it takes over, none fails."""
    base = str(tmp_path / MODEL_NAME)
    publish(exported_model, base, 1)
    srv = start_server(kind, base)
    rest, grpc_client = RestClient(srv.rest_url, MODEL_NAME), GrpcClient(srv.grpc_target, MODEL_NAME)
    stop, failures, served = threading.Event(), [], []

    def call_forever(client):
        while not stop.is_set():
            try:
                prediction = client.predict_images(batch[0][:4])
                if prediction.version:  # gRPC names the answering version; REST does not
                    served.append(prediction.version)
            except Exception as e:  # noqa: BLE001  every failure is the test's business
                failures.append(repr(e))

    threads = [threading.Thread(target=call_forever, args=(c,)) for c in (rest, grpc_client, grpc_client)]
    try:
        for t in threads:
            t.start()
        deadline = time.time() + 60
        while time.time() < deadline and 1 not in served:  # version 1 answered before the swap
            time.sleep(0.1)
        publish(exported_model, base, 2)
        while time.time() < deadline and not (served and served[-1] == 2):
            time.sleep(0.2)
        answered_by_2 = served.count(2)
        while time.time() < deadline and served.count(2) < answered_by_2 + 10:  # keep calling after the swap
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join()
        grpc_client.close()
        try:
            deadline = time.time() + 60  # the old version is unloaded once the new one serves
            status = rest.status()
            while time.time() < deadline and {"version": 1, "state": "AVAILABLE"} in status:
                time.sleep(0.2)
                status = rest.status()
        finally:
            srv.stop()
    assert failures == []
    assert 1 in served and served[-1] == 2, f"versions seen: {sorted(set(served))}"
    assert {"version": 2, "state": "AVAILABLE"} in status
    assert {"version": 1, "state": "AVAILABLE"} not in status
    assert os.path.isdir(os.path.join(base, "1"))  # unloaded from the server, never deleted from disk


@pytest.fixture(scope="module")
def pictures(batch):
    """The first 8 test digits as photos of paper (grey paper, dark ink, off-centre, PNG and
    JPEG), then a blank page."""
    from benchmarks import pictures as suite

    rng = np.random.default_rng(0)
    pages = [suite.Page(paper=200, offset=(0.05, -0.05)), suite.Page(paper=230, jpeg=80, slant=0.1)]
    drawn = [suite.render(d, pages[i % 2], rng) for i, d in enumerate(batch[0][:8])]
    return drawn + suite.blank_pages(1)


def test_predict_pictures_over_both_protocols_equals_the_savedmodel(clients, pictures, exported_model):
    signature = tf.saved_model.load(exported_model).signatures[signatures.PICTURES_SIGNATURE]
    expected = signature(**{signatures.PICTURES_INPUT: tf.constant(pictures)})
    for client in clients:
        prediction = client.predict_pictures(pictures)
        np.testing.assert_allclose(
            prediction.probabilities, expected[signatures.PROBABILITIES_OUTPUT].numpy(), rtol=0, atol=1e-6
        )
        np.testing.assert_array_equal(prediction.images, expected[signatures.SEEN_IMAGES_OUTPUT].numpy())
        assert prediction.digit_found.tolist() == [True] * 8 + [False]
        assert prediction.classes[-1] == signatures.NO_DIGIT_CLASS
        # The same model behind it: the 28x28 images it saw, sent as arrays, get the same answer.
        as_arrays = client.predict_images(prediction.images[:8])
        np.testing.assert_allclose(as_arrays.probabilities, prediction.probabilities[:8], rtol=0, atol=1e-6)


def test_explain_images_over_both_protocols_equals_the_savedmodel(clients, batch, exported_model):
    images = batch[0][:4]
    loaded = tf.saved_model.load(exported_model)
    expected = loaded.signatures[signatures.EXPLAIN_SIGNATURE](images=tf.constant(images))
    for_three = loaded.signatures[signatures.EXPLAIN_TARGETS_SIGNATURE](
        images=tf.constant(images), targets=tf.constant([3] * 4, tf.int64)
    )
    for client in clients:
        explained = client.explain_images(images)
        np.testing.assert_array_equal(explained.targets, expected[signatures.TARGETS_OUTPUT].numpy())
        np.testing.assert_allclose(
            explained.attributions, expected[signatures.ATTRIBUTIONS_OUTPUT].numpy(), rtol=0, atol=1e-6
        )
        chosen = client.explain_images(images, targets=[3] * 4)
        assert chosen.targets.tolist() == [3] * 4
        np.testing.assert_allclose(
            chosen.attributions, for_three[signatures.ATTRIBUTIONS_OUTPUT].numpy(), rtol=0, atol=1e-6
        )


@pytest.mark.parametrize(
    "case, words",
    [
        ("a target outside 0-9", "targets must be classes 0 to 9"),
        ("fewer targets than images", "targets must hold one class per image"),
        ("images of the wrong shape", ""),
    ],
)
def test_bad_explain_requests_are_invalid_argument_and_the_server_keeps_serving(clients, batch, case, words):
    images = batch[0][:2]
    for client in clients:
        with pytest.raises(ServingRequestError) as refused:
            if case == "a target outside 0-9":
                client.explain_images(images, targets=[12, 0])
            elif case == "fewer targets than images":
                client.explain_images(images, targets=[3])
            else:
                client.explain_images(images[:, :14])
        assert refused.value.status in (400, grpc.StatusCode.INVALID_ARGUMENT), (case, refused.value.status)
        assert words in str(refused.value), str(refused.value)
        assert client.explain_images(images).attributions.shape == (2, 28, 28)  # still serving


def test_metadata_lists_the_picture_signature(clients):
    for client in clients:
        defs = client.metadata()["metadata"]["signature_def"]["signature_def"]
        pictures_input = defs[signatures.PICTURES_SIGNATURE]["inputs"][signatures.PICTURES_INPUT]
        assert pictures_input["dtype"] == "DT_STRING"
        assert set(defs[signatures.PICTURES_SIGNATURE]["outputs"]) == {
            signatures.PROBABILITIES_OUTPUT,
            signatures.CLASSES_OUTPUT,
            signatures.SEEN_IMAGES_OUTPUT,
            signatures.DIGIT_FOUND_OUTPUT,
        }


def _png_header_only(height: int, width: int) -> bytes:
    """A PNG signature and IHDR declaring height x width grey pixels, and no pixel data."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


@pytest.mark.parametrize(
    "name, words",
    [
        ("not a picture", "not a PNG, JPEG, BMP or GIF"),
        ("truncated PNG", "Invalid PNG"),
        ("bomb header", "header declares more than"),
        ("an animated GIF", "animated GIF is not accepted"),
        ("1x1", "smaller than"),
    ],
)
def test_bad_pictures_are_invalid_argument_in_plain_words_and_the_server_keeps_serving(clients, pictures, name, words):
    from PIL import Image

    def encoded(make) -> bytes:
        import io

        buffer = io.BytesIO()
        make(buffer)
        return buffer.getvalue()

    frames = [Image.new("L", (32, 32), v) for v in (0, 255)]
    bad = {
        "not a picture": b"%PDF-1.7 this is a document, not a picture",
        "truncated PNG": pictures[0][: len(pictures[0]) // 2],
        "bomb header": _png_header_only(50_000, 50_000),
        "an animated GIF": encoded(lambda b: frames[0].save(b, "GIF", save_all=True, append_images=frames[1:])),
        "1x1": encoded(lambda b: Image.new("L", (1, 1), 255).save(b, "PNG")),
    }[name]
    rest, grpc_client = clients
    for client in clients:
        with pytest.raises(ServingRequestError) as refused:
            client.predict_pictures([pictures[0], bad])
        status = refused.value.status
        assert status in (400, grpc.StatusCode.INVALID_ARGUMENT), (name, status)
        assert words in str(refused.value), str(refused.value)
    assert rest.predict_pictures(pictures[:1]).digit_found.tolist() == [True]  # still serving
