"""Where server-side batching can pay on this machine: batch-1 requests from 8 closed-loop clients
(threads, each sending its next request when the last is answered, as in serving_bench.py), once
without batching and once per BatchingParameters below, both in-process (Servable.predict against
serving.server.batching.Batcher, no network, no server: the ceiling) and over gRPC (serving.server with and
without --enable_batching; the plain server and one batching setting also with TF Serving's
thread flags at one thread, rows "1 TF thread"). Every path once per round in a shuffled order;
each row is the rounds' median.

    python benchmarks/batching_bench.py
    python benchmarks/batching_bench.py --model-dir DIR --clients 8 --rounds 5

Per row: requests/s, p50/p99 ms, CPU ms per request (in-process: this process; gRPC: the server
process and this process, the clients), and for the in-process batcher the mean rows per model
call. The target for gRPC: batching at least 2x the requests/s of batching off, p99 at most
2x. Writes benchmarks/results/batching_bench.json.
"""

import argparse
import dataclasses
import os
import platform
import random
import tempfile
from typing import Dict, List

import numpy as np
import tensorflow as tf

from benchmarks import output
from benchmarks.serving_bench import measure, median_row, newest_version_dir, serving_folder
from modules import idx, signatures
from pipeline import configs
from pipeline.configs import DATA_ROOT
from pipeline.configs import PROJECT_ROOT as PROJECT
from serving.clients.grpc_client import GrpcClient
from serving.server import batching
from serving.server.servable import Servable
from serving.tools.process import ServerProcess

DEPLOYED = os.path.join(PROJECT, "serving", "deploy", "batching_parameters.txt")
# (name, max_batch_size, batch_timeout_micros, num_batch_threads); "deploy" is read from DEPLOYED.
CANDIDATES = (
    ("one per core, no wait", 8, 0, 2),  # TF Serving's batching guide's starting point for CPUs
    ("8 rows, 1 ms, 1 thread", 8, 1000, 1),  # one full batch of the 8 clients per model call
)

# TF Serving's thread flags at one thread each: a batch-1 call then runs on the calling thread
# instead of waking TensorFlow's thread pools (benchmarks/batching_bench.py measures both).
ONE_TF_THREAD = ("--tensorflow_intra_op_parallelism=1", "--tensorflow_inter_op_parallelism=1")
BEST_WITH_ONE_THREAD = "8 rows, 1 ms, 1 thread"  # the one batching setting also run with ONE_TF_THREAD


def parameter_sets() -> Dict[str, batching.BatchingParameters]:
    sets = {"deploy": batching.read_parameters(DEPLOYED)}
    for name, size, micros, threads in CANDIDATES:
        sets[name] = batching.BatchingParameters(
            max_batch_size=size, batch_timeout_micros=micros, num_batch_threads=threads
        )
    return sets


def write_parameters(path: str, p: batching.BatchingParameters) -> str:
    with open(path, "w") as f:
        for name in ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads"):
            f.write(f"{name} {{ value: {getattr(p, name)} }}\n")
    return path


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(call, batches, clients: int, requests: int, server_pid: int = 0) -> dict:
    """serving_bench.measure, plus CPU ms per request of this process and of the server."""
    own, server = process_cpu_seconds(os.getpid()), process_cpu_seconds(server_pid) if server_pid else 0.0
    row = measure(call, batches, clients, requests)
    n = max(1, row["requests"])
    row["client_cpu_ms_per_request"] = round((process_cpu_seconds(os.getpid()) - own) * 1000 / n, 3)
    if server_pid:
        row["server_cpu_ms_per_request"] = round((process_cpu_seconds(server_pid) - server) * 1000 / n, 3)
    return row


