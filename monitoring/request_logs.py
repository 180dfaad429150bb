"""Reads the server's request logs (serving/server/request_log.py) back: one row per served image, with the
request id, the version that answered, the image and the probabilities it answered.

Bad files never stop a read: a truncated tail (a file still being written, a crash mid-write), a
record that is not a PredictionLog, a record with no image input: each is skipped, counted in
`LogProblems` and described in plain words; every good record is kept.
"""

import glob
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from modules import features, signatures
from serving.server.request_log import FILE_SUFFIX, logged_request_id


@dataclass
class ServedRows:
    """Parallel arrays, one entry per served image (a request of n images gives n rows)."""

    request_ids: np.ndarray  # str
    rows: np.ndarray  # int: the image's position in its request
    versions: np.ndarray  # int: the model version that answered
    timestamps: np.ndarray  # int: seconds since the epoch, when it was answered
    images: np.ndarray  # uint8 [n, 28, 28]
    probabilities: np.ndarray  # float32 [n, 10]

    def __len__(self) -> int:
        return len(self.request_ids)

    def select(self, mask: np.ndarray) -> "ServedRows":
        return ServedRows(**{k: v[mask] for k, v in vars(self).items()})

    @staticmethod
    def empty() -> "ServedRows":
        return ServedRows(
            np.array([], str),
            np.array([], np.int64),
            np.array([], np.int64),
            np.array([], np.int64),
            np.zeros((0, features.IMAGE_HEIGHT, features.IMAGE_WIDTH), np.uint8),
            np.zeros((0, features.NUM_CLASSES), np.float32),
        )


@dataclass
class LogProblems:
    files: int = 0
    records: int = 0
    truncated_files: int = 0  # files whose tail could not be read (records before it are kept)
    bad_records: int = 0  # records that are not a PredictionLog of a Predict call with images
    other_models: int = 0  # records of another model name, skipped
    messages: List[str] = field(default_factory=list)

    def as_dict(self) -> Dict[str, object]:
        return {**{k: v for k, v in vars(self).items() if k != "messages"}, "messages": self.messages[:20]}


def log_files(prefix: str) -> List[str]:
    """The files a logging_config filename_prefix (or a folder of them) names, oldest first."""
    pattern = os.path.join(prefix, f"*{FILE_SUFFIX}") if os.path.isdir(prefix) else f"{prefix}-*{FILE_SUFFIX}"
    return sorted(glob.glob(pattern))


def _images(predict_log) -> np.ndarray:
    """uint8 [n, 28, 28] from a logged Predict call: the images signature's input, the serialized
    tf.Examples of serving_default, or, for pictures, the 28x28 images the model made of them (its
    `images` output), so the checks judge what the model received."""
    request, response = predict_log.request, predict_log.response
    if signatures.PICTURES_INPUT in request.inputs:
        if signatures.SEEN_IMAGES_OUTPUT not in response.outputs:
            raise ValueError(f"a pictures call logged without its '{signatures.SEEN_IMAGES_OUTPUT}' output")
        images = tf.make_ndarray(response.outputs[signatures.SEEN_IMAGES_OUTPUT])
        return np.asarray(images, np.float64).reshape(-1, features.IMAGE_HEIGHT, features.IMAGE_WIDTH)
    if signatures.IMAGES_INPUT in request.inputs:
        images = tf.make_ndarray(request.inputs[signatures.IMAGES_INPUT])
        return np.asarray(images, np.float64).reshape(-1, features.IMAGE_HEIGHT, features.IMAGE_WIDTH)
    if signatures.EXAMPLES_INPUT in request.inputs:
        rows = []
        for serialized in tf.make_ndarray(request.inputs[signatures.EXAMPLES_INPUT]).reshape(-1):
            example = tf.train.Example.FromString(serialized)
            pixels = example.features.feature[features.IMAGE_KEY].int64_list.value
            rows.append(np.asarray(pixels, np.float64).reshape(features.IMAGE_HEIGHT, features.IMAGE_WIDTH))
        return np.stack(rows) if rows else np.zeros((0, features.IMAGE_HEIGHT, features.IMAGE_WIDTH))
    raise ValueError(
        f"no '{signatures.IMAGES_INPUT}', '{signatures.PICTURES_INPUT}' or '{signatures.EXAMPLES_INPUT}' input"
    )


def read(
    paths: List[str], model_name: str, since: Optional[float] = None, until: Optional[float] = None
) -> "tuple[ServedRows, LogProblems]":
    """The rows of `model_name` answered in [since, until) (seconds since the epoch; None: open)."""
    problems = LogProblems(files=len(paths))
    columns: Dict[str, list] = {k: [] for k in ("request_ids", "rows", "versions", "timestamps", "images", "probs")}
    for path in paths:
        try:
            for raw in tf.data.TFRecordDataset(path).as_numpy_iterator():
                problems.records += 1
                _add(raw, path, model_name, since, until, columns, problems)
        except tf.errors.OpError as e:  # DataLossError (truncated or corrupt framing), unreadable file
            problems.truncated_files += 1
            problems.messages.append(f"{path}: the rest of the file is unreadable ({e.message.splitlines()[0]})")
    if not columns["images"]:
        return ServedRows.empty(), problems
    images = np.concatenate(columns["images"])
    return (
        ServedRows(
            np.concatenate(columns["request_ids"]),
            np.concatenate(columns["rows"]),
            np.concatenate(columns["versions"]),
            np.concatenate(columns["timestamps"]),
            np.clip(images, 0, features.MAX_PIXEL_VALUE).astype(np.uint8),
            np.concatenate(columns["probs"]).astype(np.float32),
        ),
        problems,
    )


