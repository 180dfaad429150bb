"""Serving fixtures: servers on 127.0.0.1 over a push directory holding the real exported model.

`start_server` starts this project's server, or the real `tensorflow_model_server` when the test
asks for it and it is on PATH; both take the same command line.
"""

import shutil

import pytest

from components.release import safe_push
from pipeline import configs
from serving.tools.process import ServerProcess

MODEL_NAME = configs.MODEL_NAME
SERVER_KINDS = ["dev", "tensorflow_model_server"]


def publish(model_dir: str, base_path: str, version: int, extra_files=None) -> str:
    """Places a complete copy at <base_path>/<version> in one rename, as the pipeline's push does
    (extra_files: {name in the version directory: path}, as a release adds them)."""
    return safe_push.push(model_dir, base_path, extra_files or {}, version=version)


def start_server(kind: str, base_path: str, *extra: str) -> ServerProcess:
    """kind "dev": serving.server; "tensorflow_model_server": the real one, skipped when not on PATH."""
    binary = None
    if kind == "tensorflow_model_server":
        binary = shutil.which("tensorflow_model_server")
        if binary is None:
            pytest.skip("tensorflow_model_server is not on PATH: the contract ran against serving.server only")
    return ServerProcess(base_path, MODEL_NAME, *extra, binary=binary)


@pytest.fixture(scope="module", params=SERVER_KINDS)
def server(request, tmp_path_factory, exported_model):
    """A server of each kind over a push directory holding version 1."""
    base = str(tmp_path_factory.mktemp("push") / MODEL_NAME)
    publish(exported_model, base, 1)
    srv = start_server(request.param, base)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory, exported_model):
    """This project's server alone, with a small body limit (1 MiB) for the oversized cases."""
    base = str(tmp_path_factory.mktemp("push_dev") / MODEL_NAME)
    publish(exported_model, base, 1)
    srv = start_server("dev", base, f"--max_request_bytes={1 << 20}")
    yield srv
    srv.stop()