def run(model_dir: str, clients: int, requests: int, rounds: int) -> dict:
    images, _ = idx.read_span_pair(os.path.join(DATA_ROOT, "span-1"), "t10k")
    batches = [images[i : i + 1] for i in range(64)]
    sets = parameter_sets()
    servable = Servable(configs.MODEL_NAME, 1, model_dir)
    (key,) = servable.input_specs(signatures.IMAGES_SIGNATURE)
    batchers = {name: batching.Batcher(p) for name, p in sets.items()}
    calls = {"in-process": lambda b: servable.predict(signatures.IMAGES_SIGNATURE, {key: b})}
    for name, batcher in batchers.items():
        calls[f"in-process+batching {name}"] = lambda b, batcher=batcher: batcher.predict(
            servable, signatures.IMAGES_SIGNATURE, {key: b}
        )
    with tempfile.TemporaryDirectory() as tmp:
        base = serving_folder(tmp, model_dir)
        servers = {}
        try:
            for threads in ((), ONE_TF_THREAD):
                suffix = ", 1 TF thread" if threads else ""
                servers[f"grpc{suffix}"] = ServerProcess(base, configs.MODEL_NAME, *threads)
                for name, p in sets.items():
                    if threads and name != BEST_WITH_ONE_THREAD:
                        continue
                    path = write_parameters(os.path.join(tmp, f"batching-{len(servers)}.txt"), p)
                    servers[f"grpc+batching {name}{suffix}"] = ServerProcess(
                        base, configs.MODEL_NAME, "--enable_batching", f"--batching_parameters_file={path}", *threads
                    )
            grpc_clients = {name: GrpcClient(s.grpc_target, configs.MODEL_NAME) for name, s in servers.items()}
            for name, client in grpc_clients.items():
                calls[name] = client.predict_images
            pids = {name: s.process.pid for name, s in servers.items()}
            measured: Dict[str, List[dict]] = {name: [] for name in calls}
            order = random.Random(0)
            for _ in range(rounds):
                for name in order.sample(list(calls), len(calls)):
                    measured[name].append(timed(calls[name], batches, clients, requests, pids.get(name, 0)))
            for client in grpc_clients.values():
                client.close()
        finally:
            for s in servers.values():
                s.stop()
    rows = []
    for name, runs in measured.items():
        row = {"path": name, **median_row(runs)}
        for field in ("client_cpu_ms_per_request", "server_cpu_ms_per_request"):
            if field in runs[0]:
                row[field] = round(float(np.median([r[field] for r in runs])), 3)
        if "+batching " in name:
            setting = name.split("+batching ", 1)[1].removesuffix(", 1 TF thread")
            row["parameters"] = dataclasses.asdict(sets[setting])
            if name.startswith("in-process"):
                row["rows_per_model_call"] = round(batchers[setting].rows / max(1, batchers[setting].batches), 2)
        rows.append(row)
    return {
        "model_dir": os.path.abspath(model_dir),
        "clients": clients,
        "requests_per_client": requests,
        "rounds": rounds,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "tensorflow": tf.__version__},
        "results": rows,
        "speedup": speedups(rows),
    }


def speedups(rows: List[dict]) -> dict:
    """Each batching row's requests/s and p99 over its unbatched path's (in-process or gRPC)."""
    by_path = {r["path"]: r for r in rows}
    out = {}
    for r in rows:
        unbatched = r["path"].split("+")[0] + (", 1 TF thread" if r["path"].endswith(", 1 TF thread") else "")
        plain = by_path.get(unbatched)
        if "+batching" in r["path"] and plain:
            out[r["path"]] = {
                "requests_per_s": round(r["requests_per_s"] / plain["requests_per_s"], 2),
                "p99": round(r["p99_ms"] / plain["p99_ms"], 2),
            }
    return out


def table(report: dict) -> str:
    lines = [
        "| path | req/s | x unbatched | p50 ms | p99 ms | CPU ms/req (server + clients) | rows per call |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        ratio = report["speedup"].get(r["path"], {}).get("requests_per_s", "")
        cpu = r["client_cpu_ms_per_request"]
        cpu_text = f"{r['server_cpu_ms_per_request']} + {cpu}" if "server_cpu_ms_per_request" in r else f"{cpu}"
        lines.append(
            f"| {r['path']} | {r['requests_per_s']} | {ratio} | {r['p50_ms']} | {r['p99_ms']} | {cpu_text} | "
            f"{r.get('rows_per_model_call', '')} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", help="an exported version directory (default: newest pushed)")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--requests", type=int, default=100, help="requests per client per path per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--output", default=output.result_path("batching_bench.json"))
    args = p.parse_args(argv)
    report = run(args.model_dir or newest_version_dir(), args.clients, args.requests, args.rounds)
    output.write_json(report, args.output)
    print(table(report))
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
