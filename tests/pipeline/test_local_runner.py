"""The local runner's defaults: quick runs never share metadata or the push directory with full runs."""

import pathlib

import pytest

from modules.hparams import HParams
from pipeline import configs, local_runner

CHECKOUT = pathlib.Path(__file__).resolve().parents[2]  # tests/pipeline/ -> the checkout's root


def test_full_run_writes_under_the_checkout():
    out, serving = local_runner.default_paths(local_runner.parse_args([]))
    assert out == str(CHECKOUT / "outputs")
    assert serving == str(CHECKOUT / "serving_model" / "mnist")


def test_quick_run_is_kept_apart():
    out, serving = local_runner.default_paths(local_runner.parse_args(["--quick"]))
    assert out == str(CHECKOUT / "outputs" / "quick")
    assert serving == str(CHECKOUT / "outputs" / "quick" / "serving_model" / "mnist")


def test_explicit_paths_win(tmp_path):
    out, serving = local_runner.default_paths(
        local_runner.parse_args(["--quick", "--output-root", str(tmp_path / "o"), "--serving-dir", str(tmp_path / "s")])
    )
    assert (out, serving) == (str(tmp_path / "o"), str(tmp_path / "s"))


def test_quick_flags_and_overrides_combine_in_order():
    hparams, min_accuracy = local_runner.settings(
        local_runner.parse_args(["--quick", "--epochs", "5", "--hparam", "dropout=0.25", "--min-accuracy", "0.8"])
    )
    assert (hparams.epochs, hparams.dropout, hparams.bn_momentum, min_accuracy) == (5, 0.25, 0.9, 0.8)
    # Without flags, nothing of the quick settings leaks into a full run.
    assert local_runner.settings(local_runner.parse_args([])) == (HParams(), configs.MIN_ACCURACY)


def test_hparam_flags_are_typed_and_checked():
    assert local_runner.parse_hparams(["epochs=3", "bn_momentum=0.9", "strategy=mirrored"]) == {
        "epochs": 3,
        "bn_momentum": 0.9,
        "strategy": "mirrored",
    }
    with pytest.raises(SystemExit, match="unknown field 'epoch'"):
        local_runner.parse_hparams(["epoch=3"])


def test_component_beam_args_group_by_component():
    assert local_runner.component_beam_args(
        ["Evaluator=--environment_config=h:1", "Transform=--a=1", "Evaluator=--b"]
    ) == {"Evaluator": ["--environment_config=h:1", "--b"], "Transform": ["--a=1"]}
    with pytest.raises(SystemExit, match="expected COMPONENT=--flag"):
        local_runner.component_beam_args(["Evaluator"])
    with pytest.raises(SystemExit, match="'Trainer' runs no Beam job"):
        local_runner.component_beam_args(["Trainer=--a"])


def test_the_release_attacks_fewer_digits_in_quick_mode_and_as_many_as_asked():
    assert local_runner.attack_examples(local_runner.parse_args([])) == configs.ATTACK_EXAMPLES
    assert local_runner.attack_examples(local_runner.parse_args(["--quick"])) == configs.QUICK_ATTACK_EXAMPLES
    assert local_runner.attack_examples(local_runner.parse_args(["--quick", "--attack-examples", "0"])) == 0
    with pytest.raises(SystemExit, match="--attack-examples -1: a number of test digits, 0 or more"):
        local_runner.attack_examples(local_runner.parse_args(["--attack-examples", "-1"]))


def test_the_release_converts_every_format_unless_asked_for_fewer():
    assert local_runner.parse_args([]).formats == "all"
    assert local_runner.parse_args(["--formats", "none"]).formats == "none"
    with pytest.raises(SystemExit, match="--formats 'tflite,coreml': expected all, none or some of"):
        local_runner.parse_args(["--formats", "tflite,coreml"])


def test_no_cache_turns_the_pipelines_cache_off(tmp_path, monkeypatch):
    import pipeline.dag

    made = {}

    def create_pipeline(**kwargs):
        made.update(kwargs)
        raise RuntimeError("stop before running")

    monkeypatch.setattr(pipeline.dag, "create_pipeline", create_pipeline)
    for argv, cached in (([], True), (["--no-cache"], False)):
        args = local_runner.parse_args(["--quick", "--output-root", str(tmp_path), *argv])
        with pytest.raises(RuntimeError, match="stop before running"):
            local_runner.run(args, str(tmp_path), str(tmp_path / "serving"), None)
        assert made["enable_cache"] is cached


def test_the_tuner_tries_as_many_points_as_asked_and_at_least_one():
    assert local_runner.parse_args(["--tune"]).tuning_trials == configs.TUNING_TRIALS
    assert local_runner.parse_args(["--tune", "--tuning-trials", "2"]).tuning_trials == 2
    with pytest.raises(SystemExit, match="--tuning-trials 0: the Tuner tries at least one point"):
        local_runner.parse_args(["--tune", "--tuning-trials", "0"])


def test_a_refused_hyperparameter_is_a_plain_error_before_anything_runs(tmp_path, capsys):
    argv = [
        "--output-root",
        str(tmp_path / "o"),
        "--hparam",
        "adversarial_share=0.5",
        "--hparam",
        "adversarial_budget=2",
    ]
    assert local_runner.main(argv) == 2
    assert "ERROR: adversarial_budget 2.0 is outside (0, 1]" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    private = ["--hparam", "network=privacy_tutorial", "--hparam", "private=true"]
    assert local_runner.main(["--output-root", str(tmp_path / "o"), "--tune", *private]) == 2
    assert "the Tuner would train on the training split without privacy" in capsys.readouterr().err


def test_a_boolean_hyperparameter_reads_true_or_false_only():
    assert local_runner.parse_hparams(["private=true", "network=privacy_tutorial"]) == {
        "private": True,
        "network": "privacy_tutorial",
    }
    assert local_runner.parse_hparams(["private=False"]) == {"private": False}
    with pytest.raises(SystemExit, match="--hparam private=yes: true or false"):
        local_runner.parse_hparams(["private=yes"])
    with pytest.raises(SystemExit, match="--hparam epochs=many: not int"):
        local_runner.parse_hparams(["epochs=many"])
