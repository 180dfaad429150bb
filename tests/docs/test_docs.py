"""The README and the docs pages against the repository: every command they show exists and
answers --help, every flag they give a command is one it accepts, every make target exists,
every repository path they name exists, every relative link resolves, and every page under
docs/ is linked from the README.

Commands are read from code spans and code blocks only (`python -m a.b --flag`, `python
path.py`, `make target`); a path is a code span or link whose first part is a top-level folder
of the repository. Paths a run creates (the .gitignore's folders) and placeholders (<version>,
*) are not checked.
"""

import json
import os
import re
import subprocess
import sys
from typing import Dict, List, Tuple

import pytest

from pipeline.configs import PROJECT_ROOT

pytestmark = pytest.mark.timeout(300)

# Folders that hold no documentation of the project (vendored, generated or installed files).
SKIP_DIRS = {".venv", ".git", "node_modules", "outputs", "serving_model", "build", "vendor", "__pycache__"}
COMMAND = re.compile(r"(?:^|[\s`(;&|/])(python3?|make)\s+((?:-m\s+)?[\w./-]+)((?:[ \t]+[^\s`|;&)]+)*)")
# The serving commands take tensorflow_model_server's own flag names (--model_config_file, ...);
# every other command spells its flags with hyphens.
TF_SERVING_STYLE = "serving."
FLAG = re.compile(r"(?<![\w-])(--[a-z][\w-]*)")


def pages() -> List[str]:
    """README.md, docs/*.md and every other README.md of the repository, relative paths."""
    found = []
    for root, dirs, files in os.walk(PROJECT_ROOT):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        rel = os.path.relpath(root, PROJECT_ROOT)
        for name in sorted(files):
            if name == "README.md" or (rel == "docs" and name.endswith(".md")):
                found.append(os.path.normpath(os.path.join(rel, name)))
    return found


def code_texts(markdown: str, spans: bool = True) -> List[str]:
    """The lines of code blocks (backslash continuations joined) and, with spans, inline code
    spans, in order."""
    texts = []
    blocks = re.split(r"^```.*$", markdown, flags=re.M)
    for i, part in enumerate(blocks):
        if i % 2:  # inside a fence
            texts.extend(part.replace("\\\n", " ").splitlines())
        elif spans:
            texts.extend(re.findall(r"`([^`\n]+)`", part))
    return texts


def commands(markdown: str) -> List[Tuple[str, str, List[str]]]:
    """(program, target, arguments) of every python or make command the page shows."""
    found = []
    for text in code_texts(markdown):
        text = re.split(r"\s#\s", text)[0]  # a shell comment after the command
        for program, target, rest in COMMAND.findall(text):
            found.append((program, " ".join(target.split()), rest.split()))
    return found


def project_command(target: str) -> bool:
    """Whether a python command is one of this project's (not, e.g., apache_beam's own modules)."""
    if target.startswith("-m "):
        return os.path.isdir(os.path.join(PROJECT_ROOT, target[3:].split(".")[0]))
    return True


def module_of(target: str) -> str:
    """The dotted module a `python -m x.y` or `python x/y.py` runs."""
    if target.startswith("-m "):
        return target[3:]
    return target[: -len(".py")].replace("/", ".") if target.endswith(".py") else target


