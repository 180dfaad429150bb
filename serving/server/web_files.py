"""The files the draw-a-digit page needs to classify in the browser, served by serving.server:

    GET /web/ort/<file>                 ONNX Runtime Web (from npm at set-up: bootstrap.sh)
    GET /web/models/<name>/model.onnx   the served model's ONNX file (latest available version)

Only the names below are served: a path is looked up in a fixed table, never joined onto a
directory, so no request reaches another file. Nothing is fetched from a CDN. Each file is read
once and kept (a few, at most CACHED_FILES; re-read when it changes on disk), so many clients
share one copy; its ETag lets a browser keep its own and get a 304.
"""

import os
import threading
from collections import OrderedDict
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
CACHED_FILES = 8  # the runtime's three and a few versions' model.onnx

_cache: "OrderedDict[str, Tuple[int, int, bytes]]" = OrderedDict()  # path -> (mtime_ns, size, bytes)
_cache_lock = threading.Lock()


def _read_file(path: str) -> Tuple[bytes, str]:
    """(content, ETag) of a file, from the cache when it has not changed on disk."""
    stat = os.stat(path)  # FileNotFoundError propagates
    with _cache_lock:
        cached = _cache.get(path)
        if cached and cached[:2] == (stat.st_mtime_ns, stat.st_size):
            _cache.move_to_end(path)
            return cached[2], _etag(stat)
    with open(path, "rb") as f:
        content = f.read()
    with _cache_lock:
        _cache[path] = (stat.st_mtime_ns, stat.st_size, content)
        while len(_cache) > CACHED_FILES:
            _cache.popitem(last=False)
    return content, _etag(stat)


def _etag(stat) -> str:
    return f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'


def is_web_file(path: str) -> bool:
    return path.startswith(RUNTIME_PREFIX) or path.startswith(MODELS_PREFIX)


def read(path: str, repository) -> Tuple[bytes, str, str]:
    """(content, content type, ETag) of a /web/ path; ServingError NOT_FOUND (404) in plain words otherwise."""
    if path.startswith(RUNTIME_PREFIX):
        name = path[len(RUNTIME_PREFIX) :]
        if name not in RUNTIME_FILES:
            raise not_found(f"no such page: {path[:200]}")
        try:
            content, etag = _read_file(os.path.join(RUNTIME_DIR, name))
            return content, RUNTIME_FILES[name], etag
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
        content, etag = _read_file(os.path.join(servable.path, ONNX_FILE))
        return content, ONNX_CONTENT_TYPE, etag
    except FileNotFoundError:
        raise not_found(
            f"version {servable.version} of {model} has no {ONNX_FILE} (its release.json says why)"
        ) from None
