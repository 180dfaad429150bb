"""The whole local pipeline, timed: each component's wall time from ML Metadata, start-up
overhead, peak memory, Trainer throughput. Writes JSON and a PNG bar chart.

    python benchmarks/pipeline_bench.py                      # default configuration, full data
    python benchmarks/pipeline_bench.py -- --epochs 2        # anything after -- goes to local_runner

Each run starts from an empty output root (nothing cached) under benchmarks/results/.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time

from matplotlib.figure import Figure

from benchmarks import output
from components import tfx_files
from modules import export
from pipeline.configs import PROJECT_ROOT as PROJECT

RESULTS = output.RESULTS


def run(runner_args=(), name: str = "pipeline_bench") -> dict:
    output_root = os.path.join(RESULTS, f"{name}_run")
    shutil.rmtree(output_root, ignore_errors=True)
    command = [
        sys.executable,
        os.path.join(PROJECT, "pipeline", "local_runner.py"),
        "--output-root",
        output_root,
        "--serving-dir",
        os.path.join(output_root, "serving_model", "mnist"),
        *runner_args,
    ]
    started = time.time()
    proc = subprocess.run(command, cwd=PROJECT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.time() - started
    # ru_maxrss of the children: the runner process, where Beam (in_memory) and training run.
    peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    with open(os.path.join(output_root, "summary.json")) as f:
        summary = json.load(f)
    if summary.get("error"):
        raise RuntimeError(f"the pipeline failed: {summary['error']}\n{proc.stderr[-3000:]}")
    components = {n: c["wall_seconds"] for n, c in summary["components"].items()}
    model_uri = summary["artifacts"]["Trainer.Model"]
    record = export.read_training_record(tfx_files.serving_model_path(model_uri))
    epochs_run = len(record["history"]["loss"])
    return {
        "command": " ".join(command[1:]),
        "wall_seconds": round(wall, 1),
        "peak_rss_mb": round(peak_rss_mb),
        "components": components,
        "components_except_trainer_seconds": round(sum(v for k, v in components.items() if k != "Trainer"), 1),
        "startup_and_orchestration_seconds": round(wall - sum(components.values()), 1),
        "trainer": {
            "fit_seconds": record["fit_seconds"],
            "epochs_run": epochs_run,
            "train_examples": record["train_examples"],
            "train_images_per_second": round(record["train_examples"] * epochs_run / record["fit_seconds"], 1),
            "epoch_seconds": record["history"].get("epoch_seconds", []),
        },
        "test_accuracy": summary["test_accuracy"],
        "blessed": summary["blessed"],
    }


def chart(result: dict, path: str) -> None:
    names = list(result["components"]) + ["start-up / orchestration"]
    seconds = list(result["components"].values()) + [result["startup_and_orchestration_seconds"]]
    fig = Figure(figsize=(8, 4))
    ax = fig.subplots()
    ax.barh(names, seconds)
    for i, s in enumerate(seconds):
        ax.text(s, i, f" {s:.1f} s", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlabel("wall seconds (symmetric log scale)")
    ax.set_title(f"local pipeline: {result['wall_seconds']:.0f} s, peak RSS {result['peak_rss_mb']} MB")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    runner_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", default="pipeline_bench", help="results/<name>.json and .png")
    args = p.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    result = run(runner_args, args.name)
    output.write_json(result, output.result_path(f"{args.name}.json"))
    chart(result, os.path.join(RESULTS, f"{args.name}.png"))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
