"""Serving latency and throughput: REST and gRPC through serving.server, next to the in-process
SavedModel call on the same inputs (every path once per round in a shuffled order, 5 rounds, each
row the rounds' median); batch 1 and 32, 1 and 8 concurrent clients; each API also
against a second server with Prometheus metrics on and every request logged (rows "+metrics+log"),
for their overhead; and REST through the request-log proxy (serving/tools/log_proxy.py, logging every
request) in front of the first server, for the proxy's added latency on deployments of the real
TF Serving; and each API against a third server batching as the deployment does
(--enable_batching with serving/deploy/batching_parameters.txt, rows "+batching").

    python benchmarks/serving_bench.py                   # newest version in serving_model/mnist
    python benchmarks/serving_bench.py --model-dir DIR   # any exported version directory

Writes benchmarks/results/serving_bench.json and prints a Markdown table. Clients and server
share this machine's cores, as a sidecar client would.
"""

import argparse
import os
import platform
import random
import tempfile
import threading
import time

import numpy as np
import tensorflow as tf

from benchmarks import output
from modules import idx, signatures
from modules.push_layout import render_models_config, version_dirs
from pipeline import configs
from pipeline.configs import DATA_ROOT
from pipeline.configs import PROJECT_ROOT as PROJECT
from serving.clients.grpc_client import GrpcClient
from serving.clients.rest_client import RestClient
from serving.tools import log_proxy
from serving.tools.process import ServerProcess

BATCHES = (1, 32)
CONCURRENCY = (1, 8)


def newest_version_dir() -> str:
    versions = version_dirs(os.path.join(PROJECT, "serving_model", configs.MODEL_NAME))
    if not versions:
        raise SystemExit("no pushed model in serving_model/: run `make run` or pass --model-dir")
    return versions[max(versions)]


def serving_folder(tmp: str, model_dir: str) -> str:
    """A model base path under tmp holding model_dir as version 1 (a link), for a server to load."""
    base = os.path.join(tmp, configs.MODEL_NAME)
    os.makedirs(base)
    os.symlink(os.path.abspath(model_dir), os.path.join(base, "1"))
    return base


def measure(call, batches, concurrency: int, requests_per_client: int) -> dict:
    """Runs call(batch) requests_per_client times in each of `concurrency` threads."""
    latencies, errors = [], []

    def client(offset):
        for i in range(requests_per_client):
            start = time.perf_counter()
            try:
                call(batches[(offset + i) % len(batches)])
            except Exception as e:  # noqa: BLE001  counted and reported
                errors.append(repr(e))
                continue
            latencies.append(time.perf_counter() - start)

    for b in batches[:3]:  # warm-up: connections, first graph executions
        call(b)
    threads = [threading.Thread(target=client, args=(k,)) for k in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "requests_per_s": round(len(latencies) / wall, 1),
        "images_per_s": round(len(latencies) * len(batches[0]) / wall, 1),
    }


def median_row(rounds: list) -> dict:
    """One path's rounds in one cell: the median of each figure, and every round's requests/s."""
    row = {
        key: float(np.median([r[key] for r in rounds]))
        for key in ("p50_ms", "p99_ms", "requests_per_s", "images_per_s")
    }
    row = {key: round(value, 2 if key.endswith("_ms") else 1) for key, value in row.items()}
    row.update(
        requests=sum(r["requests"] for r in rounds),
        errors=sum(r["errors"] for r in rounds),
        rounds_requests_per_s=[r["requests_per_s"] for r in rounds],
    )
    return row


