"""The files the draw-a-digit page needs to classify in the browser, served by serving.server:

    GET /web/ort/<file>                 ONNX Runtime Web (from npm at set-up: bootstrap.sh)
    GET /web/models/<name>/model.onnx   the served model's ONNX file (latest available version)

Only the names below are served: a path is looked up in a fixed table, never joined onto a
directory, so no request reaches another file. Nothing is fetched from a CDN.
"""

import os
from typing import Tuple

from modules.push_layout import ONNX_FILE
from serving.server.errors import not_found

RUNTIME_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "web", "vendor", "ort")
RUNTIME_PREFIX = "/web/ort/"
MODELS_PREFIX = "/web/models/"
# ONNX Runtime Web's WebAssembly build: the loader, its module and the module's worker script.
RUNTIME_FILES = {
    "ort.wasm.min.js": "text/javascript; charset=utf-8",
    "ort-wasm-simd-threaded.mjs": "text/javascript; charset=utf-8",
    "ort-wasm-simd-threaded.wasm": "application/wasm",
}
ONNX_CONTENT_TYPE = "application/octet-stream"


def is_web_file(path: str) -> bool:
    return path.startswith(RUNTIME_PREFIX) or path.startswith(MODELS_PREFIX)


def read(path: str, repository) -> Tuple[bytes, str]:
    """(content, content type) of a /web/ path; ServingError NOT_FOUND (404) in plain words otherwise."""
    if path.startswith(RUNTIME_PREFIX):
        name = path[len(RUNTIME_PREFIX) :]
        if name not in RUNTIME_FILES:
            raise not_found(f"no such page: {path[:200]}")
        try:
            with open(os.path.join(RUNTIME_DIR, name), "rb") as f:
                return f.read(), RUNTIME_FILES[name]
        except FileNotFoundError:
            raise not_found(
                f"the in-page runtime is not installed ({name} missing from serving/web/vendor/ort): "
                "./bootstrap.sh --browser fetches it"
            ) from None
    model, _, file_name = path[len(MODELS_PREFIX) :].partition("/")
    if file_name != ONNX_FILE or not model:
        raise not_found(f"no such page: {path[:200]}")
    servable = repository.servable(model, None, None)  # the latest available version, or TF Serving's 404
    try:
        with open(os.path.join(servable.path, ONNX_FILE), "rb") as f:
            return f.read(), ONNX_CONTENT_TYPE
    except FileNotFoundError:
        raise not_found(
            f"version {servable.version} of {model} has no {ONNX_FILE} (its release.json says why)"
        ) from None
