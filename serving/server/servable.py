"""One loaded model version: its signatures, checked inputs, and the signature map for metadata."""

import os
import time
from typing import Dict, Optional

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from modules.features import NUM_CLASSES
from modules.signatures import (
    CLASSIFY_CLASSES,
    CLASSIFY_INPUTS,
    CLASSIFY_METHOD,
    CLASSIFY_SCORES,
    DIGIT_FOUND_OUTPUT,
    EXPLAIN_SIGNATURES,
    PROBABILITIES_OUTPUT,
    TARGETS_COUNT_REFUSED,
    TARGETS_INPUT,
    TARGETS_RANGE_REFUSED,
)
from serving.server.errors import ServingError, invalid
from serving.server.metrics import NoMetrics

DEFAULT_SIGNATURE = "serving_default"


def read_signature_defs(path: str) -> Dict[str, meta_graph_pb2.SignatureDef]:
    """The SignatureDefs stored in <path>/saved_model.pb, without TF's internal ones (`__...`)."""
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        saved_model.ParseFromString(f.read())
    signature_defs = saved_model.meta_graphs[0].signature_def
    return {name: signature_defs[name] for name in signature_defs if not name.startswith("__")}


# TensorFlow's C++ names of the dtypes whose Python names differ (TF Serving's messages use them).
_TYPE_NAMES = {"float32": "float", "float64": "double", "float16": "half"}


