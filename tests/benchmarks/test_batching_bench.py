"""The batching benchmark's parameter files, CPU accounting and ratios (its servers are measured by
running it; tests/serving/server/test_batching.py proves the batching itself)."""

import os

from benchmarks import batching_bench
from serving.server import batching


def test_every_parameter_set_survives_the_servers_reader(tmp_path):
    sets = batching_bench.parameter_sets()
    assert sets["deploy"] == batching.read_parameters(batching_bench.DEPLOYED)
    assert len(sets) == 1 + len(batching_bench.CANDIDATES)
    for i, p in enumerate(sets.values()):
        assert batching.read_parameters(batching_bench.write_parameters(str(tmp_path / f"{i}.txt"), p)) == p


def test_process_cpu_seconds_grows_with_work():
    before = batching_bench.process_cpu_seconds(os.getpid())
    sum(i * i for i in range(3_000_000))
    assert batching_bench.process_cpu_seconds(os.getpid()) > before


def test_speedups_compare_each_batching_row_with_its_own_unbatched_path():
    rows = [
        {"path": "in-process", "requests_per_s": 1000.0, "p99_ms": 10.0},
        {"path": "in-process+batching deploy", "requests_per_s": 1500.0, "p99_ms": 12.0},
        {"path": "grpc", "requests_per_s": 400.0, "p99_ms": 20.0},
        {"path": "grpc+batching deploy", "requests_per_s": 800.0, "p99_ms": 50.0},
        {"path": "grpc, 1 TF thread", "requests_per_s": 500.0, "p99_ms": 10.0},
        {"path": "grpc+batching deploy, 1 TF thread", "requests_per_s": 600.0, "p99_ms": 10.0},
    ]
    assert batching_bench.speedups(rows) == {
        "in-process+batching deploy": {"requests_per_s": 1.5, "p99": 1.2},
        "grpc+batching deploy": {"requests_per_s": 2.0, "p99": 2.5},
        "grpc+batching deploy, 1 TF thread": {"requests_per_s": 1.2, "p99": 1.0},
    }
