"""The REST client for TF Serving's API (the gRPC one with the same interface is grpc_client.py):
status, metadata, predict.

    RestClient("http://127.0.0.1:8501", "mnist").predict_images(images)   # uint8 [n, 28, 28]
    RestClient("http://127.0.0.1:8501", "mnist").predict_pictures([png_bytes, jpeg_bytes])
It raises ServingRequestError carrying the server's status and message. Needs numpy and requests
only: no TensorFlow, so any service can call the model.
"""

import base64
import threading
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np
import requests

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


class ServingRequestError(Exception):
    def __init__(self, status, message: str):
        super().__init__(f"{status}: {message}")
        self.status, self.message = status, message


@dataclass
class Prediction:
    probabilities: np.ndarray  # float32 [n, 10]
    classes: np.ndarray  # int64 [n]
    version: Optional[int]  # the model version that answered (gRPC reports it; REST does not)
    request_id: Optional[str] = None  # the id the server gave the request: the key of a label sent back later
    images: Optional[np.ndarray] = None  # predict_pictures: uint8 [n, 28, 28], what the model saw
    digit_found: Optional[np.ndarray] = None  # predict_pictures: bool [n] (False: class is NO_DIGIT_CLASS)
    attributions: Optional[np.ndarray] = None  # explain_images: float32 [n, 28, 28], integrated gradients
    targets: Optional[np.ndarray] = None  # explain_images: int64 [n], the class each map explains


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
        return self._call_with_id(method, url, payload)[0]

    def _call_with_id(self, method: str, url: str, payload=None):
        """-> (decoded body, the X-Request-Id the server answered with)."""
        response = self._session.request(method, url, json=payload, timeout=self.timeout)
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text[:200]}
        if response.status_code != 200:
            raise ServingRequestError(response.status_code, body.get("error", str(body)))
        return body, response.headers.get("X-Request-Id")

    def status(self, version: Optional[int] = None) -> List[dict]:
        body = self._call("GET", self._model_url(version))
        return [{"version": int(s["version"]), "state": s["state"]} for s in body["model_version_status"]]

    def metadata(self, version: Optional[int] = None) -> dict:
        return self._call("GET", self._model_url(version) + "/metadata")

    def predict(self, signature: str, inputs: dict, version: Optional[int] = None) -> dict:
        """Columnar request ({"inputs": ...}); returns {output name: value} as JSON decoded it."""
        return self._predict(signature, inputs, version)[0]

    def _predict(self, signature: str, inputs: dict, version: Optional[int]):
        body, request_id = self._call_with_id(
            "POST", self._model_url(version) + ":predict", {"signature_name": signature, "inputs": inputs}
        )
        outputs = body["outputs"]
        return (outputs if isinstance(outputs, dict) else {"output": outputs}), request_id

    def predict_images(self, images: np.ndarray, version: Optional[int] = None) -> Prediction:
        inputs = {IMAGES_INPUT: np.asarray(images, np.uint8).tolist()}
        out, request_id = self._predict(IMAGES_SIGNATURE, inputs, version)
        return Prediction(np.array(out[PROBABILITIES], np.float32), np.array(out[CLASSES], np.int64), None, request_id)

    def predict_pictures(self, pictures: Sequence[bytes], version: Optional[int] = None) -> Prediction:
        """Encoded pictures (PNG, JPEG, BMP, GIF file bytes), sent as TF Serving's {"b64": ...}."""
        inputs = {PICTURES_INPUT: [{"b64": base64.b64encode(p).decode("ascii")} for p in pictures]}
        out, request_id = self._predict(PICTURES_SIGNATURE, inputs, version)
        return Prediction(
            np.array(out[PROBABILITIES], np.float32),
            np.array(out[CLASSES], np.int64),
            None,
            request_id,
            np.array(out[SEEN_IMAGES_OUTPUT], np.uint8),
            np.array(out[DIGIT_FOUND_OUTPUT], bool),
        )

    def explain_images(
        self, images: np.ndarray, targets: Optional[Sequence[int]] = None, version: Optional[int] = None
    ) -> Prediction:
        """Integrated gradients of each image's predicted class, or of targets (one class per row)."""
        inputs = {IMAGES_INPUT: np.asarray(images, np.uint8).tolist()}
        if targets is not None:
            inputs[TARGETS_INPUT] = [int(t) for t in targets]
        signature = EXPLAIN_SIGNATURE if targets is None else EXPLAIN_TARGETS_SIGNATURE
        out, request_id = self._predict(signature, inputs, version)
        return Prediction(
            np.array(out[PROBABILITIES], np.float32),
            np.array(out[CLASSES], np.int64),
            None,
            request_id,
            attributions=np.array(out[ATTRIBUTIONS_OUTPUT], np.float32),
            targets=np.array(out[TARGETS_OUTPUT], np.int64),
        )

    def predict_examples(self, serialized: Sequence[bytes], version: Optional[int] = None) -> np.ndarray:
        b64 = [{"b64": base64.b64encode(s).decode("ascii")} for s in serialized]
        return np.array(self.predict(EXAMPLES_SIGNATURE, {EXAMPLES_INPUT: b64}, version)["output"], np.float32)
