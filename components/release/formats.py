"""Every format the release ships beside the SavedModel, each converted, checked on the test split
against the SavedModel and timed in the same process: release.json's "formats".

- TFLite: dynamic range, float16 and full integer, run by LiteRT (components/release/tflite.py);
- TFLite Micro: the full-integer model as C source, its arena measured and its classes checked by
  TFLite Micro's interpreter against LiteRT's (components/release/micro.py);
- ONNX, run by ONNX Runtime (components/release/onnx_model.py), which the page also runs in the browser.

A format that fails to convert or falls outside its bound is left out of the version directory,
and the record says which and why; the SavedModel's push goes on (it is what TF Serving serves).
A run may ask for fewer formats (`--formats`, modules/push_layout.requested_formats); the record
names those not requested.
Bounds: a file's test accuracy within ACCURACY_BOUND of the SavedModel's; TFLite Micro's classes
LiteRT's on all but ACCURACY_BOUND of the checked digits.
"""

import logging
import os
import time
from typing import Any, Callable, Dict, List, Tuple

import numpy as np
import tensorflow as tf

from components.release import inputs, micro, onnx_model, tflite
from modules import push_layout, signatures

log = logging.getLogger(__name__)

SAVED_MODEL = "saved_model"
MICRO, ONNX = push_layout.TFLITE_MICRO, push_layout.ONNX
ORDER = (SAVED_MODEL, *tflite.KINDS, MICRO, ONNX)
DESCRIPTIONS = {
    SAVED_MODEL: "SavedModel (TF Serving)",
    **tflite.DESCRIPTIONS,
    MICRO: "TFLite Micro (the full-integer model as C source)",
    ONNX: "ONNX",
}
RUNTIMES = {
    SAVED_MODEL: "TensorFlow, in process",
    **{kind: "LiteRT" for kind in tflite.KINDS},
    MICRO: "TFLite Micro's interpreter (reference kernels, on this CPU)",
    ONNX: "ONNX Runtime (CPU)",
}
ACCURACY_BOUND = 0.001  # 0.1 point of test accuracy below the SavedModel's
MICRO_ROWS = 200  # test digits TFLite Micro runs one by one (about 10 ms each here)
LATENCY_BATCHES = (1, 32)
LATENCY_CALLS = {1: 50, 32: 10}  # calls per batch size; the median is reported


def latency_ms(run: Callable[[np.ndarray], Any], inputs: np.ndarray, batches=LATENCY_BATCHES) -> Dict[str, float]:
    """Median milliseconds of run() on the first `batch` rows of inputs, per batch size (one warm-up call each)."""
    result = {}
    for batch in batches:
        rows = inputs[:batch]
        run(rows)
        times = []
        for _ in range(LATENCY_CALLS.get(batch, 10)):
            start = time.perf_counter()
            run(rows)
            times.append(time.perf_counter() - start)
        result[f"batch_{batch}"] = round(1000 * float(np.median(times)), 3)
    return result


def _scored(classes: np.ndarray, labels: np.ndarray, reference_classes: np.ndarray) -> Dict[str, Any]:
    return {
        "accuracy": round(float(np.mean(classes == labels)), 5),
        "same_class_as_saved_model": int(np.sum(classes == reference_classes)),
        "examples": int(len(labels)),
    }


def _within_bound(name: str, entry: Dict[str, Any], saved_model_accuracy: float) -> None:
    if entry["accuracy"] < saved_model_accuracy - ACCURACY_BOUND:
        raise tflite.ConversionError(
            f"{name}: test accuracy {entry['accuracy']:.4f} is more than {ACCURACY_BOUND:.1%} below the "
            f"SavedModel's {saved_model_accuracy:.4f}"
        )


