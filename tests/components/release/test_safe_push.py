"""A push is visible complete or not at all; an interrupted push leaves nothing TF Serving would load."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from components.release import safe_push
from modules.push_layout import version_dirs
from tests.timeouts import COMMAND_TIMEOUT


def _names(base):
    return sorted(os.listdir(base))


def test_push_copies_the_model_and_extra_files_under_a_new_integer_version(tmp_path, exported_model):
    base = str(tmp_path / "mnist")
    card = tmp_path / "card.md"
    card.write_text("# card")
    final = safe_push.push(exported_model, base, {"model_card.md": str(card)}, version=7)
    assert _names(base) == ["7"] and final == os.path.join(base, "7")
    assert os.path.isfile(os.path.join(final, "saved_model.pb"))
    assert open(os.path.join(final, "model_card.md")).read() == "# card"
    assert safe_push.next_version(base, now=5) == 8  # never below an existing version
    assert safe_push.next_version(base, now=100) == 100
    with pytest.raises(FileExistsError):
        safe_push.push(exported_model, base, {}, version=7)


def test_a_copy_failing_halfway_leaves_no_version_and_no_staging(tmp_path, exported_model):
    base = str(tmp_path / "mnist")
    safe_push.push(exported_model, base, {}, version=1)
    copied = []

    def copy_then_fail(src, dst):
        def copy_file(s, d):
            if len(copied) == 3:
                raise OSError("disk full (injected after 3 files)")
            copied.append(s)
            return shutil.copy2(s, d)

        return shutil.copytree(src, dst, copy_function=copy_file)

    with pytest.raises(OSError, match="disk full"):
        safe_push.push(exported_model, base, {}, copytree=copy_then_fail, version=2)
    assert len(copied) == 3
    assert _names(base) == ["1"]  # the earlier version untouched, no staging left


_SLOW_PUSH = """
import shutil, sys, time
from components.release import safe_push
def slow_copy(s, d):
    time.sleep(0.5)
    return shutil.copy2(s, d)
safe_push.push(sys.argv[1], sys.argv[2], {}, version=2,
               copytree=lambda a, b: shutil.copytree(a, b, copy_function=slow_copy))
"""


def test_a_push_killed_midway_is_invisible_to_serving_and_cleaned_by_the_next(tmp_path, exported_model):
    base = str(tmp_path / "mnist")
    safe_push.push(exported_model, base, {}, version=1)
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_PUSH, exported_model, base])

    def copied_files():  # files already in the staging copy
        staged = [n for n in os.listdir(base) if n.startswith(safe_push.STAGING_PREFIX)]
        return sum(len(files) for s in staged for _, _, files in os.walk(os.path.join(base, s)))

    deadline = time.time() + 60
    while time.time() < deadline and copied_files() < 2:  # a few files into the copy
        time.sleep(0.05)
    assert proc.poll() is None, "the push finished before it could be killed midway"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    staging = [n for n in _names(base) if n.startswith(safe_push.STAGING_PREFIX)]
    assert len(staging) == 1 and os.listdir(os.path.join(base, staging[0]))  # half a copy exists...
    assert list(version_dirs(base)) == [1]  # ...but no server would see it as a version
    safe_push.push(exported_model, base, {}, version=3)
    assert _names(base) == ["1", "3"]  # the next push removed the leftover


def test_a_push_still_copying_is_not_cleaned_away_by_another_push(tmp_path, exported_model):
    base = str(tmp_path / "mnist")
    safe_push.push(exported_model, base, {}, version=1)
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_PUSH, exported_model, base])
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not any(n.startswith(safe_push.STAGING_PREFIX) for n in os.listdir(base)):
            time.sleep(0.05)
        safe_push.push(exported_model, base, {}, version=3)  # meanwhile: must leave the other copy alone
        assert proc.wait(timeout=COMMAND_TIMEOUT) == 0
    finally:
        proc.kill()
    assert _names(base) == ["1", "2", "3"]
    assert all(os.path.isfile(os.path.join(base, v, "saved_model.pb")) for v in ("1", "2", "3"))


def test_an_object_store_push_directory_is_refused_with_the_reason(exported_model):
    with pytest.raises(ValueError, match="atomic rename"):
        safe_push.push(exported_model, "gs://bucket/serving/mnist", {})
