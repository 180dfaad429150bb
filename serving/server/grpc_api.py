"""TF Serving's gRPC API: PredictionService.Predict / Classify / Regress (refused: no regression
signature) / GetModelMetadata, ModelService.GetModelStatus and HandleReloadConfigRequest.

Every answer carries the request id the server generated in its trailing metadata (`x-request-id`),
the key of a logged request (serving/server/request_log.py); a caller's own plain `x-request-id` comes
back as `x-client-request-id`."""

import math
import os
import time
from concurrent import futures
from typing import Optional, Tuple

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from modules.signatures import REGRESS_METHOD
from serving.server import rate_limit, request_log, responses
from serving.server.errors import ServingError, invalid
from serving.server.repository import ModelRepository, configs_from_proto
from serving.server.servable import DEFAULT_SIGNATURE


def _version(model_spec) -> Tuple[Optional[int], Optional[str]]:
    """(version, label) a ModelSpec asks for; neither: the newest."""
    if model_spec.HasField("version_label"):
        return None, model_spec.version_label
    return (model_spec.version.value if model_spec.HasField("version") else None), None


def _peer_address(peer: str) -> str:
    """The address in gRPC's peer string ("ipv4:127.0.0.1:5555", "ipv6:%5B::1%5D:5555"), without the port."""
    address = peer.split(":", 1)[1] if ":" in peer else peer
    return address.rsplit(":", 1)[0] if peer.startswith(("ipv4:", "ipv6:")) else address


def _check_rate(limiter: rate_limit.RateLimiter, repository: ModelRepository, context) -> None:
    try:
        limiter.check(limiter.client(_peer_address(context.peer()), dict(context.invocation_metadata())))
    except rate_limit.Throttled as throttled:
        repository.metrics.throttled("GRPC", throttled.limit)
        raise


def _abort_on_error(method):
    """Answers a ServingError with its gRPC code and message; counts and times every call (the
    API label is the method's name, as in TF Serving)."""

    def wrapper(self, request, context):
        started, status = time.perf_counter(), "OK"
        context.request_id = request_log.request_id()
        trailing = [(request_log.REQUEST_ID_METADATA, context.request_id)]
        client_id = request_log.client_request_id(
            dict(context.invocation_metadata()).get(request_log.REQUEST_ID_METADATA)
        )
        if client_id:
            trailing.append((request_log.CLIENT_ID_METADATA, client_id))
        context.set_trailing_metadata(tuple(trailing))
        try:
            if self.rate_limiter:
                _check_rate(self.rate_limiter, self.repository, context)
            return method(self, request, context)
        except ServingError as e:
            status = e.code.name
            context.abort(e.code, e.message)
        except Exception:  # a bug: gRPC answers it UNKNOWN, and so is it counted
            status = grpc.StatusCode.UNKNOWN.name
            raise
        finally:
            model_name = request.model_spec.name if hasattr(request, "model_spec") else ""
            self.repository.count_request(model_name, method.__name__, "GRPC", status, time.perf_counter() - started)

    wrapper.__name__ = method.__name__
    return wrapper


def _example_count(model_input) -> int:
    kind = model_input.WhichOneof("kind")
    if kind is None:
        raise invalid("the request's input holds no examples (example_list or example_list_with_context)")
    return len(getattr(model_input, kind).examples)


def _serialized_examples(model_input, max_bytes: int) -> list:
    """Serialized tf.Examples of a Classify/Regress request's Input; a context that every example
    would copy past max_bytes is refused before any copy is made."""
    kind = model_input.WhichOneof("kind")
    if kind == "example_list":
        return [e.SerializeToString() for e in model_input.example_list.examples]
    if kind == "example_list_with_context":
        shared = model_input.example_list_with_context.context
        count = len(model_input.example_list_with_context.examples)
        if shared.ByteSize() * count > max_bytes:
            raise invalid(
                f"the context shared by {count} examples would be copied into {shared.ByteSize() * count} "
                f"bytes of examples; the limit is {max_bytes}"
            )
        examples = []
        for e in model_input.example_list_with_context.examples:
            merged = tf.train.Example()
            merged.CopyFrom(shared)
            merged.MergeFrom(e)
            examples.append(merged.SerializeToString())
        return examples
    raise invalid("the request's input holds no examples (example_list or example_list_with_context)")