def refusal(error: Exception) -> str:
    """The plain part of an error the model raised: an in-graph check's own words ("assertion
    failed: [...]") when there is one, else the first line that is not TensorFlow's preamble."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in lines:
        if line.startswith("assertion failed:"):
            return line
    meaningful = [
        line for line in lines if not line.startswith(("Graph execution error", "Detected at node", "<stack", "File "))
    ]
    return (meaningful or lines or [type(error).__name__])[0]


def _check_values(name: str, array: np.ndarray, dtype: tf.dtypes.DType) -> None:
    """Refuses values that would silently change on conversion (wrong kind, out of range)."""
    if dtype == tf.string:
        if array.size and not all(isinstance(v, bytes) for v in array.reshape(-1)):
            raise invalid(f"input '{name}' must hold strings (bytes); got {array.dtype.name} values")
        return
    if array.dtype == object or array.dtype.kind not in "biuf":
        expected = _TYPE_NAMES.get(dtype.name, dtype.name)
        raise invalid(f"input '{name}' must hold numbers; a value is not of expected type: {expected}")
    if dtype.is_integer or dtype.is_bool:
        if array.dtype.kind == "f" and not np.all(np.mod(array, 1) == 0):
            raise invalid(f"input '{name}' has dtype {dtype.name}; got non-integer values")
        if array.size and (array.min() < dtype.min or array.max() > dtype.max):
            raise invalid(f"input '{name}' has dtype {dtype.name}: values must lie in [{dtype.min}, {dtype.max}]")


class Servable:
    def __init__(
        self,
        name: str,
        version: int,
        path: str,
        metrics=None,
        max_rows: Optional[int] = None,
        max_explain_rows: Optional[int] = None,
    ):
        self.name, self.version, self.path = name, version, path
        self.max_rows, self.max_explain_rows = max_rows, max_explain_rows
        self.metrics = metrics or NoMetrics()
        self._loaded = tf.saved_model.load(path)
        self._functions = {k: v for k, v in self._loaded.signatures.items() if not k.startswith("__")}
        self.signature_defs = read_signature_defs(path)

    def _function(self, signature_name: str):
        fn = self._functions.get(signature_name or DEFAULT_SIGNATURE)
        if fn is None:
            raise ServingError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f'Serving signature key "{signature_name}" not found; this model has {sorted(self._functions)}',
            )
        return fn

    def check_method(self, signature_name: str, method_name: str, kind: str) -> None:
        """INVALID_ARGUMENT, in TF Serving's words, when the signature is not of that API's method."""
        self._function(signature_name)  # an unknown signature: FAILED_PRECONDITION, as for Predict
        found = self.signature_defs[signature_name or DEFAULT_SIGNATURE].method_name
        if found != method_name:
            raise invalid(f"Expected {kind} signature method_name to be {method_name}. Was: {found}")

    def check_rows(self, rows: int, signature_name: Optional[str] = None) -> None:
        """Refuses (INVALID_ARGUMENT) a request of more rows than max_rows, or for an explain
        signature (each row a forward and a backward pass over a path of images) max_explain_rows
        (None: no limit), before the model runs."""
        if self.max_rows is not None and rows > self.max_rows:
            raise invalid(
                f"the request holds {rows} rows; this server answers at most {self.max_rows} per request "
                "(--max_batch_rows): send them in smaller requests"
            )
        if signature_name in EXPLAIN_SIGNATURES and self.max_explain_rows is not None and rows > self.max_explain_rows:
            raise invalid(
                f"the request holds {rows} rows; this server explains at most {self.max_explain_rows} per request "
                "(--max_explain_rows): send them in smaller requests"
            )

    def check_classify(self, signature_name: str, rows: int) -> None:
        """What a Classify request must pass before its examples are built: the signature's method
        and the row limit."""
        self.check_method(signature_name, CLASSIFY_METHOD, "classification")
        self.check_rows(rows)

    def classify(self, signature_name: str, serialized_examples) -> "tuple[np.ndarray, np.ndarray]":
        """TF Serving's Classify: serialized tf.Examples -> (class labels [n, k] bytes, scores [n, k])."""
        self.check_classify(signature_name, len(serialized_examples))
        fn = self._function(signature_name)
        started = time.perf_counter()
        try:
            outputs = fn(**{CLASSIFY_INPUTS: tf.constant(list(serialized_examples), tf.string)})
        except (tf.errors.InvalidArgumentError, ValueError) as e:
            raise invalid(f"the model refused the input: {refusal(e)}") from e
        self.metrics.runtime(self.name, "Classify", time.perf_counter() - started)
        scores = outputs[CLASSIFY_SCORES].numpy()
        self.metrics.predictions(self.name, self.version, scores)
        return outputs[CLASSIFY_CLASSES].numpy(), scores

    def input_specs(self, signature_name: str) -> Dict[str, tf.TensorSpec]:
        return dict(self._function(signature_name).structured_input_signature[1])

    def check(self, signature_name: str, inputs: Dict[str, np.ndarray]) -> None:
        """Refuses (INVALID_ARGUMENT) inputs whose names, dtypes or shapes do not fit the signature."""
        specs = self._function(signature_name).structured_input_signature[1]
        missing, extra = sorted(set(specs) - set(inputs)), sorted(set(inputs) - set(specs))
        if missing or extra:
            raise invalid(f"inputs do not match the signature's {sorted(specs)}: missing {missing}, unexpected {extra}")
        for key, spec in specs.items():
            array = inputs[key]
            _check_values(key, array, spec.dtype)
            if not spec.shape.is_compatible_with(array.shape):
                raise invalid(
                    f"input '{key}' has shape {list(array.shape)}; the signature expects "
                    f"{spec.shape.as_list()} (None: any size)"
                )
        if TARGETS_INPUT in specs:  # checked here too, so a bad request never fails a batch it would join
            targets = inputs[TARGETS_INPUT]
            if targets.size and (targets.min() < 0 or targets.max() >= NUM_CLASSES):
                raise invalid(f"{TARGETS_RANGE_REFUSED}: got {sorted(set(targets.reshape(-1).tolist()))[:10]}")
            if any(len(a) != len(targets) for k, a in inputs.items() if k != TARGETS_INPUT and np.ndim(a)):
                raise invalid(TARGETS_COUNT_REFUSED)

    def predict(
        self, signature_name: str, inputs: Dict[str, np.ndarray], output_filter: Optional[list] = None
    ) -> Dict[str, np.ndarray]:
        """Checks names, dtypes and shapes against the signature, then runs it."""
        self.check(signature_name, inputs)
        fn = self._function(signature_name)
        specs = fn.structured_input_signature[1]
        tensors = {key: tf.constant(inputs[key], dtype=spec.dtype) for key, spec in specs.items()}
        started = time.perf_counter()
        try:
            outputs = fn(**tensors)
        except (tf.errors.InvalidArgumentError, ValueError) as e:
            raise invalid(f"the model refused the input: {refusal(e)}") from e
        # A scalar string output comes back from TensorFlow as bytes: keep every output an array.
        arrays = {
            k: np.array(v.numpy(), dtype=object) if v.dtype == tf.string else v.numpy() for k, v in outputs.items()
        }
        self.metrics.runtime(self.name, "Predict", time.perf_counter() - started)
        if PROBABILITIES_OUTPUT in arrays:
            answered = arrays[PROBABILITIES_OUTPUT]
            if DIGIT_FOUND_OUTPUT in arrays:  # a blank page is no prediction of any class
                answered = answered[np.asarray(arrays[DIGIT_FOUND_OUTPUT], bool).reshape(-1)]
            self.metrics.predictions(self.name, self.version, answered)
        return filter_outputs(arrays, output_filter)


def filter_outputs(arrays: Dict[str, np.ndarray], output_filter: Optional[list]) -> Dict[str, np.ndarray]:
    """The outputs gRPC's output_filter names (all when it names none)."""
    if not output_filter:
        return arrays
    unknown = sorted(set(output_filter) - set(arrays))
    if unknown:
        raise invalid(f"output_filter names unknown outputs {unknown}; outputs are {sorted(arrays)}")
    return {k: arrays[k] for k in output_filter}
