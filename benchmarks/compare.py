"""The pipeline against the plain Keras script, side by side in one run, plus a roofline figure.

    python benchmarks/compare.py                     # default configuration (HParams; 20 epochs took ~35 min here)
    python benchmarks/compare.py --epochs 2          # both train for 2 epochs

Writes benchmarks/results/compare.json: wall-time ratio, Trainer vs script training images/s,
the model's training FLOPs per image against a measured tf.matmul GFLOP/s, and the targets.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import tensorflow as tf

from benchmarks import output, pipeline_bench
from modules import cnn
from modules.hparams import HParams

PROJECT = pipeline_bench.PROJECT
RESULTS = pipeline_bench.RESULTS
TARGETS = {"wall_ratio_max": 1.3, "trainer_throughput_ratio_min": 0.9, "other_components_max_seconds": 60}


def forward_flops_per_image() -> int:
    """Multiply-adds x 2 of the convolutions and dense layers (BatchNorm, pooling, ReLU ignored)."""
    model = cnn.build_model(HParams(), steps_per_epoch=1)
    flops = 0
    for layer in model.layers:
        if type(layer).__name__ == "Conv2D":
            _, h, w, c_out = layer.output.shape
            kh, kw, c_in, _ = layer.kernel.shape
            flops += 2 * h * w * kh * kw * c_in * c_out
        elif type(layer).__name__ == "Dense":
            n_in, n_out = layer.kernel.shape
            flops += 2 * n_in * n_out
    return int(flops)


def matmul_gflops(dtype=tf.float32, n: int = 2048, repeats: int = 10) -> float:
    """Best-of-three sustained GFLOP/s of an n x n matmul on this machine (all cores)."""
    a = tf.random.uniform((n, n), dtype=tf.float32)
    a = tf.cast(a, dtype)

    @tf.function
    def work(x):
        for _ in range(repeats):
            x = tf.matmul(x, a) * 1e-3
        return x

    work(a).numpy()  # trace and warm up
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        work(a).numpy()
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 * repeats / best / 1e9


def median_epoch_ratio(trainer_epochs, script_epochs):
    """Script's median epoch seconds over the Trainer's, epochs after the first (tracing, and the
    Trainer's first read of its records): the whole-fit ratio's check against this machine's drift,
    which stretches single epochs by up to 2x. None when either ran only one epoch."""
    if len(trainer_epochs) < 2 or len(script_epochs) < 2:
        return None
    return round(statistics.median(script_epochs[1:]) / statistics.median(trainer_epochs[1:]), 3)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, help="training epochs for both (default: the HParams default)")
    args = p.parse_args(argv)
    shared = ["--epochs", str(args.epochs)] if args.epochs else []
    pipeline = pipeline_bench.run(shared, name="compare_pipeline")
    pipeline_bench.chart(pipeline, os.path.join(RESULTS, "compare_pipeline.png"))
    baseline_json = os.path.join(RESULTS, "compare_keras_baseline.json")
    subprocess.run(
        [sys.executable, os.path.join(PROJECT, "benchmarks", "keras_baseline.py"), "--output", baseline_json, *shared],
        cwd=PROJECT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    with open(baseline_json) as f:
        keras_script = json.load(f)
    flops = forward_flops_per_image()
    train_flops = 3 * flops  # forward + backward (two matmuls per forward one)
    peak = {"float32": round(matmul_gflops(tf.float32), 1), "bfloat16": round(matmul_gflops(tf.bfloat16), 1)}
    trainer_ips = pipeline["trainer"]["train_images_per_second"]
    result = {
        "pipeline": pipeline,
        "keras_script": keras_script,
        "wall_ratio": round(pipeline["wall_seconds"] / keras_script["wall_seconds"], 3),
        "trainer_throughput_ratio": round(trainer_ips / keras_script["train_images_per_second"], 3),
        "trainer_throughput_ratio_median_epoch": median_epoch_ratio(
            pipeline["trainer"]["epoch_seconds"], keras_script["epoch_seconds"]
        ),
        "roofline": {
            "forward_flops_per_image": flops,
            "training_flops_per_image": train_flops,
            "matmul_gflops": peak,
            "trainer_achieved_gflops": round(train_flops * trainer_ips / 1e9, 2),
            "fraction_of_bfloat16_matmul_peak": round(train_flops * trainer_ips / 1e9 / peak["bfloat16"], 3),
            "images_per_second_at_bfloat16_matmul_peak": round(peak["bfloat16"] * 1e9 / train_flops),
        },
        "targets": TARGETS,
    }
    result["meets"] = {
        "wall_ratio": result["wall_ratio"] <= TARGETS["wall_ratio_max"],
        "trainer_throughput_ratio": result["trainer_throughput_ratio"] >= TARGETS["trainer_throughput_ratio_min"],
        "other_components": pipeline["components_except_trainer_seconds"] <= TARGETS["other_components_max_seconds"],
    }
    output.write_json(result, output.result_path("compare.json"))
    print(json.dumps({k: v for k, v in result.items() if k not in ("pipeline", "keras_script")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
