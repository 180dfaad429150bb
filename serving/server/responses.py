"""Status and metadata answers as TF Serving's protos: the gRPC API sends them, REST prints them as JSON."""

from typing import Optional

from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

from serving.server.repository import ModelRepository

_ERROR_CODES = {"": 0}  # OK; any load error is reported as UNKNOWN (2) with its message
METADATA_FIELD = "signature_def"


def model_status(
    repository: ModelRepository, name: str, version: Optional[int], label: Optional[str] = None
) -> get_model_status_pb2.GetModelStatusResponse:
    response = get_model_status_pb2.GetModelStatusResponse()
    for state in repository.states(name, version, label):
        status = response.model_version_status.add()
        status.version = state.version
        status.state = get_model_status_pb2.ModelVersionStatus.State.Value(state.state)
        status.status.error_code = _ERROR_CODES.get(state.error, 2)
        status.status.error_message = state.error
    return response


def model_metadata(
    repository: ModelRepository, name: str, version: Optional[int], label: Optional[str] = None
) -> get_model_metadata_pb2.GetModelMetadataResponse:
    servable = repository.servable(name, version, label)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = name
    response.model_spec.version.value = servable.version
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for key, signature_def in servable.signature_defs.items():
        signature_map.signature_def[key].CopyFrom(signature_def)
    response.metadata[METADATA_FIELD].Pack(signature_map)
    return response
