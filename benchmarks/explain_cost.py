"""What explanations cost: explain_images (integrated gradients, modules/attributions.py) beside
predict_images on the same MNIST test digits, batch 1 and 32, in process and over REST and gRPC
through serving.server (one client, every path once per round in a shuffled order, each row the
rounds' median); the export's time and SavedModel size with and without the two explain
signatures (the project's CNN with the newest Transform output of pipeline_root/; export cost does
not depend on the weights' values); and how the number of path steps trades completeness for time:
the CNN trained one epoch on 4,000 training digits (seeded), exported at each step count, its maps
of --sweep-rows test digits compared with the probability's rise from black.

    python benchmarks/explain_cost.py                   # newest version in serving_model/mnist
    python benchmarks/explain_cost.py --model-dir DIR --requests 10 --rounds 3

Writes benchmarks/results/explain_cost.json and prints Markdown tables.
"""

import argparse
import os
import random
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf

from benchmarks import output
from benchmarks.serving_bench import envelope, measure, median_row, newest_version_dir, serving_folder
from modules import idx, signatures
from pipeline import configs
from pipeline.configs import DATA_ROOT, OUTPUT_ROOT
from serving.clients.grpc_client import GrpcClient
from serving.clients.rest_client import RestClient
from serving.tools.process import ServerProcess

BATCHES = (1, 32)


def latency(model_dir: str, requests_per_client: int, rounds_per_cell: int) -> list:
    images, _ = idx.read_span_pair(idx.span_dir(DATA_ROOT, 1), idx.TEST_PAIR)
    loaded = tf.saved_model.load(model_dir)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        with ServerProcess(serving_folder(tmp, model_dir), configs.MODEL_NAME) as server:
            rest = RestClient(server.rest_url, configs.MODEL_NAME, timeout=300)
            grpc_client = GrpcClient(server.grpc_target, configs.MODEL_NAME, timeout=300)
            calls = {
                ("in-process", "predict_images"): lambda b: loaded.signatures[signatures.IMAGES_SIGNATURE](
                    images=tf.constant(b)
                ),
                ("in-process", "explain_images"): lambda b: loaded.signatures[signatures.EXPLAIN_SIGNATURE](
                    images=tf.constant(b)
                ),
                ("rest", "predict_images"): rest.predict_images,
                ("rest", "explain_images"): rest.explain_images,
                ("grpc", "predict_images"): grpc_client.predict_images,
                ("grpc", "explain_images"): grpc_client.explain_images,
            }
            order = random.Random(0)
            for batch in BATCHES:
                batches = [images[i : i + batch] for i in range(0, 8 * batch, batch)]
                rounds = {key: [] for key in calls}
                for _ in range(rounds_per_cell):
                    for key in order.sample(list(calls), len(calls)):
                        rounds[key].append(measure(calls[key], batches, 1, requests_per_client))
                for (path, signature), measured in rounds.items():
                    row = {"path": path, "signature": signature, "batch": batch, **median_row(measured)}
                    print(row, flush=True)
                    results.append(row)
            grpc_client.close()
    return results


def newest_transform_graph() -> str:
    root = os.path.join(OUTPUT_ROOT, "pipeline_root", "Transform", "transform_graph")
    runs = [d for d in os.listdir(root) if d.isdigit()] if os.path.isdir(root) else []
    if not runs:
        raise SystemExit(f"no Transform output under {root}: run `make run` first")
    return os.path.join(root, max(runs, key=int))


