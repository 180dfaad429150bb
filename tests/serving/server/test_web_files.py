"""The page's in-browser files: only the runtime's fixed names and the latest version's model.onnx
are served; anything else, or a file that is missing, is a plain 404."""

import http.client
import os
import types

import pytest
import requests

from serving.server import web_files
from serving.server.errors import ServingError, not_found


class _Repository:
    def __init__(self, path):
        self.path = path

    def servable(self, name, version, label):
        if name != "mnist":
            raise not_found(f"Servable not found for request: no model named '{name}'")
        return types.SimpleNamespace(path=self.path, version=7)


@pytest.mark.parametrize(
    "path",
    [
        "/web/ort/../../../setup.py",
        "/web/ort/%2e%2e/setup.py",
        "/web/ort/package.json",
        "/web/ort/",
        "/web/models/mnist/saved_model.pb",
        "/web/models/mnist/../../etc/passwd",
        "/web/models//model.onnx",
        "/web/models/mnist/model.onnx/x",
    ],
)
def test_only_the_fixed_names_are_served(tmp_path, path):
    with pytest.raises(ServingError) as refused:
        web_files.read(path, _Repository(str(tmp_path)))
    assert refused.value.http_status == 404 and "no such page" in refused.value.message


def test_the_latest_version_s_onnx_file_is_served_and_reread_when_it_changes(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"onnx bytes")
    content, content_type, etag = web_files.read("/web/models/mnist/model.onnx", _Repository(str(tmp_path)))
    assert (content, content_type) == (b"onnx bytes", web_files.ONNX_CONTENT_TYPE)
    (tmp_path / "model.onnx").write_bytes(b"other bytes, longer")
    content, _, changed = web_files.read("/web/models/mnist/model.onnx", _Repository(str(tmp_path)))
    assert content == b"other bytes, longer" and changed != etag


def test_a_version_without_onnx_and_an_unknown_model_are_named(tmp_path):
    with pytest.raises(ServingError, match="version 7 of mnist has no model.onnx"):
        web_files.read("/web/models/mnist/model.onnx", _Repository(str(tmp_path)))
    with pytest.raises(ServingError, match="no model named 'other'"):
        web_files.read("/web/models/other/model.onnx", _Repository(str(tmp_path)))


def test_a_missing_runtime_says_how_to_fetch_it(tmp_path, monkeypatch):
    monkeypatch.setattr(web_files, "RUNTIME_DIR", str(tmp_path))
    with pytest.raises(ServingError, match=r"bootstrap.sh --browser fetches it"):
        web_files.read("/web/ort/ort.wasm.min.js", _Repository(str(tmp_path)))


def test_the_server_serves_the_runtime_and_refuses_the_rest(dev_server):
    if not os.path.isfile(os.path.join(web_files.RUNTIME_DIR, "ort.wasm.min.js")):
        pytest.fail("ONNX Runtime Web is not in serving/web/vendor/ort: ./bootstrap.sh --browser fetches it")
    url = dev_server.rest_url + "/web/ort/ort-wasm-simd-threaded.wasm"
    answer = requests.get(url, timeout=30)
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/wasm"
    assert answer.content[:4] == b"\0asm"
    # The browser's copy stays good: asked again with its ETag, the server answers 304 and no body.
    again = requests.get(url, headers={"If-None-Match": answer.headers["ETag"]}, timeout=30)
    assert again.status_code == 304 and again.content == b""
    missing = requests.get(dev_server.rest_url + "/web/models/mnist/model.onnx", timeout=30)
    assert missing.status_code == 404 and "has no model.onnx" in missing.json()["error"]
    # Sent as written (requests would drop the dot segments before they reach the server).
    host, port = dev_server.rest_url.split("//")[1].split(":")
    for path in (
        "/web/ort/../../setup.py",
        "/web/ort/%2e%2e/%2e%2e/setup.py",
        "/web/",
        "/web/models/mnist/variables/variables.index",
    ):
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        connection.request("GET", path)
        assert connection.getresponse().status == 404, path
        connection.close()
