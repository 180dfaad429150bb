"""Where the benchmarks write their results: indented JSON under benchmarks/results/ (ignored by
git: docs/PERFORMANCE.md quotes today's results with their commands, and the JSON behind them is
committed under docs/results/)."""

import json
import os

from pipeline.configs import PROJECT_ROOT

RESULTS = os.path.join(PROJECT_ROOT, "benchmarks", "results")


def result_path(file_name: str) -> str:
    """benchmarks/results/<file_name>, the default --output of a benchmark."""
    return os.path.join(RESULTS, file_name)


def write_json(report: dict, path: str) -> str:
    """Writes the report to path (creating its folder) and returns the path."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(report, f, indent=2)
    return path