def _batched(run, inputs: np.ndarray, batch: int = 500) -> Dict[str, np.ndarray]:
    parts = [run(inputs[i : i + batch]) for i in range(0, len(inputs), batch)]
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def release_record(
    saved_model_dir: str,
    images: np.ndarray,
    labels: np.ndarray,
    saved_model_probabilities: np.ndarray,
    saved_model_run: Callable[[np.ndarray], Any],
    calibration_images: np.ndarray,
    scratch: str,
    micro_rows: int = MICRO_ROWS,
    loaded=None,
    requested: Tuple[str, ...] = push_layout.FORMATS,
) -> Tuple[Dict[str, Any], Dict[str, str]]:
    """(release.json's "formats", {file name in the version directory: path in scratch}).

    saved_model_probabilities: the SavedModel's answers on images; saved_model_run: a function
    timing it (uint8 images -> anything). calibration_images: training images for the full-integer
    model. micro_rows: test digits TFLite Micro runs. loaded: the SavedModel already loaded (else
    it is loaded from saved_model_dir). requested: the formats to make (push_layout.FORMATS); the
    others are listed under "not_requested". Every requested format is tried; one that fails is
    recorded under "missing" with its reason."""
    loaded = tf.saved_model.load(saved_model_dir) if loaded is None else loaded  # once, for every converter
    reference = np.argmax(saved_model_probabilities, axis=-1)
    saved_accuracy = float(np.mean(reference == labels))
    record: Dict[str, Any] = {
        SAVED_MODEL: {
            "size_bytes": saved_model_bytes(saved_model_dir),
            **_scored(reference, labels, reference),
            "latency_ms": latency_ms(saved_model_run, images),
        },
        "missing": {},
    }
    files: Dict[str, str] = {}
    flatbuffers: Dict[str, bytes] = {}
    int8_inputs: Dict[str, np.ndarray] = {}  # the full-integer model's device inputs, for TFLite Micro too

    not_requested = [name for name in ORDER[1:] if name not in requested]
    if not_requested:
        record["not_requested"] = not_requested

    def attempt(name: str, make: Callable[[], Tuple[Dict[str, Any], Dict[str, str]]]) -> None:
        if name not in requested:
            return
        try:
            entry, written = make()
        except Exception as error:
            text = str(error).strip().splitlines()[0] if str(error).strip() else ""
            if isinstance(error, tflite.ConversionError):  # our own plain words, naming the format
                reason = text
            else:  # a converter's or runtime's error: its type too, and the traceback in the log
                reason = f"{name}: {type(error).__name__}: {text}"
            record["missing"][name] = reason[:500]
            log.warning(
                "format %s is left out: %s", name, reason, exc_info=not isinstance(error, tflite.ConversionError)
            )
            return
        record[name] = entry
        files.update(written)

    def tflite_kind(kind: str):
        def make():
            flatbuffer = tflite.convert(loaded, kind, calibration_images)
            fed = tflite.device_inputs(loaded, flatbuffer, images) if kind == tflite.FULL_INTEGER else images
            run = tflite.runner(flatbuffer, kind)
            entry = {
                "file": tflite.FILES[kind],
                "size_bytes": len(flatbuffer),
                **_scored(_batched(run, fed)[signatures.CLASSES_OUTPUT], labels, reference),
                "latency_ms": latency_ms(run, fed),
            }
            if kind == tflite.FULL_INTEGER:
                scale, zero_point = tflite.input_quantization(flatbuffer)
                entry.update(input_scale=float(scale), input_zero_point=int(zero_point))
                entry["calibration_rows"] = int(len(calibration_images))
            _within_bound(kind, entry, saved_accuracy)
            flatbuffers[kind] = flatbuffer
            if kind == tflite.FULL_INTEGER:
                int8_inputs["test"] = fed
            return entry, {entry["file"]: _write(scratch, entry["file"], flatbuffer)}

        return make

    for kind in tflite.KINDS:
        attempt(kind, tflite_kind(kind))

    def make_micro():
        if tflite.FULL_INTEGER not in flatbuffers:
            reason = record["missing"].get(tflite.FULL_INTEGER, f"{tflite.FULL_INTEGER} not requested")
            raise tflite.ConversionError(f"{MICRO}: no full-integer model ({reason})")
        flatbuffer = flatbuffers[tflite.FULL_INTEGER]
        fed = int8_inputs["test"][:micro_rows]
        arena = micro.arena_bytes(flatbuffer, fed[:1])
        start = time.perf_counter()
        by_micro = micro.predict_classes(flatbuffer, fed, arena)
        per_digit = 1000 * (time.perf_counter() - start) / len(fed)
        by_litert = tflite.predict_classes(flatbuffer, tflite.FULL_INTEGER, fed)
        differ = np.flatnonzero(by_micro != by_litert)
        # TFLite Micro's reference kernels and LiteRT's optimized ones may round an int8 value one
        # step apart, which can flip a close call (one of MNIST's 10,000 test digits, measured by
        # benchmarks/formats.py): up to ACCURACY_BOUND of the digits may differ.
        if len(differ) > ACCURACY_BOUND * len(fed):
            raise tflite.ConversionError(
                f"{MICRO}: {len(differ)} of {len(fed)} classes differ from LiteRT's (at most {ACCURACY_BOUND:.1%})"
            )
        source, header = micro.c_source(flatbuffer)
        entry = {
            "files": [push_layout.MICRO_SOURCE_FILE, push_layout.MICRO_HEADER_FILE],
            "flash_bytes": len(flatbuffer),
            "arena_bytes": arena,
            "same_class_as_litert": int(len(fed) - len(differ)),
            "rows_differing_from_litert": differ[:20].tolist(),
            "examples": int(len(fed)),
            "accuracy": round(float(np.mean(by_micro == labels[:micro_rows])), 5),
            "latency_ms": {"batch_1": round(per_digit, 3)},
        }
        return entry, {
            push_layout.MICRO_SOURCE_FILE: _write(scratch, push_layout.MICRO_SOURCE_FILE, source.encode()),
            push_layout.MICRO_HEADER_FILE: _write(scratch, push_layout.MICRO_HEADER_FILE, header.encode()),
        }

    attempt(MICRO, make_micro)

    def make_onnx():
        model = onnx_model.convert(loaded)
        run = onnx_model.runner(model)
        answers = _batched(run, images)
        entry = {
            "file": push_layout.ONNX_FILE,
            "size_bytes": len(model),
            **_scored(answers[signatures.CLASSES_OUTPUT], labels, reference),
            "max_probability_difference": float(
                np.max(np.abs(answers[signatures.PROBABILITIES_OUTPUT] - saved_model_probabilities))
            ),
            "latency_ms": latency_ms(run, images),
        }
        _within_bound(ONNX, entry, saved_accuracy)
        return entry, {push_layout.ONNX_FILE: _write(scratch, push_layout.ONNX_FILE, model)}

    attempt(ONNX, make_onnx)
    return record, files


