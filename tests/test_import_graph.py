"""Arrows run one way: the DAG's components never import the server, the server never imports a
component, and a serving client loads without TensorFlow. Read from the source (every import
statement, at any depth) and, for the client, in a fresh interpreter."""

import ast
import pathlib
import subprocess
import sys

import pytest

from tests.timeouts import COMMAND_TIMEOUT

CHECKOUT = pathlib.Path(__file__).resolve().parents[1]


def imported_modules(path: pathlib.Path):
    """Every module an import statement in the file names, including imports inside functions."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def offenders(package: str, forbidden: str):
    return sorted(
        f"{path.relative_to(CHECKOUT)} imports {module}"
        for path in (CHECKOUT / package).rglob("*.py")
        for module in imported_modules(path)
        if module == forbidden or module.startswith(forbidden + ".")
    )


@pytest.mark.parametrize(
    "package, forbidden",
    [
        ("components", "serving"),
        ("serving", "components"),
        ("serving", "pipeline"),
        # Serving's three parts: the server stands alone; a client needs neither the operator's tools nor
        # the server (beyond the wire names it shares, such as the request-id header); see serving/README.md.
        ("serving/server", "serving.clients"),
        ("serving/server", "serving.tools"),
        ("serving/clients", "serving.tools"),
        ("modules", "tfx.orchestration"),
        # The user code (Transform's and Trainer's modules) stands on its own: the Kubeflow image,
        # Beam workers and the served SavedModel import it without the rest of the project.
        *[("modules", other) for other in ("components", "pipeline", "serving", "runs", "kubeflow", "monitoring")],
        ("modules", "benchmarks"),
        # Run reports and lineage read what a run recorded; they never start a server or a Kubeflow run.
        *[("runs", other) for other in ("serving", "kubeflow", "monitoring", "benchmarks")],
        # The Kubeflow side compiles and runs the same pipeline; it does not serve or monitor.
        *[("kubeflow", other) for other in ("serving", "monitoring", "runs", "benchmarks")],
        # The monitor reads what the server logs and what the pipeline recorded; nothing reads the monitor
        # (the benchmarks run it as a command, as an operator does).
        *[(package, "monitoring") for package in ("serving", "components", "pipeline", "benchmarks")],
    ],
)
def test_no_arrow_runs_backwards(package, forbidden):
    assert offenders(package, forbidden) == []


def test_the_scan_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from serving.clients.rest_client import RestClient\n")
    assert list(imported_modules(module)) == ["serving.clients.rest_client"]


def test_the_client_imports_without_tensorflow():
    code = (
        "import sys; import serving.clients.rest_client, serving.clients.cli; "
        "import modules.signatures, modules.push_layout, modules.idx; "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tfx')); "
        "print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=CHECKOUT, timeout=COMMAND_TIMEOUT
    )
    assert out.stdout.strip() == "[]"
