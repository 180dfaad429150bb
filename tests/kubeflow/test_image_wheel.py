"""The image installs the project's own wheel: built here, installed into a clean virtualenv with no
checkout on the path, it provides every dotted entry point and executor the compiled spec names."""

import os
import re
import shutil
import subprocess
import sys
import sysconfig

import yaml

from pipeline.configs import PROJECT_ROOT
from tests.timeouts import COMMAND_TIMEOUT

# Our dotted names in the spec: executor classes and entry points (not tfx.components.*).
OUR_NAMES = re.compile(r"(?<![\w.])(?:modules|components|pipeline|serving|runs)\.[\w.]+")

# Imports each dotted name (module, then attributes), and says where the packages came from.
_IMPORT_ALL = """
import importlib, json, sys
found = {}
for name in sys.argv[1:]:
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
            break
        except ModuleNotFoundError:
            continue
    for attr in parts[i:]:
        obj = getattr(obj, attr)
    found[name] = getattr(obj, "__module__", None) or obj.__name__
import modules, components, pipeline
print(json.dumps({"found": found, "files": [modules.__file__, components.__file__, pipeline.__file__]}))
"""


def _strings(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


def test_the_wheel_alone_provides_what_the_compiled_spec_names(compiled, tmp_path):
    with open(compiled) as f:
        names = sorted({m for s in _strings(yaml.safe_load(f)) for m in OUR_NAMES.findall(s)})
    assert {"modules.model.run_fn", "modules.preprocessing.preprocessing_fn"} <= set(names)
    assert any(n.startswith("components.release.component.") for n in names)

    # From a copy of the sources: setuptools would reuse a stale build/ directory of the checkout.
    source = tmp_path / "source"
    ignored = (".git", ".venv", "build", "outputs", "serving_model", "*.egg-info", "__pycache__", "data")
    shutil.copytree(PROJECT_ROOT, source, ignore=shutil.ignore_patterns(*ignored))
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(source)],
        check=True,
        capture_output=True,
        timeout=COMMAND_TIMEOUT,
    )
    [wheel] = list(wheels.glob("mnist_tfx-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=COMMAND_TIMEOUT)
    python = str(venv / "bin" / "python")
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    ).stdout.strip()
    # The dependencies (TFX and friends, 3.3 GB) are borrowed from this interpreter's site-packages,
    # but not its editable link to the checkout: the path is dropped right after the .pth files ran.
    borrowed = sysconfig.get_paths()["purelib"]
    with open(os.path.join(site, "zz_borrowed_dependencies.pth"), "w") as f:
        f.write(f"import site; site.addsitedir({borrowed!r})\n")
        f.write(f"import sys; sys.path[:] = [p for p in sys.path if p.rstrip('/') != {PROJECT_ROOT!r}]\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", site, str(wheel)],
        check=True,
        capture_output=True,
        timeout=COMMAND_TIMEOUT,
    )

    out = subprocess.run(
        [python, "-c", _IMPORT_ALL, *names], cwd=tmp_path, capture_output=True, text=True, timeout=COMMAND_TIMEOUT
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = __import__("json").loads(out.stdout.strip().splitlines()[-1])
    assert sorted(result["found"]) == names
    assert all(path.startswith(site) for path in result["files"]), result["files"]  # the wheel's copy