def saved_model_bytes(saved_model_dir: str) -> int:
    """The SavedModel's own files (saved_model.pb, fingerprint.pb, variables/, assets/,
    assets.extra/), not the other formats a version directory holds beside it."""
    total = 0
    for name in os.listdir(saved_model_dir):
        path = os.path.join(saved_model_dir, name)
        if os.path.isdir(path) and name in ("variables", "assets", "assets.extra"):
            total += inputs.dir_bytes(path)
        elif name in (push_layout.SAVED_MODEL_FILE, "fingerprint.pb"):
            total += os.path.getsize(path)
    return total


def _write(directory: str, name: str, payload: bytes) -> str:
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(payload)
    return path


def summary_line(record: Dict[str, Any]) -> str:
    """One line for the run summary: the formats shipped, and those missing with their reasons."""
    shipped = [name for name in ORDER[1:] if name in record]
    line = f"formats: {', '.join(shipped) or 'none besides the SavedModel'}"
    missing = record.get("missing") or {}
    if missing:
        line += "; MISSING " + "; ".join(reason for reason in missing.values())
    if record.get("not_requested"):
        line += f"; not requested: {', '.join(record['not_requested'])}"
    return line


TABLE_HEADER = ["format", "file", "size", "test accuracy", "same class", "batch 1 (ms)", "batch 32 (ms)", "notes"]


def _notes(name: str, entry: Dict[str, Any]) -> str:
    if name == MICRO:
        return f"arena {entry['arena_bytes'] / 1024:.0f} KB; classes compared with LiteRT's; {RUNTIMES[name]}"
    if name == ONNX:
        return f"largest probability difference {entry['max_probability_difference']:.1e}"
    if name == tflite.FULL_INTEGER:
        return (
            f"input int8: the Transform's pixels / {entry['input_scale']:.6g} + ({entry['input_zero_point']}); "
            f"calibrated on {entry['calibration_rows']} training images; probabilities before the temperature"
        )
    return RUNTIMES[name]


def table_rows(record: Dict[str, Any]) -> List[List[str]]:
    """TABLE_HEADER rows for the model card and the run report; a missing format's row gives its reason."""
    rows = []
    for name in ORDER:
        entry = record.get(name)
        if entry is None:
            reason = (record.get("missing") or {}).get(name)
            if reason:
                rows.append([DESCRIPTIONS[name], "**missing**", "-", "-", "-", "-", "-", reason])
            continue
        latency = entry.get("latency_ms", {})
        agree = entry.get("same_class_as_saved_model", entry.get("same_class_as_litert"))
        files = entry.get("file") or ", ".join(entry.get("files", [])) or f"{push_layout.SAVED_MODEL_FILE}, variables/"
        rows.append(
            [
                DESCRIPTIONS[name],
                f"`{files}`",
                f"{entry.get('size_bytes', entry.get('flash_bytes')) / 1e6:.2f} MB",
                f"{entry['accuracy']:.4f}",
                f"{agree:,}/{entry['examples']:,}",
                str(latency.get("batch_1", "-")),
                str(latency.get("batch_32", "-")),
                _notes(name, entry),
            ]
        )
    return rows
