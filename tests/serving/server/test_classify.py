"""TF Serving's Classify API on the exported `classify` signature, over REST and gRPC, against each
server kind: the scores equal the Predict probabilities; Regress and a Predict signature given to
Classify are refused with TF Serving's messages."""

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2, prediction_service_pb2_grpc, regression_pb2

from modules import features, signatures
from tests.serving.conftest import MODEL_NAME


@pytest.fixture(scope="module")
def expected(exported_model, test_images_labels):
    images = test_images_labels[0][:5]
    loaded = tf.saved_model.load(exported_model)
    probabilities = loaded.signatures[signatures.IMAGES_SIGNATURE](images=tf.constant(images))
    return images, probabilities[signatures.PROBABILITIES_OUTPUT].numpy()


def test_rest_classify_answers_every_label_with_its_score(server, expected):
    images, probabilities = expected
    answer = requests.post(
        f"{server.rest_url}/v1/models/{MODEL_NAME}:classify",
        json={
            "signature_name": signatures.CLASSIFY_SIGNATURE,
            "examples": [{features.IMAGE_KEY: image.reshape(-1).tolist()} for image in images],
        },
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [[label for label, _ in row] for row in results] == [[str(k) for k in range(10)]] * 5
    np.testing.assert_allclose([[score for _, score in row] for row in results], probabilities, atol=1e-5)


def test_rest_classify_on_a_predict_signature_and_regress_are_refused(server, expected):
    images, _ = expected
    body = {"examples": [{features.IMAGE_KEY: images[0].reshape(-1).tolist()}]}
    wrong = requests.post(f"{server.rest_url}/v1/models/{MODEL_NAME}:classify", json=body, timeout=30)
    assert wrong.status_code == 400
    assert "Expected classification signature method_name to be tensorflow/serving/classify" in wrong.json()["error"]
    regress = requests.post(f"{server.rest_url}/v1/models/{MODEL_NAME}:regress", json=body, timeout=30)
    assert regress.status_code == 400
    assert "Expected regression signature method_name to be tensorflow/serving/regress" in regress.json()["error"]


def _example(image) -> tf.train.Example:
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                features.IMAGE_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=image.reshape(-1).tolist()))
            }
        )
    )


def test_grpc_classify_with_and_without_context_and_regress(server, expected):
    images, probabilities = expected
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = classification_pb2.ClassificationRequest()
        request.model_spec.name, request.model_spec.signature_name = MODEL_NAME, signatures.CLASSIFY_SIGNATURE
        for image in images:
            request.input.example_list.examples.add().CopyFrom(_example(image))
        response = stub.Classify(request, timeout=30)
        scores = [[c.score for c in row.classes] for row in response.result.classifications]
        np.testing.assert_allclose(scores, probabilities, atol=1e-5)
        assert [c.label for c in response.result.classifications[0].classes] == [str(k) for k in range(10)]

        # The image as context shared by two (empty) examples: both get its scores.
        request.input.Clear()
        request.input.example_list_with_context.context.CopyFrom(_example(images[0]))
        request.input.example_list_with_context.examples.add()
        request.input.example_list_with_context.examples.add()
        shared = stub.Classify(request, timeout=30)
        for row in shared.result.classifications:
            np.testing.assert_allclose([c.score for c in row.classes], probabilities[0], atol=1e-5)

        regress = regression_pb2.RegressionRequest()
        regress.model_spec.name, regress.model_spec.signature_name = MODEL_NAME, signatures.CLASSIFY_SIGNATURE
        regress.input.example_list.examples.add().CopyFrom(_example(images[0]))
        with pytest.raises(grpc.RpcError) as refused:
            stub.Regress(regress, timeout=30)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "Expected regression signature method_name to be tensorflow/serving/regress" in refused.value.details()
