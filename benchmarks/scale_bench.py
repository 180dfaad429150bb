"""Cost per example of the Beam stages from 70k to 1.12M examples, and peak memory.

    python benchmarks/scale_bench.py                        # factors 1, 4, 16: 70k, 280k, 1.12M
    python benchmarks/scale_bench.py --factors 1 4 --model-dir serving_model/mnist/<version>
    python benchmarks/scale_bench.py --runner portable --factors 1 --output benchmarks/results/scale_portable.json
    python benchmarks/scale_bench.py --runner multi-processing --workers 2 --factors 16 --shards 1 8 \
        --output benchmarks/results/scale_shards.json

For each size: a span from benchmarks/scale_data.py (factor 1 is data/mnist itself), then a
pipeline of the data stages (IdxExampleGen, ImportSchemaGen, StatisticsGen, Transform) and the
Evaluator on the test split with an already trained model (Importer), in its own process so
its peak RSS is its own. Wall time per component from ML Metadata; writes results/scale.json.

--runner portable runs the Beam stages on Beam's Python job service with EXTERNAL worker pools
(pipeline/portable_beam.py; --pools of them, the stages spread over them; the job service runs one
SDK worker per job); --runner multi-processing runs FnApiRunner with --workers SDK worker
processes per stage, which split each stage's bundles. Peak RSS is the largest single process
among the pipeline process and what it started (with --runner portable the job service and the
pools' workers, which hold the data, are not counted). --shards N writes each size's pairs as N shard pairs, which
IdxExampleGen reads as separate elements.

A component's wall time is a fixed start-up (building the Beam graph, TFDV/TFT/TFMA set-up,
loading the model, writing its artifacts) plus the work per example. A first run on a probe
span of PROBE records (the first of MNIST's files) measures the start-up; each size's net cost
per example is (seconds - probe seconds) / (examples - probe examples). Linear stages keep
the net cost flat from size to size; the raw cost (seconds / examples) falls as the start-up
is shared by more examples.
"""

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

from benchmarks import output
from pipeline import configs, portable_beam
from pipeline.configs import DATA_ROOT
from pipeline.configs import PROJECT_ROOT as PROJECT

PROBE = {"train": 1200, "t10k": 200}  # records: about 2% of MNIST, so its stage times are nearly all start-up
COST_TOLERANCE = 0.2  # the target: each stage's cost per example within +-20% from the smallest size to the largest
PEAK_RSS_TARGET_MB = 8 * 1024  # at the largest size
STAGE_EXAMPLES = {  # which examples each stage reads, in multiples of (train file, test file) sizes
    "IdxExampleGen": ("train", "t10k"),
    "StatisticsGen": ("train", "t10k"),
    "Transform": ("train",),
    "Evaluator": ("t10k",),
}


def build(data_root: str, output_root: str, model_dir: str, beam: dict):
    """The scale pipeline: the data stages of pipeline.create_pipeline, plus the Evaluator.
    beam: {"pipeline": Beam args, "components": {component id: its own Beam args}}."""
    from tfx import v1 as tfx

    from components.idx_example_gen import component as idx_example_gen
    from modules.features import TEST_SPLIT
    from pipeline import configs
    from pipeline.blessing import eval_config
    from pipeline.dag import add_component_beam_args, transform_component

    example_gen = idx_example_gen.create_idx_example_gen(data_root).with_id("IdxExampleGen")
    schema_gen = tfx.components.ImportSchemaGen(schema_file=configs.SCHEMA_FILE).with_id("ImportSchemaGen")
    statistics_gen = tfx.components.StatisticsGen(
        examples=example_gen.outputs["examples"], schema=schema_gen.outputs["schema"]
    ).with_id("StatisticsGen")
    transform = transform_component(
        example_gen.outputs["examples"], schema_gen.outputs["schema"], configs.PREPROCESSING_FN
    )
    model = tfx.dsl.Importer(source_uri=model_dir, artifact_type=tfx.types.standard_artifacts.Model).with_id("Model")
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"],
        model=model.outputs["result"],
        eval_config=eval_config(min_accuracy=0.0, max_accuracy_drop=1.0),
        example_splits=[TEST_SPLIT],
    ).with_id("Evaluator")
    return tfx.dsl.Pipeline(
        pipeline_name="mnist_tfx_scale",
        pipeline_root=os.path.join(output_root, "pipeline_root"),
        components=add_component_beam_args(
            [example_gen, schema_gen, statistics_gen, transform, model, evaluator], beam["components"]
        ),
        enable_cache=False,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            os.path.join(output_root, "metadata.sqlite")
        ),
        beam_pipeline_args=beam["pipeline"],
    )


