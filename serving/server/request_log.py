"""Request logging: sampled Predict calls written as TF Serving `PredictionLog` protos in rotated
TFRecord files, each tagged with the request id its answer carried, so that a label arriving later
can be joined to what the model was asked and what it answered.

Configured per model as TF Serving configures it, in models.config (ModelConfig.logging_config):

    logging_config {
      sampling_config { sampling_rate: 0.1 }
      log_collector_config { type: "tfrecord" filename_prefix: "/logs/mnist/requests" }
    }

Files are `<filename_prefix>-<UTC start time>-<host>-<pid>-<sequence>.tfrecord`, rotated by size and
age (server flags); a name is claimed by creating the file (O_EXCL), so replicas writing to one
volume never open, or truncate, each other's files. TF Serving's open-source build has no log collector to name here
(tensorflow/serving#408, #2223); serving/tools/log_proxy.py gives the real server the same logs.

The request id: TF Serving's LogMetadata has no field for one, and its own logger never fills
`request_origin`, so the id travels there; `request_id()` is the one reader of that choice.

A request never waits for the disk and never fails because of it: records go through a bounded
queue to one writer thread; a full queue or a refused write drops the record and counts it.
"""

import datetime
import itertools
import logging
import os
import queue
import random
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np

log = logging.getLogger(__name__)

COLLECTOR_TYPE = "tfrecord"  # the only log_collector_config.type this server has
FILE_SUFFIX = ".tfrecord"
REQUEST_ID_HEADER = "X-Request-Id"  # REST: a response header; gRPC: trailing metadata, lower-cased
REQUEST_ID_METADATA = REQUEST_ID_HEADER.lower()
# A client's own id (sent as X-Request-Id by a tracing system) is answered back under this name:
# kept for tracing, never the key a label is joined by.
CLIENT_ID_HEADER = "X-Client-Request-Id"
CLIENT_ID_METADATA = CLIENT_ID_HEADER.lower()
_SEQUENCE = itertools.count(1)  # file numbers, shared by every logger of the process
# Replicas sharing a volume may share a process id (each container's server is pid 1): the host
# name (a container's own) keeps their file names apart, and creating a file claims its name.
_HOST = re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname())[:64] or "host"
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
WRITE_PAUSE_SECONDS = 0.05  # the writer thread's rest between bunches of records


def request_id() -> str:
    """The id of one request, the key its logged record and any label sent back are joined by:
    generated here, never taken from the client, so no client can make its request share an id
    with another's and have a label meant for one attached to the other."""
    return uuid.uuid4().hex


def client_request_id(sent) -> Optional[str]:
    """The id a client sent (a tracing system's X-Request-Id), when it is a plain token of at most
    128 characters: answered back as CLIENT_ID_HEADER beside the server's own."""
    return sent if isinstance(sent, str) and _CLIENT_ID.fullmatch(sent) else None


def logged_request_id(prediction_log) -> str:
    """The request id a PredictionLog written here carries."""
    return prediction_log.log_metadata.request_origin


@dataclass(frozen=True)
class LoggingSpec:
    """One model's logging_config: where files go and which share of requests is logged."""

    filename_prefix: str
    sampling_rate: float


def spec_from_config(logging_config, config_dir: str) -> Optional[LoggingSpec]:
    """The LoggingSpec of a ModelConfig.logging_config proto, or None when logging is off (no
    config, or a sampling rate of 0). A relative prefix is relative to the models.config file."""
    collector = logging_config.log_collector_config
    rate = logging_config.sampling_config.sampling_rate
    if not collector.filename_prefix and not rate:
        return None
    if collector.type not in ("", COLLECTOR_TYPE):
        raise ValueError(f"log_collector_config type '{collector.type}' is unknown; this server has '{COLLECTOR_TYPE}'")
    if not 0 <= rate <= 1:
        raise ValueError(f"sampling_rate must lie in [0, 1]; got {rate}")
    if not collector.filename_prefix:
        raise ValueError("logging_config needs log_collector_config { filename_prefix: ... } for its files")
    if rate == 0:
        return None
    prefix = collector.filename_prefix
    return LoggingSpec(prefix if os.path.isabs(prefix) else os.path.join(config_dir, prefix), rate)