@dataclass
class PictureSample:
    """One picture a client sent to the picture signature, and what the model made of it."""

    request_id: str
    row: int  # its position in the request
    picture: bytes  # the encoded picture as received
    image: np.ndarray  # uint8 [28, 28]: what the model saw
    digit_found: bool
    predicted: int  # the class answered (NO_DIGIT_CLASS when no digit was found)


def picture_samples(
    paths: List[str], model_name: str, since: Optional[float] = None, until: Optional[float] = None, limit: int = 12
) -> List[PictureSample]:
    """The first `limit` pictures logged for `model_name` in [since, until), each with the 28x28
    image the model saw; records of other calls, and any that do not decode, are passed over
    (read() counts those)."""
    samples: List[PictureSample] = []
    for path in paths:
        try:
            for raw in tf.data.TFRecordDataset(path).as_numpy_iterator():
                try:
                    samples.extend(_pictures_of(raw, model_name, since, until))
                except Exception:  # noqa: BLE001  an undecodable record: read() counts it
                    continue
                if len(samples) >= limit:
                    return samples[:limit]
        except tf.errors.OpError:  # an unreadable file: read() reports it
            continue
    return samples


def _pictures_of(raw: bytes, model_name: str, since, until) -> List[PictureSample]:
    entry = prediction_log_pb2.PredictionLog.FromString(raw)
    stamp, log = entry.log_metadata.timestamp_secs, entry.predict_log
    if (
        entry.log_metadata.model_spec.name != model_name
        or (since is not None and stamp < since)
        or (until is not None and stamp >= until)
        or signatures.PICTURES_INPUT not in log.request.inputs
    ):
        return []
    pictures = log.request.inputs[signatures.PICTURES_INPUT].string_val
    outputs = {
        name: tf.make_ndarray(log.response.outputs[name])
        for name in (signatures.SEEN_IMAGES_OUTPUT, signatures.DIGIT_FOUND_OUTPUT, signatures.CLASSES_OUTPUT)
    }
    images = outputs[signatures.SEEN_IMAGES_OUTPUT].reshape(len(pictures), features.IMAGE_HEIGHT, features.IMAGE_WIDTH)
    return [
        PictureSample(
            logged_request_id(entry),
            row,
            picture,
            images[row].astype(np.uint8),
            bool(outputs[signatures.DIGIT_FOUND_OUTPUT].reshape(-1)[row]),
            int(outputs[signatures.CLASSES_OUTPUT].reshape(-1)[row]),
        )
        for row, picture in enumerate(pictures)
    ]


def _add(raw: bytes, path: str, model_name: str, since, until, columns, problems: LogProblems) -> None:
    try:
        entry = prediction_log_pb2.PredictionLog.FromString(raw)
        metadata = entry.log_metadata
        if metadata.model_spec.name != model_name:
            problems.other_models += 1
            return
        if (since is not None and metadata.timestamp_secs < since) or (
            until is not None and metadata.timestamp_secs >= until
        ):
            return
        if not entry.HasField("predict_log"):
            raise ValueError("not a Predict call")
        images = _images(entry.predict_log)
        probs = tf.make_ndarray(entry.predict_log.response.outputs[signatures.PROBABILITIES_OUTPUT])
        probs = np.asarray(probs).reshape(len(images), features.NUM_CLASSES)
        kept = np.ones(len(images), bool)
        if signatures.DIGIT_FOUND_OUTPUT in entry.predict_log.response.outputs:  # a blank page is no row
            kept = np.asarray(tf.make_ndarray(entry.predict_log.response.outputs[signatures.DIGIT_FOUND_OUTPUT]), bool)
            kept = kept.reshape(len(images))
    except Exception as e:  # noqa: BLE001  any undecodable record is counted and skipped
        problems.bad_records += 1
        if len(problems.messages) < 20:
            problems.messages.append(f"{path}: a record was skipped ({type(e).__name__}: {str(e)[:200]})")
        return
    n = int(kept.sum())
    columns["request_ids"].append(np.full(n, logged_request_id(entry), dtype=object).astype(str))
    columns["rows"].append(np.arange(len(images))[kept])  # a row keeps its index in the request
    columns["versions"].append(np.full(n, metadata.model_spec.version.value))
    columns["timestamps"].append(np.full(n, metadata.timestamp_secs))
    columns["images"].append(images[kept])
    columns["probs"].append(probs[kept])
