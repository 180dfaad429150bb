"""What reading a picture costs: `predict_pictures` on a 200x200 PNG and on a 2,000x2,000 JPEG (a
phone photo's scale), batch 1 and 32, over REST and gRPC through serving.server and in process,
beside `predict_images` on the same digits as 28x28 arrays. Every path once per round in a
shuffled order, 5 rounds, each row the rounds' median (as benchmarks/serving_bench.py).

    python benchmarks/picture_latency.py                   # newest version in serving_model/mnist
    python benchmarks/picture_latency.py --model-dir DIR

Writes benchmarks/results/picture_latency.json and prints a Markdown table.
"""

import argparse
import random
import tempfile

import numpy as np
import tensorflow as tf

from benchmarks import output
from benchmarks import pictures as suite
from benchmarks.serving_bench import envelope, measure, median_row, newest_version_dir, serving_folder
from modules import idx, signatures
from pipeline import configs
from pipeline.configs import DATA_ROOT
from serving.clients.grpc_client import GrpcClient
from serving.clients.rest_client import RestClient
from serving.tools.process import ServerProcess

BATCHES = (1, 32)
INPUTS = {
    "28x28 array": None,
    "200x200 PNG": suite.Page(),
    "2000x2000 JPEG": suite.Page(side=2000, jpeg=90),
}


def _inputs(images: np.ndarray, batch: int) -> dict:
    """Input kind -> 4 batches of that kind (the same digits in each kind)."""
    rng = np.random.default_rng(0)
    digits = [images[i : i + batch] for i in range(0, 4 * batch, batch)]
    return {
        kind: digits if page is None else [[suite.render(d, page, rng) for d in b] for b in digits]
        for kind, page in INPUTS.items()
    }


def run(model_dir: str, requests_per_client: int, rounds_per_cell: int, batches=BATCHES) -> dict:
    images, _ = idx.read_span_pair(idx.span_dir(DATA_ROOT, 1), idx.TEST_PAIR)
    loaded = tf.saved_model.load(model_dir)
    in_process = {
        "array": lambda b: loaded.signatures[signatures.IMAGES_SIGNATURE](images=tf.constant(b)),
        "picture": lambda b: loaded.signatures[signatures.PICTURES_SIGNATURE](pictures=tf.constant(b)),
    }
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        base = serving_folder(tmp, model_dir)
        with ServerProcess(base, configs.MODEL_NAME) as server:
            rest = RestClient(server.rest_url, configs.MODEL_NAME)
            grpc_client = GrpcClient(server.grpc_target, configs.MODEL_NAME)
            apis = {
                "in-process": in_process,
                "rest": {"array": rest.predict_images, "picture": rest.predict_pictures},
                "grpc": {"array": grpc_client.predict_images, "picture": grpc_client.predict_pictures},
            }
            order = random.Random(0)
            for batch in batches:
                inputs = _inputs(images, batch)
                paths = [(api, kind) for api in apis for kind in INPUTS]
                rounds = {path: [] for path in paths}
                for _ in range(rounds_per_cell):
                    for api, kind in order.sample(paths, len(paths)):
                        call = apis[api]["array" if INPUTS[kind] is None else "picture"]
                        rounds[(api, kind)].append(measure(call, inputs[kind], 1, requests_per_client))
                for (api, kind), measured in rounds.items():
                    mean_bytes = float(np.mean([sum(len(p) for p in b) / batch for b in inputs[kind]]))
                    row = {
                        "path": api,
                        "input": kind,
                        "signature": signatures.IMAGES_SIGNATURE
                        if INPUTS[kind] is None
                        else signatures.PICTURES_SIGNATURE,
                        "batch": batch,
                        "bytes_per_picture": None if INPUTS[kind] is None else round(mean_bytes),
                        **median_row(measured),
                    }
                    print(row, flush=True)
                    results.append(row)
            grpc_client.close()
    return envelope(model_dir, requests_per_client, rounds_per_cell, results)


def table(report: dict) -> str:
    lines = [
        "| path | input | signature | batch | p50 ms | p99 ms | images/s | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['path']} | {r['input']} | {r['signature']} | {r['batch']} | {r['p50_ms']} | {r['p99_ms']} | "
            f"{r['images_per_s']} | {r['errors']} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", help="an exported version directory (default: newest pushed)")
    p.add_argument("--requests", type=int, default=20, help="requests per path per round")
    p.add_argument("--rounds", type=int, default=5, help="rounds per cell; each row is the rounds' median")
    p.add_argument("--output", default=output.result_path("picture_latency.json"))
    args = p.parse_args(argv)
    report = run(args.model_dir or newest_version_dir(), args.requests, args.rounds)
    output.write_json(report, args.output)
    print(table(report))
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