# Runs each command's own argument parser, all in one child process (one interpreter imports
# everything once): ArgumentParser.parse_known_args, which parse_args calls, is replaced by a
# function that records the parser's options and its sub-commands' options, asks the real parser
# for --help, and stops the command there.
PROBE = r"""
import argparse, contextlib, io, json, runpy, sys
class Stop(BaseException):
    pass
real = argparse.ArgumentParser.parse_known_args
result = {}
for module in json.loads(sys.argv[1]):
    found = result[module] = {}
    def probe(self, args=None, namespace=None):
        argparse.ArgumentParser.parse_known_args = real
        found["options"] = sorted(self._option_string_actions)
        found["subcommands"] = {
            name: sorted(sub._option_string_actions)
            for action in self._actions if isinstance(action, argparse._SubParsersAction)
            for name, sub in action.choices.items()
        }
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                self.parse_args(["--help"])
            found["help_exit"] = "returned"
        except SystemExit as e:
            found["help_exit"] = e.code
        found["help"] = len(out.getvalue())
        raise Stop()
    argparse.ArgumentParser.parse_known_args = probe
    sys.argv = [module, "--help"]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        found["error"] = "ran to the end without parsing arguments"
    except Stop:
        pass
    except SystemExit as e:
        found["error"] = f"exited with {e.code} before parsing arguments"
    except BaseException as e:
        found["error"] = f"{type(e).__name__}: {e}"
    finally:
        argparse.ArgumentParser.parse_known_args = real
print("PROBE" + json.dumps(result))
"""