def run_one(data_root: str, output_root: str, model_dir: str, beam_json: str) -> None:
    """In the child process: run the scale pipeline once."""
    from tfx import v1 as tfx

    tfx.orchestration.LocalDagRunner().run(build(data_root, output_root, model_dir, json.loads(beam_json)))


def span_for(factor: int, work: str, shards: int = 1):
    """(data root, record counts) of a size: factor 0 is the probe, 1 is data/mnist, more are generated."""
    from benchmarks import scale_data
    from pipeline import data_slice

    if factor == 0:
        return data_slice.write_slice(DATA_ROOT, os.path.join(work, "data_probe"), PROBE["train"], PROBE["t10k"]), dict(
            PROBE
        )
    if factor == 1 and shards == 1:
        return DATA_ROOT, {"train": 60000, "t10k": 10000}
    data_root = os.path.join(work, f"data_x{factor}_{shards}")
    kept = os.path.join(data_root, "counts.json")  # a span kept by an earlier --keep-spans run
    if os.path.exists(kept):
        with open(kept) as f:
            return data_root, json.load(f)
    started = time.time()
    counts = scale_data.write_span(factor, data_root, shards=shards)
    with open(kept, "w") as f:
        json.dump(counts, f)
    print(f"x{factor}: generated {counts} in {time.time() - started:.0f} s", flush=True)
    return data_root, counts


