"""The gRPC client for TF Serving's API, with the REST client's interface (rest_client.py):

    GrpcClient("127.0.0.1:8500", "mnist").predict_images(images)   # uint8 [n, 28, 28]
    GrpcClient("127.0.0.1:8500", "mnist").predict_pictures([png_bytes, jpeg_bytes])

TF Serving's gRPC messages are built from TensorFlow's own protos (TensorProto lives in the
tensorflow package), so this client loads TensorFlow; use the REST client where that is too heavy.
"""

from typing import Dict, List, Optional, Sequence

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from modules.signatures import (
    ATTRIBUTIONS_OUTPUT,
    DIGIT_FOUND_OUTPUT,
    EXAMPLES_INPUT,
    EXPLAIN_SIGNATURE,
    EXPLAIN_TARGETS_SIGNATURE,
    IMAGES_INPUT,
    IMAGES_SIGNATURE,
    PICTURES_INPUT,
    PICTURES_SIGNATURE,
    SEEN_IMAGES_OUTPUT,
    TARGETS_INPUT,
    TARGETS_OUTPUT,
)
from modules.signatures import CLASSES_OUTPUT as CLASSES
from modules.signatures import PROBABILITIES_OUTPUT as PROBABILITIES
from modules.signatures import SERVING_SIGNATURE as EXAMPLES_SIGNATURE
from serving.clients.rest_client import Prediction, ServingRequestError
from serving.server.request_log import REQUEST_ID_METADATA


class GrpcClient:
    def __init__(self, target: str, model: str, timeout: float = 30.0, max_message_bytes: int = 64 << 20):
        self.model, self.timeout = model, timeout
        self._channel = grpc.insecure_channel(
            target,
            options=[
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.max_receive_message_length", max_message_bytes),
            ],
        )
        self._predict = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def _spec(self, spec, version: Optional[int], signature: str = "") -> None:
        spec.name = self.model
        if version:
            spec.version.value = version
        if signature:
            spec.signature_name = signature

    def _call(self, method, request):
        return self._call_with_id(method, request)[0]

    def _call_with_id(self, method, request):
        """-> (response, the x-request-id of the server's trailing metadata)."""
        try:
            response, call = method.with_call(request, timeout=self.timeout)
        except grpc.RpcError as e:
            raise ServingRequestError(e.code(), e.details()) from e
        return response, dict(call.trailing_metadata() or ()).get(REQUEST_ID_METADATA)

    def status(self, version: Optional[int] = None) -> List[dict]:
        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec, version)
        response = self._call(self._models.GetModelStatus, request)
        return [
            {"version": s.version, "state": get_model_status_pb2.ModelVersionStatus.State.Name(s.state)}
            for s in response.model_version_status
        ]

    def metadata(self, version: Optional[int] = None) -> dict:
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(request.model_spec, version)
        return json_format.MessageToDict(
            self._call(self._predict.GetModelMetadata, request), preserving_proto_field_name=True
        )

    def predict(self, signature: str, inputs: Dict[str, np.ndarray], version: Optional[int] = None):
        """-> ({output name: array}, answering version)."""
        return self._predict_with_id(signature, inputs, version)[:2]

    def _predict_with_id(self, signature: str, inputs: Dict[str, np.ndarray], version: Optional[int]):
        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, version, signature)
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        response, request_id = self._call_with_id(self._predict.Predict, request)
        outputs = {k: tf.make_ndarray(v) for k, v in response.outputs.items()}
        return outputs, response.model_spec.version.value, request_id

    def predict_images(self, images: np.ndarray, version: Optional[int] = None) -> Prediction:
        out, served, request_id = self._predict_with_id(
            IMAGES_SIGNATURE, {IMAGES_INPUT: np.asarray(images, np.uint8)}, version
        )
        return Prediction(out[PROBABILITIES], out[CLASSES], served, request_id)

    def predict_pictures(self, pictures: Sequence[bytes], version: Optional[int] = None) -> Prediction:
        """Encoded pictures (PNG, JPEG, BMP, GIF file bytes) as a string tensor."""
        out, served, request_id = self._predict_with_id(
            PICTURES_SIGNATURE, {PICTURES_INPUT: np.array(list(pictures), dtype=object)}, version
        )
        return Prediction(
            out[PROBABILITIES], out[CLASSES], served, request_id, out[SEEN_IMAGES_OUTPUT], out[DIGIT_FOUND_OUTPUT]
        )

    def explain_images(
        self, images: np.ndarray, targets: Optional[Sequence[int]] = None, version: Optional[int] = None
    ) -> Prediction:
        """Integrated gradients of each image's predicted class, or of targets (one class per row)."""
        inputs = {IMAGES_INPUT: np.asarray(images, np.uint8)}
        if targets is not None:
            inputs[TARGETS_INPUT] = np.asarray(targets, np.int64)
        signature = EXPLAIN_SIGNATURE if targets is None else EXPLAIN_TARGETS_SIGNATURE
        out, served, request_id = self._predict_with_id(signature, inputs, version)
        return Prediction(
            out[PROBABILITIES],
            out[CLASSES],
            served,
            request_id,
            attributions=out[ATTRIBUTIONS_OUTPUT],
            targets=out[TARGETS_OUTPUT],
        )

    def predict_examples(self, serialized: Sequence[bytes], version: Optional[int] = None) -> np.ndarray:
        out, _ = self.predict(EXAMPLES_SIGNATURE, {EXAMPLES_INPUT: np.array(list(serialized), dtype=object)}, version)
        return out[PROBABILITIES]