def export_cost(repeats: int = 2) -> list:
    """Export wall time and SavedModel bytes with and without the explain signatures, `repeats` times
    each, alternating (the machine's speed drifts)."""
    import tensorflow_transform as tft

    from components.release.inputs import dir_bytes
    from modules import cnn, export
    from modules.hparams import HParams

    transform_output = tft.TFTransformOutput(newest_transform_graph())
    model = cnn.build_model(HParams(), steps_per_epoch=1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for explain in (False, True) * repeats:
            path = os.path.join(tmp, f"{explain}-{len(rows)}")
            started = time.perf_counter()
            export.export_serving_model(model, transform_output, path, explain_signatures=explain)
            rows.append(
                {
                    "explain_signatures": explain,
                    "export_s": round(time.perf_counter() - started, 2),
                    "saved_model_bytes": dir_bytes(path),
                }
            )
            print(rows[-1], flush=True)
    return rows


SWEEP_STEPS = (16, 32, 64, 128)
SWEEP_TRAIN = 4000


def steps_sweep(rows: int, model=None) -> list:
    """Per step count: the largest and the mean gap between a map's sum and the explained class's
    rise from black, and the explain signature's time per row (in process, batch `rows`). model:
    a trained CNN to sweep (None: the seeded one-epoch CNN this trains)."""
    import keras
    import tensorflow_transform as tft

    from modules import cnn, export, features
    from modules.hparams import HParams

    test, _ = idx.read_span_pair(idx.span_dir(DATA_ROOT, 1), idx.TEST_PAIR)
    if model is None:
        train, train_labels = idx.read_span_pair(idx.span_dir(DATA_ROOT, 1), "train")
        keras.utils.set_random_seed(0)
        hparams = HParams()
        model = cnn.build_model(hparams, steps_per_epoch=SWEEP_TRAIN // hparams.batch_size)
        x = train[:SWEEP_TRAIN].reshape(SWEEP_TRAIN, -1).astype(np.float32) / features.MAX_PIXEL_VALUE
        model.fit({features.transformed_name(features.IMAGE_KEY): x}, train_labels[:SWEEP_TRAIN], epochs=1, verbose=0)
    transform_output = tft.TFTransformOutput(newest_transform_graph())
    digits = tf.constant(test[:rows])
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for steps in SWEEP_STEPS:
            path = os.path.join(tmp, str(steps))
            export.export_serving_model(model, transform_output, path, explain_steps=steps)
            loaded = tf.saved_model.load(path)
            explain = loaded.signatures[signatures.EXPLAIN_SIGNATURE]
            explain(images=digits[:1])  # traced once before timing
            started = time.perf_counter()
            out = explain(images=digits)
            per_row_ms = (time.perf_counter() - started) * 1000 / rows
            predict = loaded.signatures[signatures.IMAGES_SIGNATURE]
            black = predict(images=tf.zeros([1, 28, 28], tf.uint8))[signatures.PROBABILITIES_OUTPUT].numpy()[0]
            targets = out[signatures.TARGETS_OUTPUT].numpy()
            rise = out[signatures.PROBABILITIES_OUTPUT].numpy()[np.arange(rows), targets] - black[targets]
            gaps = np.abs(out[signatures.ATTRIBUTIONS_OUTPUT].numpy().sum(axis=(1, 2)) - rise)
            results.append(
                {
                    "steps": steps,
                    "largest_gap": round(float(gaps.max()), 5),
                    "mean_gap": round(float(gaps.mean()), 5),
                    "ms_per_row": round(per_row_ms, 1),
                }
            )
            print(results[-1], flush=True)
    return results


def tables(report: dict) -> str:
    lines = [
        "| path | signature | batch | p50 ms | p99 ms | images/s | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['path']} | {r['signature']} | {r['batch']} | {r['p50_ms']} | {r['p99_ms']} | "
            f"{r['images_per_s']} | {r['errors']} |"
        )
    lines += ["", "| steps | largest gap | mean gap | ms per row |", "|---|---|---|---|"]
    for r in report["steps"]:
        lines.append(f"| {r['steps']} | {r['largest_gap']} | {r['mean_gap']} | {r['ms_per_row']} |")
    lines += ["", "| explain signatures | export s | SavedModel bytes |", "|---|---|---|"]
    for r in report["export"]:
        lines.append(f"| {'yes' if r['explain_signatures'] else 'no'} | {r['export_s']} | {r['saved_model_bytes']:,} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", help="a pushed version directory (default: newest in serving_model/mnist)")
    p.add_argument("--requests", type=int, default=10, help="requests per path per round")
    p.add_argument("--rounds", type=int, default=3, help="rounds per cell; each row is the rounds' median")
    p.add_argument("--export-repeats", type=int, default=2, help="exports with and without, each (0: none)")
    p.add_argument("--sweep-rows", type=int, default=200, help="test digits explained per step count (0: no sweep)")
    p.add_argument("--output", default=output.result_path("explain_cost.json"))
    args = p.parse_args(argv)
    model_dir = args.model_dir or newest_version_dir()
    report = envelope(model_dir, args.requests, args.rounds, latency(model_dir, args.requests, args.rounds))
    report["export"] = export_cost(args.export_repeats) if args.export_repeats else []
    report["steps"] = steps_sweep(args.sweep_rows) if args.sweep_rows else []
    output.write_json(report, args.output)
    print(tables(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