def measure(
    factor: int, model_dir: str, work: str, beam: dict, repeats: int = 1, shards: int = 1, keep_span: bool = False
) -> dict:
    """Runs one size `repeats` times, each in a fresh process; per stage the fastest run counts
    (this machine's speed drifts: the minimum is the least disturbed measurement)."""
    from runs import summary as run_summary

    data_root, counts = span_for(factor, work, shards)
    output_root = os.path.join(work, f"run_x{factor}")
    walls, stage_seconds = [], {name: [] for name in STAGE_EXAMPLES}
    for _ in range(repeats):
        shutil.rmtree(output_root, ignore_errors=True)
        os.makedirs(output_root)
        started = time.time()
        subprocess.run(
            [sys.executable, __file__, "--child", data_root, output_root, model_dir, json.dumps(beam)],
            cwd=PROJECT,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        walls.append(time.time() - started)
        summary = run_summary.summarize(os.path.join(output_root, "metadata.sqlite"), "mnist_tfx_scale")
        for name in STAGE_EXAMPLES:
            stage_seconds[name].append(summary["components"][name]["wall_seconds"])
    # RUSAGE_CHILDREN keeps the largest child so far: sizes run in increasing order, so it is this one's.
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    stages = {}
    for name, kinds in STAGE_EXAMPLES.items():
        seconds = min(stage_seconds[name])
        examples = sum(counts[k] for k in kinds)
        stages[name] = {
            "seconds": seconds,
            "runs_seconds": stage_seconds[name],
            "examples": examples,
            "microseconds_per_example": round(seconds / examples * 1e6, 1),
        }
    shutil.rmtree(output_root, ignore_errors=True)
    if data_root != DATA_ROOT and not keep_span:
        shutil.rmtree(data_root, ignore_errors=True)
    return {
        "factor": factor,
        "shards": shards if factor else 1,
        "examples": counts["train"] + counts["t10k"],
        "wall_seconds": round(min(walls), 1),
        "peak_rss_mb": round(peak_mb),
        "stages": stages,
    }


def add_ratios(rows: list, probe: dict) -> dict:
    """Adds to each row: net_microseconds_per_example (see the module docstring) and
    net_cost_vs_smallest; cost_vs_smallest (raw seconds / examples against the smallest size's);
    marginal_microseconds_per_example (extra seconds per extra example from the previous size) and
    marginal_cost_vs_first_step. Returns the targets and which of the three costs meet them:
    linear scaling keeps the marginal cost flat; the raw cost falls by the start-up's share."""
    for row in rows:
        row["net_microseconds_per_example"] = {
            name: round(
                (stage["seconds"] - probe["stages"][name]["seconds"])
                / (stage["examples"] - probe["stages"][name]["examples"])
                * 1e6,
                1,
            )
            for name, stage in row["stages"].items()
        }
    base = rows[0]
    for previous, row in zip([None] + rows[:-1], rows):
        row["cost_vs_smallest"] = {
            name: round(stage["microseconds_per_example"] / base["stages"][name]["microseconds_per_example"], 3)
            for name, stage in row["stages"].items()
        }
        row["net_cost_vs_smallest"] = {
            name: round(net / base["net_microseconds_per_example"][name], 3)
            for name, net in row["net_microseconds_per_example"].items()
        }
        if previous is not None:
            row["marginal_microseconds_per_example"] = {
                name: round(
                    (stage["seconds"] - previous["stages"][name]["seconds"])
                    / (stage["examples"] - previous["stages"][name]["examples"])
                    * 1e6,
                    1,
                )
                for name, stage in row["stages"].items()
            }
    for row in rows[1:]:
        row["marginal_cost_vs_first_step"] = {
            name: round(marginal / rows[1]["marginal_microseconds_per_example"][name], 3)
            for name, marginal in row["marginal_microseconds_per_example"].items()
        }

    def within(key):
        return all(abs(r - 1) <= COST_TOLERANCE for row in rows if key in row for r in row[key].values())

    return {
        "cost_tolerance": COST_TOLERANCE,
        "peak_rss_target_mb": PEAK_RSS_TARGET_MB,
        "marginal_cost_within_tolerance": within("marginal_cost_vs_first_step") if len(rows) > 2 else None,
        "net_cost_within_tolerance": within("net_cost_vs_smallest"),
        "raw_cost_within_tolerance": within("cost_vs_smallest"),
        "peak_rss_within_target": rows[-1]["peak_rss_mb"] <= PEAK_RSS_TARGET_MB,
    }


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        run_one(*argv[1:5])
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--factors", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--repeats", type=int, default=1, help="runs per size; the fastest counts per stage")
    p.add_argument("--model-dir", help="an exported SavedModel (default: newest in serving_model/mnist)")
    p.add_argument("--work", default=tempfile.gettempdir(), help="where spans and runs are written (deleted after)")
    p.add_argument("--output", default=output.result_path("scale.json"))
    p.add_argument("--runner", choices=("in-memory", "multi-processing", "portable"), default="in-memory")
    p.add_argument("--pools", type=int, default=2, help="portable: worker pools (separate processes)")
    p.add_argument(
        "--workers",
        type=int,
        default=2,
        help="multi-processing: SDK worker processes per stage (Beam's Python job service, behind "
        "--runner portable, always runs one per job: FnApiRunner.run_via_runner_api ignores direct_num_workers)",
    )
    p.add_argument("--shards", type=int, nargs="+", default=[1], help="shard pairs per pair; each size runs with each")
    p.add_argument("--keep-spans", action="store_true", help="keep generated spans in --work for the next run")
    args = p.parse_args(argv)
    from benchmarks.serving_bench import newest_version_dir

    source = args.model_dir or newest_version_dir()
    from components import tfx_files

    # The Evaluator reads a Model artifact: the SavedModel in its serving_model_path.
    model_uri = os.path.join(args.work, "scale_model")
    shutil.rmtree(model_uri, ignore_errors=True)
    shutil.copytree(source, tfx_files.serving_model_path(model_uri))
    with contextlib.ExitStack() as stack:
        beam = {"pipeline": list(configs.BEAM_PIPELINE_ARGS), "components": {}}
        if args.runner == "multi-processing":
            beam["pipeline"] = [
                "--runner=FnApiRunner",
                "--direct_running_mode=multi_processing",
                f"--direct_num_workers={args.workers}",
            ]
        if args.runner == "portable":
            services = stack.enter_context(portable_beam.services(os.path.join(args.work, "beam_services"), args.pools))
            beam = {
                "pipeline": services.pipeline_args(),
                "components": services.component_args(),
            }
        probe = measure(0, model_uri, args.work, beam, args.repeats)
        print(json.dumps(probe), flush=True)
        rows = []
        for factor in sorted(f for f in args.factors if f > 0):
            for shards in args.shards:
                rows.append(measure(factor, model_uri, args.work, beam, args.repeats, shards, args.keep_spans))
                print(json.dumps(rows[-1]), flush=True)
    meets = add_ratios(rows, probe) if len(args.shards) == 1 else None  # sizes compare only at one shard count
    runner = {"runner": args.runner, "beam_args": beam}
    if args.runner == "portable":
        runner.update(pools=args.pools, workers_per_stage=1)
    if args.runner == "multi-processing":
        runner.update(workers_per_stage=args.workers)
    output.write_json(
        {"model": source, "repeats": args.repeats, **runner, "probe": probe, "runs": rows, "meets": meets}, args.output
    )
    print(json.dumps({"runs": rows, "meets": meets}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