def _ndarray(key: str, proto, max_bytes: int) -> "np.ndarray":
    """A request's TensorProto as an array, refused (INVALID_ARGUMENT) before any allocation when its
    declared shape needs more than max_bytes: a few bytes of proto can declare a tensor of gigabytes
    that TensorFlow would fill from one repeated value."""
    dims = [d.size for d in proto.tensor_shape.dim]
    if any(d < 0 for d in dims):
        raise invalid(f"input '{key}' declares a negative dimension in its shape {dims}")
    try:
        # A string element (size 0 to TensorFlow) costs at least the object pointer numpy holds for it.
        itemsize = tf.as_dtype(proto.dtype).size or 8
    except (TypeError, ValueError) as e:
        raise invalid(f"input '{key}' has an unknown dtype ({proto.dtype})") from e
    needed = math.prod(dims) * itemsize
    if needed > max_bytes:
        raise invalid(
            f"input '{key}' declares shape {dims}: {needed} bytes, more than the {max_bytes} bytes a request may "
            "expand to"
        )
    try:
        return tf.make_ndarray(proto)
    except Exception as e:  # a malformed TensorProto fails in many ways
        raise invalid(f"input '{key}' is not a valid TensorProto: {e}") from e


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(
        self, repository: ModelRepository, max_tensor_bytes: int, rate_limiter: Optional[rate_limit.RateLimiter] = None
    ):
        self.repository = repository
        self.max_tensor_bytes = max_tensor_bytes
        self.rate_limiter = rate_limiter

    @_abort_on_error
    def Predict(self, request, context):
        servable = self.repository.servable(request.model_spec.name, *_version(request.model_spec))
        inputs = {key: _ndarray(key, proto, self.max_tensor_bytes) for key, proto in request.inputs.items()}
        signature = request.model_spec.signature_name
        outputs = self.repository.predict(servable, signature, inputs, list(request.output_filter))
        self.repository.log_request(context.request_id, servable, signature, inputs, outputs)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = signature or DEFAULT_SIGNATURE
        for key, value in outputs.items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response

    @_abort_on_error
    def Classify(self, request, context):
        """TF Serving's Classify: tf.Examples in (example_list, or example_list_with_context whose
        context features every example shares), labels and scores out."""
        servable = self.repository.servable(request.model_spec.name, *_version(request.model_spec))
        servable.check_classify(request.model_spec.signature_name, _example_count(request.input))  # before any is built
        examples = _serialized_examples(request.input, self.max_tensor_bytes)
        classes, scores = servable.classify(request.model_spec.signature_name, examples)
        response = classification_pb2.ClassificationResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        for row_classes, row_scores in zip(classes, scores):
            classification = response.result.classifications.add()
            for label, score in zip(row_classes, row_scores):
                classification.classes.add(label=label.decode("utf-8", "replace"), score=float(score))
        return response

    @_abort_on_error
    def Regress(self, request, context):
        """No model here has a regression signature: TF Serving's refusal for that."""
        servable = self.repository.servable(request.model_spec.name, *_version(request.model_spec))
        servable.check_method(request.model_spec.signature_name, REGRESS_METHOD, "regression")
        raise ServingError(grpc.StatusCode.UNIMPLEMENTED, "Regress is not implemented by this server")

    @_abort_on_error
    def GetModelMetadata(self, request, context):
        unsupported = [f for f in request.metadata_field if f != responses.METADATA_FIELD]
        if unsupported or not request.metadata_field:
            raise invalid(f"metadata_field must be ['{responses.METADATA_FIELD}']; got {list(request.metadata_field)}")
        return responses.model_metadata(self.repository, request.model_spec.name, *_version(request.model_spec))


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(
        self,
        repository: ModelRepository,
        config_dir: str,
        allow_reload: bool = True,
        rate_limiter: Optional[rate_limit.RateLimiter] = None,
    ):
        self.repository = repository
        self.rate_limiter = rate_limiter
        self.config_dir = config_dir  # what relative base paths in a reloaded configuration are relative to
        self.allow_reload = allow_reload

    @_abort_on_error
    def HandleReloadConfigRequest(self, request, context):
        """Applies a new ModelServerConfig (models added, removed, policies and labels changed); an
        error is both the call's status and the response's, as in TF Serving. Turned off
        (--enable_reload_config_request=false): UNIMPLEMENTED. A request log outside the
        configuration's folder is refused: whoever reaches this port cannot make the server write
        files elsewhere."""
        if not self.allow_reload:
            raise ServingError(
                grpc.StatusCode.UNIMPLEMENTED,
                "HandleReloadConfigRequest is turned off on this server (--enable_reload_config_request=false)",
            )
        try:
            models = configs_from_proto(request.config, self.config_dir)
        except ValueError as e:
            raise invalid(f"the configuration is not valid: {e}") from e
        root = os.path.realpath(self.config_dir)
        for model in models:
            # The folder the log's files land in (a prefix names files, not a folder).
            folder = os.path.dirname(os.path.realpath(model.logging.filename_prefix + "-x")) if model.logging else root
            if os.path.commonpath([root, folder]) != root:
                raise invalid(
                    f"the configuration is not valid: model {model.name}'s request log "
                    f"{model.logging.filename_prefix!r} lies outside {root}"
                )
        self.repository.reload(models)
        return model_management_pb2.ReloadConfigResponse()

    @_abort_on_error
    def GetModelStatus(self, request, context):
        return responses.model_status(self.repository, request.model_spec.name, *_version(request.model_spec))


def make_server(
    repository: ModelRepository,
    host: str,
    port: int,
    max_message_bytes: int,
    workers: int = 8,
    max_concurrent_rpcs: Optional[int] = None,
    config_dir: str = ".",
    allow_reload: bool = True,
    rate_limiter: Optional[rate_limit.RateLimiter] = None,
) -> "tuple[grpc.Server, int]":
    """-> (the server, the port it bound: port, or the one the system chose for port 0).
    max_concurrent_rpcs: calls running or queued at once; gRPC answers one more RESOURCE_EXHAUSTED.
    config_dir: relative base paths of a configuration sent to HandleReloadConfigRequest start there.
    allow_reload: False turns HandleReloadConfigRequest off (UNIMPLEMENTED).
    rate_limiter: per-client limits on every call (serving/server/rate_limit.py), or None."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers),
        maximum_concurrent_rpcs=max_concurrent_rpcs,
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
        ],
    )
    # A request may expand to no more than the largest message: a declared shape cannot ask for more.
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(repository, max_message_bytes, rate_limiter), server
    )
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(
        ModelService(repository, config_dir, allow_reload, rate_limiter), server
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"gRPC could not bind {host}:{port}")
    return server, bound
