"""Python clients for TF Serving's two APIs, with one interface: status, metadata, predict.

    RestClient("http://127.0.0.1:8501", "mnist").predict_images(images)   # uint8 [n, 28, 28]
    GrpcClient("127.0.0.1:8500", "mnist").predict_images(images)
Both raise ServingRequestError carrying the server's status and message.
"""
import base64
import threading
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import grpc
import numpy as np
import requests
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from modules.export import CLASSES_OUTPUT as CLASSES
from modules.export import EXAMPLES_INPUT, IMAGES_INPUT, IMAGES_SIGNATURE
from modules.export import PROBABILITIES_OUTPUT as PROBABILITIES
from modules.export import SERVING_SIGNATURE as EXAMPLES_SIGNATURE


class ServingRequestError(Exception):
    def __init__(self, status, message: str):
        super().__init__(f"{status}: {message}")
        self.status, self.message = status, message


@dataclass
class Prediction:
    probabilities: np.ndarray  # float32 [n, 10]
    classes: np.ndarray  # int64 [n]
    version: Optional[int]  # the model version that answered (gRPC reports it; REST does not)


class RestClient:
    def __init__(self, url: str, model: str, timeout: float = 30.0):
        self.url, self.model, self.timeout = url.rstrip("/"), model, timeout
        self._local = threading.local()  # one keep-alive session per thread

    @property
    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def _model_url(self, version: Optional[int]) -> str:
        return f"{self.url}/v1/models/{self.model}" + (f"/versions/{version}" if version else "")

    def _call(self, method: str, url: str, payload=None) -> dict:
        response = self._session.request(method, url, json=payload, timeout=self.timeout)
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text[:200]}
        if response.status_code != 200:
            raise ServingRequestError(response.status_code, body.get("error", str(body)))
        return body

    def status(self, version: Optional[int] = None) -> List[dict]:
        body = self._call("GET", self._model_url(version))
        return [{"version": int(s["version"]), "state": s["state"]} for s in body["model_version_status"]]

    def metadata(self, version: Optional[int] = None) -> dict:
        return self._call("GET", self._model_url(version) + "/metadata")

    def predict(self, signature: str, inputs: dict, version: Optional[int] = None) -> dict:
        """Columnar request ({"inputs": ...}); returns {output name: value} as JSON decoded it."""
        body = self._call("POST", self._model_url(version) + ":predict",
                          {"signature_name": signature, "inputs": inputs})
        outputs = body["outputs"]
        return outputs if isinstance(outputs, dict) else {"output": outputs}

    def predict_images(self, images: np.ndarray, version: Optional[int] = None) -> Prediction:
        out = self.predict(IMAGES_SIGNATURE, {IMAGES_INPUT: np.asarray(images, np.uint8).tolist()}, version)
        return Prediction(np.array(out[PROBABILITIES], np.float32), np.array(out[CLASSES], np.int64), None)

    def predict_examples(self, serialized: Sequence[bytes], version: Optional[int] = None) -> np.ndarray:
        b64 = [{"b64": base64.b64encode(s).decode("ascii")} for s in serialized]
        return np.array(self.predict(EXAMPLES_SIGNATURE, {EXAMPLES_INPUT: b64}, version)["output"], np.float32)


class GrpcClient:
    def __init__(self, target: str, model: str, timeout: float = 30.0, max_message_bytes: int = 64 << 20):
        self.model, self.timeout = model, timeout
        self._channel = grpc.insecure_channel(target, options=[
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes)])
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
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as e:
            raise ServingRequestError(e.code(), e.details()) from e

    def status(self, version: Optional[int] = None) -> List[dict]:
        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec, version)
        response = self._call(self._models.GetModelStatus, request)
        return [{"version": s.version, "state": get_model_status_pb2.ModelVersionStatus.State.Name(s.state)}
                for s in response.model_version_status]

    def metadata(self, version: Optional[int] = None) -> dict:
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(request.model_spec, version)
        return json_format.MessageToDict(self._call(self._predict.GetModelMetadata, request),
                                         preserving_proto_field_name=True)

    def predict(self, signature: str, inputs: Dict[str, np.ndarray], version: Optional[int] = None):
        """-> ({output name: array}, answering version)."""
        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, version, signature)
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        response = self._call(self._predict.Predict, request)
        outputs = {k: tf.make_ndarray(v) for k, v in response.outputs.items()}
        return outputs, response.model_spec.version.value

    def predict_images(self, images: np.ndarray, version: Optional[int] = None) -> Prediction:
        out, served = self.predict(IMAGES_SIGNATURE, {IMAGES_INPUT: np.asarray(images, np.uint8)}, version)
        return Prediction(out[PROBABILITIES], out[CLASSES], served)

    def predict_examples(self, serialized: Sequence[bytes], version: Optional[int] = None) -> np.ndarray:
        out, _ = self.predict(EXAMPLES_SIGNATURE, {EXAMPLES_INPUT: np.array(list(serialized), dtype=object)}, version)
        return out[PROBABILITIES]