@dataclass
class _Record:
    request_id: str
    model_name: str
    version: int
    signature_name: str
    inputs: Dict[str, np.ndarray]
    input_dtypes: Dict[str, object]  # tf.DType of each input, as the signature declares it
    outputs: Dict[str, np.ndarray]
    timestamp: float
    size: int = 0  # bytes its arrays hold: what it costs while queued


def _size(arrays: Dict[str, np.ndarray]) -> int:
    """Bytes the arrays hold (a string array: its strings' lengths, not numpy's pointers)."""
    total = 0
    for array in arrays.values():
        array = np.asarray(array)
        total += sum(len(v) for v in array.reshape(-1)) if array.dtype == object else array.nbytes
    return total


class RequestLogger:
    """One model's request log. `offer` is what a request calls: it decides the sample and queues."""

    def __init__(
        self,
        spec: LoggingSpec,
        metrics,
        model_name: str,
        max_file_bytes: int = 64 << 20,
        max_file_seconds: float = 60.0,
        queue_size: int = 1024,
        queue_bytes: int = 256 << 20,
    ):
        """queue_size and queue_bytes bound what waits for the disk, in records and in the bytes
        their arrays hold: a record past either is dropped and counted (queue_full)."""
        self.spec, self.metrics, self.model_name = spec, metrics, model_name
        self.queue_bytes = queue_bytes
        self._queued_bytes = 0
        self._bytes_lock = threading.Lock()
        self._closed = False  # set by close(): a later offer is counted as dropped, never lost
        self.max_file_bytes, self.max_file_seconds = max_file_bytes, max_file_seconds
        self.written = 0
        self.dropped: Dict[str, int] = {}  # reason -> records dropped
        self._queue: "queue.Queue[Optional[_Record]]" = queue.Queue(maxsize=queue_size)
        self._random = random.Random()
        self._writer = None
        self._file_bytes = 0
        self._file_opened = 0.0
        self._thread = threading.Thread(target=self._run, name=f"request-log-{model_name}", daemon=True)
        self._thread.start()

    def offer(self, request_id, version, signature_name, inputs, input_dtypes, outputs) -> None:
        """Queues one answered request, if sampled. Never blocks, never raises."""
        if self._random.random() >= self.spec.sampling_rate:
            return
        size = _size(inputs) + _size(outputs)
        record = _Record(
            request_id, self.model_name, version, signature_name, inputs, input_dtypes, outputs, time.time(), size
        )
        with self._bytes_lock:  # close() sets _closed under it: no record is queued behind its end mark
            if self._closed:
                reason = "closed"
            elif self._queued_bytes + size > self.queue_bytes:
                reason = "queue_full"
            else:
                try:
                    self._queue.put_nowait(record)
                    self._queued_bytes += size
                    return
                except queue.Full:
                    reason = "queue_full"
        self._drop(reason)

    def _release(self, size: int) -> None:
        with self._bytes_lock:
            self._queued_bytes -= size

    def _drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        self.metrics.request_log_dropped(self.model_name, reason)

    def _run(self) -> None:
        while True:
            try:
                record = self._queue.get(timeout=0.5)
            except queue.Empty:
                self._flush_or_rotate()
                continue
            while record is not None:  # what is queued now, in one go
                self._write_record(record)
                try:
                    record = self._queue.get_nowait()
                except queue.Empty:
                    break
            else:  # None: close() asked to stop
                break
            self._flush_or_rotate()
            # A pause before the next wait: under load records arrive in bunches, so the writer
            # wakes WRITE_PAUSE_SECONDS apart instead of once per request, taking the interpreter
            # lock from the request threads less often (measured: 0.88 of plain throughput with
            # 8 gRPC clients and every request logged, waking per record).
            time.sleep(WRITE_PAUSE_SECONDS)
        self._close()

    def _write_record(self, record: _Record) -> None:
        self._release(record.size)
        try:
            self._write(_prediction_log(record).SerializeToString())
            self.written += 1
            self.metrics.request_log_written(self.model_name)
        except Exception as e:  # noqa: BLE001  the disk refused: drop, count, reopen next time
            self._drop("write_error")
            log.warning("request log of model %s: a record was dropped (%s)", self.model_name, e)
            self._close()

    def _write(self, serialized: bytes) -> None:
        import tensorflow as tf

        if self._writer is None:
            started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S")
            os.makedirs(os.path.dirname(self.spec.filename_prefix) or ".", exist_ok=True)
            while True:  # the name is claimed by creating the file: no other writer's file is reopened
                path = f"{self.spec.filename_prefix}-{started}-{_HOST}-{os.getpid()}-{next(_SEQUENCE):05d}{FILE_SUFFIX}"
                try:
                    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
                    break
                except FileExistsError:
                    continue
            self._writer = tf.io.TFRecordWriter(path)  # opens the empty file this writer just created
            self._file_bytes, self._file_opened = 0, time.monotonic()
        self._writer.write(serialized)
        self._file_bytes += len(serialized) + 16  # TFRecord framing: length, two CRCs

    def _flush_or_rotate(self) -> None:
        """Makes what was written readable; closes a file that is big or old enough."""
        if self._writer is None:
            return
        try:
            if self._file_bytes >= self.max_file_bytes or time.monotonic() - self._file_opened >= self.max_file_seconds:
                self._close()
            else:
                self._writer.flush()
        except Exception as e:  # noqa: BLE001
            log.warning("request log of model %s: flushing failed (%s)", self.model_name, e)
            self._writer = None

    def _close(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            try:
                writer.close()
            except Exception as e:  # noqa: BLE001
                log.warning("request log of model %s: closing a file failed (%s)", self.model_name, e)

    def close(self, timeout: float = 10.0) -> None:
        """Writes what is queued, closes the file and stops the writer; what is offered from now on is
        counted as dropped ("closed")."""
        with self._bytes_lock:
            self._closed = True
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            pass
        self._thread.join(timeout)


def _prediction_log(record: _Record):
    """A TF Serving PredictionLog (request and response) for one answered request."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    entry = prediction_log_pb2.PredictionLog()
    metadata = entry.log_metadata
    metadata.model_spec.name = record.model_name
    metadata.model_spec.version.value = record.version
    metadata.model_spec.signature_name = record.signature_name
    metadata.timestamp_secs = int(record.timestamp)
    metadata.request_origin = record.request_id
    request, response = entry.predict_log.request, entry.predict_log.response
    request.model_spec.CopyFrom(metadata.model_spec)
    response.model_spec.CopyFrom(metadata.model_spec)
    for key, value in record.inputs.items():
        _fill_tensor(request.inputs[key], value, record.input_dtypes.get(key) or tf.as_dtype(np.asarray(value).dtype))
    for key, value in record.outputs.items():
        _fill_tensor(response.outputs[key], value, tf.as_dtype(np.asarray(value).dtype))
    return entry


def _fill_tensor(proto, value, dtype) -> None:
    """A TensorProto of value as dtype, written directly (raw bytes in tensor_content): a fraction
    of tf.make_tensor_proto's cost, which the writer thread pays for every record it writes."""
    array = np.asarray(value)
    proto.dtype = dtype.as_datatype_enum
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    if dtype.name == "string":
        proto.string_val.extend(v if isinstance(v, bytes) else str(v).encode() for v in array.reshape(-1))
    else:
        proto.tensor_content = np.ascontiguousarray(array, dtype.as_numpy_dtype).tobytes()
