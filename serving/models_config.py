"""TF Serving's models.config (a text ModelServerConfig): which models, where, which versions.

The Pusher writes one beside the pushed versions; serving/deploy/models.config is the same text
for the container's paths (a test keeps them equal).
"""
from typing import Iterable, Tuple

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

VERSIONS_SERVED = 1  # version policy: the newest version only; TF Serving swaps when a newer one loads


def render(models: Iterable[Tuple[str, str]], versions_served: int = VERSIONS_SERVED) -> str:
    """[(model name, base path)] -> the text of a models.config."""
    config = model_server_config_pb2.ModelServerConfig()
    for name, base_path in models:
        model = config.model_config_list.config.add()
        model.name = name
        model.base_path = base_path
        model.model_platform = "tensorflow"
        model.model_version_policy.latest.num_versions = versions_served
    return text_format.MessageToString(config)
