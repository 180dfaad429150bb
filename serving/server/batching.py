"""Server-side batching, as TF Serving's --enable_batching with its BatchingParameters text proto:

    max_batch_size { value: 64 }          rows in one model call at most
    batch_timeout_micros { value: 2000 }  how long the first request of a batch waits for company
    max_enqueued_batches { value: 100 }   queued work beyond this answers UNAVAILABLE, as TF Serving does
    num_batch_threads { value: 2 }        batches run at once

Predict calls on the same model version and signature are queued; a batch thread takes the oldest,
adds the ones that arrive within the timeout (up to max_batch_size rows), runs one model call on
their inputs stacked along the first axis, and hands each caller its own rows. Requests whose
inputs cannot be stacked with the batch's (another shape beyond the first axis) run on their own.
"""

import queue
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import grpc
import numpy as np

from serving.server.errors import ServingError


@dataclass(frozen=True)
class BatchingParameters:
    max_batch_size: int = 1000  # TF Serving's defaults
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 1000000
    num_batch_threads: int = 4


_FIELD = re.compile(r"(\w+)\s*(?::\s*(\w+)|\{\s*value\s*:\s*(\d+)\s*\})")
_NUMBERS = ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads")


def read_parameters(path: Optional[str]) -> BatchingParameters:
    """The file's BatchingParameters (TF Serving's text proto: `name { value: N }` wrappers; fields
    it does not set keep TF Serving's defaults). The pip package of TF Serving's APIs does not ship
    this proto, hence the small reader. Fields this server does not implement are refused in plain
    words, not ignored (pad_variable_length_inputs: false, the default, is accepted)."""
    if not path:
        return BatchingParameters()
    with open(path) as f:
        text = re.sub(r"#.*", "", f.read())
    fields = _FIELD.findall(text)
    if _FIELD.sub("", text).strip():
        raise ValueError(f"{path}: not a BatchingParameters text proto: {_FIELD.sub('', text).strip()[:80]!r}")
    values, unsupported = {}, []
    for name, flag, number in fields:
        if name in _NUMBERS and number:
            values[name] = int(number)
        elif not (name == "pad_variable_length_inputs" and flag == "false"):
            unsupported.append(name)
    if unsupported:
        raise ValueError(f"{path}: batching parameters {sorted(set(unsupported))} are not supported by this server")
    if any(v <= 0 for k, v in values.items() if k != "batch_timeout_micros"):
        raise ValueError(f"{path}: sizes and thread counts must be positive; got {values}")
    return BatchingParameters(**values)


@dataclass
class _Task:
    servable: object
    inputs: Dict[str, np.ndarray]
    rows: int
    done: threading.Event = field(default_factory=threading.Event)
    outputs: Optional[Dict[str, np.ndarray]] = None
    error: Optional[BaseException] = None


class Batcher:
    """One queue per (servable, signature); num_batch_threads threads serve all of them."""

    def __init__(self, parameters: BatchingParameters):
        self.parameters = parameters
        self._queues: Dict[tuple, "queue.Queue[_Task]"] = {}
        self._ready: "queue.Queue[tuple]" = queue.Queue()  # keys with work waiting
        self._lock = threading.Lock()
        self.batches = 0  # model calls made, for tests and logs
        self.rows = 0  # rows those calls held (benchmarks/batching_bench.py: rows per call)
        for i in range(parameters.num_batch_threads):
            threading.Thread(target=self._run, name=f"batch-{i}", daemon=True).start()

    def predict(self, servable, signature: str, inputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """The servable's answer for these inputs, computed in a batch with others when possible."""
        servable.check(signature, inputs)  # a bad request fails alone, never the batch it would join
        rows = {len(v) if np.ndim(v) else -1 for v in inputs.values()}
        if len(rows) != 1 or -1 in rows:  # no common first axis: nothing to stack on
            return servable.predict(signature, inputs)
        key = (servable.name, servable.version, signature)
        with self._lock:
            pending = self._queues.setdefault(key, queue.Queue())
        if pending.qsize() >= self.parameters.max_enqueued_batches * self.parameters.max_batch_size:
            raise ServingError(
                grpc.StatusCode.UNAVAILABLE,
                "The batch scheduling queue to which this task was submitted is full",
            )
        task = _Task(servable, inputs, rows.pop())
        pending.put(task)
        self._ready.put(key)
        task.done.wait()
        if task.error is not None:
            raise task.error
        return task.outputs

    def _take(self, key) -> List[_Task]:
        """The oldest task of the key's queue and those that join it within the timeout."""
        pending = self._queues[key]
        try:
            first = pending.get_nowait()
        except queue.Empty:
            return []  # another thread took it
        batch, rows = [first], first.rows
        deadline = time.perf_counter() + self.parameters.batch_timeout_micros / 1e6
        while rows < self.parameters.max_batch_size:
            remaining = deadline - time.perf_counter()
            try:
                task = pending.get(timeout=remaining) if remaining > 0 else pending.get_nowait()
            except queue.Empty:
                break
            if rows + task.rows > self.parameters.max_batch_size or not _stackable(first, task):
                pending.put(task)  # the next batch's (order within a queue is not a promise)
                self._ready.put(key)
                break
            batch.append(task)
            rows += task.rows
        return batch

    def _run(self) -> None:
        while True:
            key = self._ready.get()
            batch = self._take(key)
            if not batch:
                continue
            servable, signature = batch[0].servable, key[2]
            try:
                if len(batch) == 1:
                    batch[0].outputs = servable.predict(signature, batch[0].inputs)
                else:
                    stacked = {k: np.concatenate([t.inputs[k] for t in batch]) for k in batch[0].inputs}
                    outputs = servable.predict(signature, stacked)
                    start = 0
                    for task in batch:
                        task.outputs = {k: v[start : start + task.rows] for k, v in outputs.items()}
                        start += task.rows
                self.batches += 1
                self.rows += sum(task.rows for task in batch)
            except BaseException as e:  # noqa: BLE001  each caller gets the error as its own
                for task in batch:
                    task.error = e
            for task in batch:
                task.done.set()


def _stackable(a: _Task, b: _Task) -> bool:
    return (
        a.servable is b.servable
        and a.inputs.keys() == b.inputs.keys()
        and all(
            a.inputs[k].shape[1:] == b.inputs[k].shape[1:] and a.inputs[k].dtype == b.inputs[k].dtype for k in a.inputs
        )
    )
