"""Arrows run one way: the DAG's components never import the server, the server never imports a
component, and a serving client loads without TensorFlow. Read from the source (every import
statement, at any depth) and, for the client, in a fresh interpreter."""

import ast
import pathlib
import subprocess
import sys

import pytest

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
        ("modules", "tfx.orchestration"),
        # The monitor reads what the server logs and what the pipeline recorded; nothing reads the monitor.
        ("serving", "monitoring"),
        ("components", "monitoring"),
        ("pipeline", "monitoring"),
    ],
)
def test_no_arrow_runs_backwards(package, forbidden):
    assert offenders(package, forbidden) == []


def test_the_scan_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from serving.client import RestClient\n")
    assert list(imported_modules(module)) == ["serving.client"]


def test_the_client_imports_without_tensorflow():
    code = (
        "import sys; import serving.client, modules.signatures, modules.push_layout, modules.idx; "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tfx')); "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=CHECKOUT)
    assert out.stdout.strip() == "[]"
