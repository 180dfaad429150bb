"""The push directory as TF Serving reads it: the one rule for what a version directory is, the
files a release puts beside the SavedModel, and the models.config written next to the versions.

    <push root>/models.config
    <push root>/<model name>/<version>/saved_model.pb, variables/, model.tflite, model_card.md, release.json
    <push root>/<model name>/.staging-<version>-<host>-<pid>/   (a push in progress: no server loads it)

The release writes this layout and the server reads it; both import this module, which needs
only protobuf and TF Serving's config proto (no TensorFlow), so neither imports the other.
"""

import os
from typing import Callable, Dict, Iterable, Optional, Tuple

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from modules import durable

SAVED_MODEL_FILE = "saved_model.pb"
TFLITE_FILE = "model.tflite"  # dynamic range; the other formats: components/release/formats.py
TFLITE_FLOAT16_FILE = "model_float16.tflite"
TFLITE_INT8_FILE = "model_int8.tflite"
MICRO_SOURCE_FILE = "model_data.cc"  # the full-integer model as a C array, for TFLite Micro
MICRO_HEADER_FILE = "model_data.h"
ONNX_FILE = "model.onnx"
CARD_FILE = "model_card.md"
EXPLANATIONS_FILE = "explanations.png"  # the model card's picture (components/release/explanations.py)
RELEASE_FILE = "release.json"
MODELS_CONFIG_FILE = "models.config"
STAGING_PREFIX = ".staging-"  # hidden and not an integer: TF Serving never loads a half-copied version
VERSIONS_SERVED = 1  # version policy: the newest version only; TF Serving swaps when a newer one loads
# The formats a release can convert beside the SavedModel (components/release/formats.py), by name.
TFLITE, TFLITE_FLOAT16, TFLITE_INT8, TFLITE_MICRO, ONNX = (
    "tflite",
    "tflite_float16",
    "tflite_int8",
    "tflite_micro",
    "onnx",
)
FORMATS = (TFLITE, TFLITE_FLOAT16, TFLITE_INT8, TFLITE_MICRO, ONNX)


def requested_formats(text: str) -> Tuple[str, ...]:
    """A --formats value -> the formats to convert, in FORMATS order: "all", "none" (the SavedModel
    alone) or names separated by commas. ValueError says what is wrong; TFLite Micro's C source is
    the full-integer model, so it cannot be asked for without tflite_int8."""
    text = text.strip()
    if text in ("all", "none"):
        return FORMATS if text == "all" else ()
    names = {name.strip() for name in text.split(",") if name.strip()}
    unknown = sorted(names - set(FORMATS))
    if unknown or not names:
        raise ValueError(f"{text!r}: expected all, none or some of {', '.join(FORMATS)} separated by commas")
    if TFLITE_MICRO in names and TFLITE_INT8 not in names:
        raise ValueError(f"{text!r}: {TFLITE_MICRO} is the {TFLITE_INT8} model as C source; ask for both")
    return tuple(name for name in FORMATS if name in names)


def version_of(name: str) -> Optional[int]:
    """The version a directory name stands for: a positive integer in ASCII digits, else None.
    (str.isdigit alone accepts digits such as '²' or '٣' that int() refuses or reads differently.)"""
    if name.isascii() and name.isdigit() and int(name) > 0:
        return int(name)
    return None


def version_dirs(base_path: str) -> Dict[int, str]:
    """{version: path} of the version directories under base_path: an integer name (version_of)
    and a SavedModel inside. Anything else (staging folders, stray files) is not a version."""
    found = {}
    try:
        names = os.listdir(base_path)
    except (FileNotFoundError, NotADirectoryError):
        return found
    for name in names:
        version, path = version_of(name), os.path.join(base_path, name)
        if version is not None and os.path.isfile(os.path.join(path, SAVED_MODEL_FILE)):
            found[version] = path
    return found


def models_config_path(push_base_dir: str) -> str:
    """models.config sits beside the model's folder: <push root>/models.config."""
    return os.path.join(os.path.dirname(os.path.abspath(push_base_dir)), MODELS_CONFIG_FILE)


def update_models_config(path: str, change: Callable[[Optional[str]], str]) -> str:
    """Reads models.config (None when there is none), writes change(text) in its place, and returns
    it, under an exclusive lock on a file beside it: a release and a label change never interleave
    their reads and writes, so neither writes back a configuration the other has changed meanwhile."""
    import fcntl

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f".{os.path.basename(path)}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            previous = None
            if os.path.exists(path):
                with open(path) as f:
                    previous = f.read()
            text = change(previous)
            durable.replace_file(path, text)
            return text
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def render_models_config(
    models: Iterable[Tuple[str, str]],
    versions_served: int = VERSIONS_SERVED,
    request_log: Optional[Tuple[str, float]] = None,
    previous: Optional[str] = None,
    pushed_version: Optional[int] = None,
) -> str:
    """[(model name, base path)] -> the text of a models.config (a text ModelServerConfig).
    request_log: (folder, sampling rate) turns request logging on (logging_config), each model into
    <folder>/<model name>/requests-*. previous: the text of the models.config this one replaces;
    what an operator set there is kept: a model's logging_config, and its version_labels, which put
    it in canary mode: the policy then serves the labelled versions plus pushed_version, unlabelled
    until `python -m serving.tools.labels canary` labels it (serving/tools/labels.py)."""
    kept = {}
    if previous:
        for old in text_format.Parse(previous, model_server_config_pb2.ModelServerConfig()).model_config_list.config:
            kept[old.name] = old
    config = model_server_config_pb2.ModelServerConfig()
    for name, base_path in models:
        model = config.model_config_list.config.add()
        model.name = name
        model.base_path = base_path
        model.model_platform = "tensorflow"
        model.model_version_policy.latest.num_versions = versions_served
        old = kept.get(name)
        if old is not None and old.HasField("logging_config"):
            model.logging_config.CopyFrom(old.logging_config)
        if old is not None and old.version_labels:
            for label, version in old.version_labels.items():
                model.version_labels[label] = version
            served = set(old.version_labels.values()) | ({pushed_version} if pushed_version else set())
            model.model_version_policy.specific.versions.extend(sorted(served))
        if request_log:
            prefix, rate = request_log
            model.logging_config.log_collector_config.type = "tfrecord"
            model.logging_config.log_collector_config.filename_prefix = os.path.join(prefix, name, "requests")
            model.logging_config.sampling_config.sampling_rate = rate
    return text_format.MessageToString(config)