def probe(modules: List[str]) -> Dict[str, dict]:
    """{module: {"options", "subcommands", "help_exit", "help"} or {"error"}} for each module."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(modules)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONPATH": PROJECT_ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    line = [x for x in proc.stdout.splitlines() if x.startswith("PROBE")]
    assert line, f"the probe failed:\n{proc.stderr[-3000:]}"
    return json.loads(line[-1][len("PROBE") :])


def read(page: str) -> str:
    with open(os.path.join(PROJECT_ROOT, page), encoding="utf-8") as f:
        return f.read()


def make_targets() -> set:
    with open(os.path.join(PROJECT_ROOT, "Makefile")) as f:
        rules = re.findall(r"^([\w-]+(?:[ \t]+[\w-]+)*)[ \t]*:(?!=)", f.read(), flags=re.M)
    return {target for rule in rules for target in rule.split()}


def documented_commands() -> Dict[str, List[Tuple[List[str], str]]]:
    """{target: [(arguments, page), ...]} for every project python command the pages show."""
    found: Dict[str, List[Tuple[List[str], str]]] = {}
    for page in pages():
        for program, target, args in commands(read(page)):
            if program == "python" or program == "python3":
                if project_command(target):
                    found.setdefault(target, []).append((args, page))
    return found


def source(module: str) -> str:
    """The source of a project module (of every file, for a package), "" if it has none."""
    path = os.path.join(PROJECT_ROOT, *module.split("."))
    files = [path + ".py"] if os.path.exists(path + ".py") else []
    if os.path.isdir(path):
        files = [os.path.join(path, name) for name in sorted(os.listdir(path)) if name.endswith(".py")]
    text = ""
    for name in files:
        with open(name, encoding="utf-8") as f:
            text += f.read()
    return text


def test_every_page_is_found_and_linked_from_the_readme():
    readme = read("README.md")
    docs = [p for p in pages() if p.startswith("docs" + os.sep)]
    assert docs, "no pages under docs/"
    unlinked = [p for p in docs if f"({p})" not in readme and f"({p}#" not in readme]
    assert not unlinked, f"pages the README does not link: {unlinked}"


def test_every_make_target_shown_exists():
    targets = make_targets()
    assert {"run", "test", "test-fast"} <= targets
    missing = sorted(
        {
            (t, page)
            for page in pages()
            for program, t, _ in commands(read(page))
            if program == "make" and t not in targets
        }
    )
    assert not missing, f"make targets the Makefile does not have (target, page): {missing}"


def test_every_command_shown_exists_answers_help_and_accepts_its_flags():
    documented = documented_commands()
    assert documented, "no commands found in the pages"
    missing = sorted(
        t for t in documented if not t.startswith("-m ") and not os.path.exists(os.path.join(PROJECT_ROOT, t))
    )
    assert not missing, f"commands the pages show that do not exist: {missing}"
    # A command without an argument parser would run for real: it is reported, never started.
    unparsed = sorted(t for t in documented if "argparse" not in source(module_of(t)))
    assert not unparsed, f"commands with no argument parser (they cannot answer --help): {unparsed}"
    probed = probe(sorted({module_of(t) for t in documented}))
    problems = []
    for target, uses in sorted(documented.items()):
        found = probed[module_of(target)]
        if "error" in found:
            problems.append(f"{target}: {found['error']}")
            continue
        if found["help_exit"] != 0 or not found["help"]:
            problems.append(f"{target} --help: exit {found['help_exit']}, {found['help']} characters")
        if not module_of(target).startswith(TF_SERVING_STYLE):
            lone = [o for o in found["options"] if "_" in o and o.replace("_", "-") not in found["options"]]
            if lone:
                problems.append(f"{target}: {lone} have no hyphenated spelling (--a-b, as the other commands)")
        for args, page in uses:
            accepted = set(found["options"])
            sub = next((a for a in args if a in found["subcommands"]), None)
            if sub:
                accepted |= set(found["subcommands"][sub])
            for arg in args:
                for flag in FLAG.findall(arg.split("=")[0]):
                    if "_" in flag and not module_of(target).startswith(TF_SERVING_STYLE):
                        problems.append(f"{page} spells {target}'s {flag} with underscores")
                    if flag not in accepted:
                        problems.append(f"{target}{' ' + sub if sub else ''} has no {flag} ({page})")
    assert not problems, "\n".join(sorted(set(problems)))


def generated_roots() -> List[str]:
    with open(os.path.join(PROJECT_ROOT, ".gitignore")) as f:
        return [line.strip().rstrip("/") for line in f if line.strip() and not line.startswith("#")]


OUTPUT_FLAGS = ("--output", "--out", ">", ">>")  # what follows them is written, so need not exist


def fenced_words(markdown: str) -> List[str]:
    """The words of the shell lines in code blocks that a command reads, a flag's value as its own
    word (`predict data/samples/one.png`, `--model_config_file=serving_model/...`)."""
    words = []
    for line in code_texts(markdown, spans=False):
        line = re.split(r"(?:^|\s)#", line)[0]  # a shell comment
        previous = ""
        for word in line.split():
            flag, _, value = word.rpartition("=")
            if previous not in OUTPUT_FLAGS and flag not in OUTPUT_FLAGS:
                words.append(value.strip("'\""))
            previous = word
    return words


def named_paths(markdown: str) -> List[str]:
    """Code spans, link targets and the words of code blocks that name a path under one of the
    repository's top folders."""
    tops = {d for d in os.listdir(PROJECT_ROOT) if not d.startswith(".")}
    spans = re.findall(r"`([^`\s]+)`", markdown) + re.findall(r"\]\(([^)\s#]+)", markdown)
    spans += fenced_words(markdown)
    paths = []
    for span in spans:
        span = span.rstrip(".,:;")
        if "://" in span or any(c in span for c in "<>*{}$=") or "/" not in span:
            continue
        if span.split("/")[0] in tops:
            paths.append(span)
    return paths


def python_file(name: str) -> str:
    """modules/hparams.py for a Python name such as modules/hparams.HParams."""
    folder, _, last = name.rpartition("/")
    return f"{folder}/{last.split('.')[0]}.py"


def test_every_repository_path_named_exists():
    generated = generated_roots()
    missing = []
    for page in pages():
        for path in named_paths(read(page)):
            if any(path == g or path.startswith(g + "/") for g in generated):
                continue
            if not any(os.path.exists(os.path.join(PROJECT_ROOT, p)) for p in (path, python_file(path))):
                missing.append((path, page))
    assert not missing, f"paths that do not exist (path, page): {sorted(set(missing))}"


def test_every_relative_link_resolves():
    broken = []
    for page in pages():
        for target in re.findall(r"\]\(([^)\s]+)\)", read(page)):
            target = target.split("#")[0]
            if not target or "://" in target or target.startswith("mailto:"):
                continue
            if not os.path.exists(os.path.join(PROJECT_ROOT, os.path.dirname(page), target)):
                broken.append((target, page))
    assert not broken, f"links that resolve to nothing (link, page): {broken}"
