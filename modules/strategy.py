"""Chooses the tf.distribute strategy and the compute precision (no tfx, no Keras).

Selection, when HParams.strategy is "auto":
  TPUStrategy                  HParams.tpu names a TPU (TPUClusterResolver)
  MultiWorkerMirroredStrategy  TF_CONFIG's cluster has more than one worker (chief included)
  MirroredStrategy             more than one GPU is visible
  OneDeviceStrategy            exactly one GPU
  default strategy             otherwise (this CPU)
"""

import json
import os
from typing import Optional

import tensorflow as tf


def cluster_size(tf_config: Optional[str]) -> int:
    """Number of training tasks (chief + workers) in a TF_CONFIG JSON string."""
    if not tf_config:
        return 0
    cluster = json.loads(tf_config).get("cluster", {})
    return len(cluster.get("chief", [])) + len(cluster.get("worker", []))


def strategy_kind(requested: str, tpu: str, tf_config: Optional[str], num_gpus: int) -> str:
    """The strategy to build, from the request and what this process can see."""
    if requested != "auto":
        return requested
    if tpu:
        return "tpu"
    if cluster_size(tf_config) > 1:
        return "multi_worker"
    if num_gpus > 1:
        return "mirrored"
    if num_gpus == 1:
        return "one_device"
    return "default"


def make_strategy(kind: str, tpu: str = "") -> tf.distribute.Strategy:
    """Builds the strategy. MultiWorkerMirroredStrategy must come before TensorFlow's runtime
    starts (listing logical devices starts it), so only the branches that need devices list them."""
    if kind == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or None)
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except Exception as e:  # ValueError, URLError, NotFoundError... depending on tpu
            raise RuntimeError(f"TPU {tpu!r} could not be reached: {type(e).__name__}: {e}") from e
        return tf.distribute.TPUStrategy(resolver)
    if kind == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if kind == "mirrored":
        # Without GPUs, mirror over the logical CPUs (tests configure two of them).
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices)
    if kind == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if kind == "default":
        return tf.distribute.get_strategy()
    raise ValueError(f"unknown strategy {kind!r}")


def choose_strategy(requested: str = "auto", tpu: str = "") -> tf.distribute.Strategy:
    # Physical devices: listing them does not start the runtime (logical devices would).
    kind = strategy_kind(requested, tpu, os.environ.get("TF_CONFIG"), len(tf.config.list_physical_devices("GPU")))
    return make_strategy(kind, tpu)


def is_chief(tf_config: Optional[str]) -> bool:
    """Whether this task writes the model: the chief, or worker 0 when there is no chief."""
    if cluster_size(tf_config) <= 1:
        return True
    config = json.loads(tf_config)
    task = config.get("task", {})
    if config["cluster"].get("chief"):
        return task.get("type") == "chief"
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0


# CPU flags (Linux /proc/cpuinfo) of instructions that compute bfloat16 natively: x86's AVX512-BF16
# and AMX, Arm's BF16 extension. Without them bfloat16 is emulated: on an AMD EPYC with AVX2 only,
# benchmarks/precision_bench.py trained the CNN at 60.5 images/s in mixed_bfloat16, 592 in float32.
NATIVE_BFLOAT16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
CPUINFO = "/proc/cpuinfo"


def cpu_flags(cpuinfo: str = CPUINFO) -> frozenset:
    """The first processor's feature flags (x86 "flags", Arm "Features"); empty where the file is
    missing (not Linux) or unreadable."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def native_bfloat16(flags: frozenset) -> bool:
    """Whether a CPU with these flags computes bfloat16 in hardware."""
    return bool(NATIVE_BFLOAT16_FLAGS & flags)


def precision_policy(requested: str, strategy: tf.distribute.Strategy, flags: Optional[frozenset] = None) -> str:
    """auto: mixed_bfloat16 on TPUs, mixed_float16 on GPUs, and on CPUs mixed_bfloat16 only where
    the CPU computes bfloat16 natively (flags, default this machine's), float32 elsewhere."""
    if requested != "auto":
        return requested
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "mixed_bfloat16"
    if tf.config.list_logical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16" if native_bfloat16(cpu_flags() if flags is None else flags) else "float32"