def run(model_dir: str, requests_per_client: int, rounds_per_cell: int) -> dict:
    span = os.path.join(DATA_ROOT, "span-1")
    images, _ = idx.read_span_pair(span, "t10k")
    signature = tf.saved_model.load(model_dir).signatures[signatures.IMAGES_SIGNATURE]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        base = serving_folder(tmp, model_dir)
        monitoring = os.path.join(tmp, "monitoring.config")
        with open(monitoring, "w") as f:
            f.write('prometheus_config { enable: true path: "/monitoring/prometheus/metrics" }\n')
        logged = os.path.join(tmp, "models.config")  # every request logged: the worst case
        with open(logged, "w") as f:
            f.write(render_models_config([(configs.MODEL_NAME, base)], request_log=(os.path.join(tmp, "logs"), 1.0)))
        # The same server twice, metrics and logging off and on, measured in turn in the same run.
        with (
            ServerProcess(base, configs.MODEL_NAME) as server,
            ServerProcess(
                base, configs.MODEL_NAME, f"--monitoring_config_file={monitoring}", f"--model_config_file={logged}"
            ) as monitored,
            ServerProcess(
                base,
                configs.MODEL_NAME,
                "--enable_batching",
                f"--batching_parameters_file={os.path.join(PROJECT, 'serving', 'deploy', 'batching_parameters.txt')}",
            ) as batched,
        ):
            proxy, proxy_loggers = log_proxy.make_server(server.rest_url, "127.0.0.1", 0, logged)
            threading.Thread(target=proxy.serve_forever, daemon=True).start()
            clients = {
                "rest": RestClient(server.rest_url, configs.MODEL_NAME),
                "grpc": GrpcClient(server.grpc_target, configs.MODEL_NAME),
                "rest+metrics+log": RestClient(monitored.rest_url, configs.MODEL_NAME),
                "grpc+metrics+log": GrpcClient(monitored.grpc_target, configs.MODEL_NAME),
                "rest via log proxy": RestClient(f"http://127.0.0.1:{proxy.server_address[1]}", configs.MODEL_NAME),
                "rest+batching": RestClient(batched.rest_url, configs.MODEL_NAME),
                "grpc+batching": GrpcClient(batched.grpc_target, configs.MODEL_NAME),
            }
            order = random.Random(0)
            calls = {"in-process": lambda b: signature(images=tf.constant(b))}
            calls.update({name: client.predict_images for name, client in clients.items()})
            for batch in BATCHES:
                batches = [images[i : i + batch] for i in range(0, 64 * batch, batch)]
                for concurrency in CONCURRENCY:
                    # Every path once per round, rounds in turn: a drift in the machine's speed
                    # (tens of percent here) then falls on all paths alike instead of on one.
                    rounds = {name: [] for name in calls}
                    for _ in range(rounds_per_cell):
                        # In a shuffled order, so that no path always runs right after the same
                        # other one (metrics+log measured 0.88 of plain in a fixed order, 0.96 shuffled).
                        for name in order.sample(list(calls), len(calls)):
                            rounds[name].append(measure(calls[name], batches, concurrency, requests_per_client))
                    for name, measured in rounds.items():
                        row = {"path": name, "batch": batch, "clients": concurrency, **median_row(measured)}
                        print(row, flush=True)
                        results.append(row)
            for name in ("grpc", "grpc+metrics+log", "grpc+batching"):
                clients[name].close()
            proxy.shutdown()
            for logger in proxy_loggers.values():
                logger.close()
    return envelope(model_dir, requests_per_client, rounds_per_cell, results)


def envelope(model_dir: str, requests_per_client: int, rounds_per_cell: int, results: list) -> dict:
    """A latency benchmark's report: what was measured, on which machine, and the rows."""
    return {
        "model_dir": os.path.abspath(model_dir),
        "requests_per_client": requests_per_client,
        "rounds_per_cell": rounds_per_cell,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "tensorflow": tf.__version__},
        "results": results,
    }


def table(report: dict) -> str:
    lines = [
        "| path | batch | clients | p50 ms | p99 ms | requests/s | images/s | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['path']} | {r['batch']} | {r['clients']} | {r['p50_ms']} | {r['p99_ms']} | "
            f"{r['requests_per_s']} | {r['images_per_s']} | {r['errors']} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", help="an exported version directory (default: newest pushed)")
    p.add_argument("--requests", type=int, default=100, help="requests per client per path per round")
    p.add_argument("--rounds", type=int, default=5, help="rounds per cell; each row is the rounds' median")
    p.add_argument("--output", default=output.result_path("serving_bench.json"))
    args = p.parse_args(argv)
    report = run(args.model_dir or newest_version_dir(), args.requests, args.rounds)
    output.write_json(report, args.output)
    print(table(report))
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
