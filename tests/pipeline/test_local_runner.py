"""The local runner's defaults: quick runs never share metadata or the push directory with full runs."""
import os

import pytest

from pipeline import local_runner


def test_full_run_defaults():
    out, serving = local_runner.default_paths(local_runner.parse_args([]))
    assert out == os.path.join(local_runner.PROJECT_ROOT, "outputs")
    assert serving == os.path.join(local_runner.PROJECT_ROOT, "serving_model", "mnist")


def test_quick_run_is_kept_apart():
    out, serving = local_runner.default_paths(local_runner.parse_args(["--quick"]))
    assert out == os.path.join(local_runner.PROJECT_ROOT, "outputs", "quick")
    assert serving.startswith(out + os.sep)


def test_explicit_paths_win(tmp_path):
    out, serving = local_runner.default_paths(local_runner.parse_args(
        ["--quick", "--output-root", str(tmp_path / "o"), "--serving-dir", str(tmp_path / "s")]))
    assert (out, serving) == (str(tmp_path / "o"), str(tmp_path / "s"))


def test_hparam_flags_are_typed_and_checked():
    assert local_runner.parse_hparams(["epochs=3", "bn_momentum=0.9", "strategy=mirrored"]) == {
        "epochs": 3, "bn_momentum": 0.9, "strategy": "mirrored"}
    with pytest.raises(SystemExit, match="unknown field 'epoch'"):
        local_runner.parse_hparams(["epoch=3"])
