"""Strategy selection for every configuration, and real training under the CPU-runnable ones."""

import json
import os
import subprocess
import sys

import portpicker
import pytest
import tensorflow as tf

from modules import strategy

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "strategy_worker.py")


def _tf_config(workers: int, index: int = 0, chief: bool = False) -> str:
    cluster = {"worker": [f"127.0.0.1:{p}" for p in range(5000, 5000 + workers)]}
    if chief:
        cluster["chief"] = ["127.0.0.1:4999"]
    return json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})


@pytest.mark.parametrize(
    "requested,tpu,tf_config,gpus,expected",
    [
        ("auto", "", None, 0, "default"),
        ("auto", "", None, 1, "one_device"),
        ("auto", "", None, 4, "mirrored"),
        ("auto", "", _tf_config(1), 0, "default"),
        ("auto", "", _tf_config(2), 0, "multi_worker"),
        ("auto", "", _tf_config(2), 8, "multi_worker"),
        ("auto", "my-tpu", None, 0, "tpu"),
        ("auto", "grpc://10.0.0.2:8470", _tf_config(2), 0, "tpu"),
        ("mirrored", "", None, 0, "mirrored"),
        ("default", "", _tf_config(2), 2, "default"),
    ],
)
def test_strategy_kind(requested, tpu, tf_config, gpus, expected):
    assert strategy.strategy_kind(requested, tpu, tf_config, gpus) == expected


def test_chief_is_worker_zero_or_the_chief_task():
    assert strategy.is_chief(None)
    assert strategy.is_chief(_tf_config(2, index=0))
    assert not strategy.is_chief(_tf_config(2, index=1))
    assert not strategy.is_chief(_tf_config(2, index=0, chief=True))


X86_AVX2 = "fpu vme sse sse2 avx f16c fma avx2 bmi2"  # an AMD EPYC's flags, shortened


@pytest.mark.parametrize(
    "flags, expected",
    [
        (X86_AVX2, "float32"),
        (X86_AVX2 + " avx512f avx512bw avx512vl", "float32"),  # AVX-512 without its bfloat16 part
        (X86_AVX2 + " avx512f avx512_bf16", "mixed_bfloat16"),
        (X86_AVX2 + " amx_tile amx_bf16 amx_int8", "mixed_bfloat16"),
        ("fp asimd evtstrm aes sha2 asimddp sve i8mm bf16", "mixed_bfloat16"),  # Arm (Neoverse V1)
        ("fp asimd evtstrm aes crc32", "float32"),
        ("", "float32"),
    ],
)
def test_auto_precision_on_a_cpu_is_bfloat16_only_where_it_is_native(flags, expected):
    cpu = tf.distribute.get_strategy()
    assert strategy.precision_policy("auto", cpu, frozenset(flags.split())) == expected
    assert strategy.precision_policy("float32", cpu, frozenset(flags.split())) == "float32"
    assert strategy.precision_policy("mixed_bfloat16", cpu, frozenset(flags.split())) == "mixed_bfloat16"


def test_cpu_flags_are_read_from_x86_and_arm_cpuinfo(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 amx_bf16\n\nprocessor\t: 1\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd bf16\n")
    assert strategy.cpu_flags(str(x86)) == {"fpu", "avx2", "amx_bf16"}
    assert strategy.cpu_flags(str(arm)) == {"fp", "asimd", "bf16"}
    assert strategy.cpu_flags(str(tmp_path / "missing")) == frozenset()


def test_auto_precision_here_follows_this_cpu():
    native = strategy.native_bfloat16(strategy.cpu_flags())
    expected = "mixed_bfloat16" if native else "float32"
    assert strategy.precision_policy("auto", tf.distribute.get_strategy()) == expected


def test_default_strategy_on_this_cpu():
    assert strategy.choose_strategy() is tf.distribute.get_strategy()


@pytest.mark.timeout(60)
def test_unreachable_tpu_is_a_clear_error():
    # tpu="local" fails fast here (NotFoundError); a grpc address would hang, a name asks GCE metadata.
    with pytest.raises(RuntimeError, match="TPU 'local' could not be reached"):
        strategy.make_strategy("tpu", "local")


def _run_worker(tmp_path, name, args, env=None):
    result = tmp_path / f"{name}.json"
    proc = subprocess.Popen(
        [sys.executable, WORKER, *args, "--result", str(result)],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, result


def _finish(proc, result, timeout=300):
    _, stderr = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, stderr[-3000:]
    return json.loads(result.read_text())


@pytest.mark.timeout(300)
def test_mirrored_over_two_logical_cpus_trains_and_exports(tmp_path, transform_dir):
    export_dir = tmp_path / "export"
    proc, result = _run_worker(
        tmp_path,
        "mirrored",
        ["--strategy", "mirrored", "--logical-cpus", "2", "--tft-dir", transform_dir, "--export-dir", str(export_dir)],
    )
    got = _finish(proc, result)
    assert got["strategy"] == "MirroredStrategy" and got["replicas"] == 2
    assert got["val_accuracy"][-1] > 0.8
    assert (export_dir / "saved_model.pb").is_file()


@pytest.mark.timeout(300)
def test_multi_worker_two_processes_export_one_model(tmp_path, transform_dir):
    ports = [portpicker.pick_unused_port() for _ in range(2)]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    export_dir = tmp_path / "export"
    procs = []
    for index in range(2):
        scratch = tmp_path / f"tmp{index}"
        scratch.mkdir()
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        procs.append(
            _run_worker(
                tmp_path,
                f"worker{index}",
                ["--strategy", "auto", "--tft-dir", transform_dir, "--export-dir", str(export_dir)],
                env={"TF_CONFIG": tf_config, "TMPDIR": str(scratch)},
            )
        )
    chief, other = (_finish(proc, result) for proc, result in procs)
    for got in (chief, other):
        # tf.distribute.MultiWorkerMirroredStrategy's class is named CollectiveAllReduceStrategy.
        assert got["strategy"] == "CollectiveAllReduceStrategy" and got["replicas"] == 2
    assert chief["chief"] and not other["chief"]
    # Synchronous training: gradients are all-reduced, so both workers hold the same trainable
    # weights. BatchNorm's moving statistics are per worker (not synchronized), so evaluation may
    # differ slightly; the chief's model is the one exported.
    assert chief["trainable_checksum"] == pytest.approx(other["trainable_checksum"], rel=1e-6)
    assert chief["val_accuracy"][-1] > 0.8 and other["val_accuracy"][-1] > 0.8
    # Exactly one serving model: the chief's; the other worker's scratch export is gone.
    assert (export_dir / "saved_model.pb").is_file()
    assert not [p for p in (tmp_path / "tmp1").iterdir() if p.name.startswith("worker_export_")]
