"""create_pipeline's DAG, checked without running it; its Beam args, checked by running Beam."""

import dataclasses
import json

import pytest

from modules.hparams import HParams, custom_config
from pipeline import configs
from pipeline.blessing import eval_config
from pipeline.dag import create_pipeline

# Each component and the components it waits for (tests/kubeflow checks the compiled DAG against it).
UPSTREAM = {
    "IdxExampleGen": [],
    "ImportSchemaGen": [],
    "StatisticsGen": ["IdxExampleGen", "ImportSchemaGen"],
    "ExampleValidator": ["ImportSchemaGen", "StatisticsGen"],
    "DataGate": ["ExampleValidator", "ImportSchemaGen", "StatisticsGen"],
    # The gate passes no data to Transform: the edge orders them, so anomalies stop the run.
    "Transform": ["DataGate", "IdxExampleGen", "ImportSchemaGen"],
    "Trainer": ["ImportSchemaGen", "Transform"],
    "LatestBlessedModelResolver": [],
    "Evaluator": ["IdxExampleGen", "LatestBlessedModelResolver", "Trainer"],
    # Release (id Pusher) also reads the data, statistics and schema for the model card and TFLite check.
    "Pusher": ["Evaluator", "IdxExampleGen", "ImportSchemaGen", "StatisticsGen", "Trainer"],
}


def _pipeline(**overrides):
    args = dict(
        pipeline_name="p",
        pipeline_root="/tmp/root",
        data_root="/tmp/data",
        serving_model_dir="/tmp/serving",
        model_name="mnist",
        preprocessing_fn=configs.PREPROCESSING_FN,
        run_fn=configs.RUN_FN,
        trainer_custom_config=custom_config({"epochs": 1}, "abc"),
        eval_config=eval_config(0.99, 0.002),
        label_drift_threshold=0.05,
        pixel_drift_threshold=0.01,
        beam_pipeline_args=configs.BEAM_PIPELINE_ARGS,
        schema_file=configs.SCHEMA_FILE,
        code_version="abc",
    )
    return create_pipeline(**{**args, **overrides})


def test_components_and_their_upstreams():
    nodes = {c.id: c for c in _pipeline().components}
    assert {cid: sorted(u.id for u in c.upstream_nodes) for cid, c in nodes.items()} == UPSTREAM


def test_trainer_never_reads_test_and_evaluator_reads_only_test():
    nodes = {c.id: c for c in _pipeline().components}
    trainer = nodes["Trainer"].exec_properties  # protos are stored as JSON strings
    assert json.loads(trainer["train_args"])["splits"] == ["train"]
    assert json.loads(trainer["eval_args"])["splits"] == ["eval"]
    assert json.loads(nodes["Evaluator"].exec_properties["example_splits"]) == ["test"]
    assert json.loads(nodes["Transform"].exec_properties["splits_config"]) == {
        "analyze": ["train"],
        "transform": ["train", "eval"],
    }


def test_hyperparameters_and_thresholds_reach_their_components_by_one_route():
    hparams = dataclasses.replace(HParams(), epochs=3)
    nodes = {
        c.id: c
        for c in _pipeline(
            trainer_custom_config=custom_config(hparams.to_dict(), "f00d"), eval_config=eval_config(0.97, 0.01)
        ).components
    }
    trainer_config = json.loads(nodes["Trainer"].exec_properties["custom_config"])
    assert HParams.from_dict(trainer_config["hparams"]) == hparams and trainer_config["code_version"] == "f00d"
    thresholds = json.loads(nodes["Evaluator"].exec_properties["eval_config"])["metrics_specs"][0]["metrics"][1]
    threshold = thresholds["per_slice_thresholds"][0]["threshold"]
    assert threshold["value_threshold"]["lower_bound"] == 0.97
    assert threshold["change_threshold"]["absolute"] == -0.01


def test_beam_args_run_beam_in_process_and_never_start_prism(monkeypatch):
    """Beam 2.77's default runner starts Prism, which downloads its binary from the network. The
    pipeline's Beam args must run a real Beam job here without constructing Prism's job server."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.portability import prism_runner
    from apache_beam.testing.util import assert_that, equal_to

    prism_starts = []

    def refuse(self, options):  # recorded, then refused before any download (DirectRunner would fall back)
        prism_starts.append(options)
        raise RuntimeError("Prism refused by the test")

    monkeypatch.setattr(prism_runner.PrismJobServer, "__init__", refuse)
    with beam.Pipeline(options=PipelineOptions(_pipeline().beam_pipeline_args)) as p:
        squares = p | beam.Create([1, 2, 3]) | beam.Map(lambda x: x * x)
        assert_that(squares, equal_to([1, 4, 9]))
    assert prism_starts == [] and type(p.runner).__name__ == "FnApiRunner"


def test_tuner_feeds_trainer_when_enabled():
    pipeline = _pipeline(tuner_fn=configs.TUNER_FN, tuning_trials=2)
    nodes = {c.id: c for c in pipeline.components}
    assert sorted(u.id for u in nodes["Tuner"].upstream_nodes) == ["ImportSchemaGen", "Transform"]
    assert "Tuner" in {u.id for u in nodes["Trainer"].upstream_nodes}
    assert json.loads(nodes["Tuner"].exec_properties["custom_config"])["max_trials"] == 2
    assert "Tuner" not in {c.id for c in _pipeline().components}


def test_a_tuner_without_trials_is_refused():
    with pytest.raises(ValueError, match="tuning_trials"):
        _pipeline(tuner_fn=configs.TUNER_FN)


def test_a_component_gets_its_own_beam_args_and_an_unknown_or_non_beam_one_is_refused():
    pipeline = _pipeline(component_beam_args={"StatisticsGen": ["--environment_config=127.0.0.1:50001"]})
    nodes = {c.id: c for c in pipeline.components}
    # After the pipeline's own args, so a flag given in both takes the component's value.
    own = ["--environment_config=127.0.0.1:50001"]
    assert nodes["StatisticsGen"].executor_spec.beam_pipeline_args == [*configs.BEAM_PIPELINE_ARGS, *own]
    assert nodes["Evaluator"].executor_spec.beam_pipeline_args == list(configs.BEAM_PIPELINE_ARGS)
    assert sorted(c.id for c in pipeline.components if hasattr(c, "with_beam_pipeline_args")) == sorted(
        configs.BEAM_COMPONENTS
    )
    for wrong in ("StatsGen", "Trainer"):
        with pytest.raises(ValueError, match=f"no Beam component '{wrong}'"):
            _pipeline(component_beam_args={wrong: ["--environment_config=x"]})


def test_an_edit_under_modules_changes_the_code_version_that_transform_and_trainer_carry(tmp_path):
    """TFX caches on inputs and execution properties; with dotted entry points it cannot see the
    code, so the modules' fingerprint is an execution property of Transform and Trainer: an edit
    (or a new file) under modules/ changes it, and so misses their cache."""
    import shutil

    from pipeline import code_version

    copy = tmp_path / "modules"
    shutil.copytree(code_version.MODULES_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = code_version.fingerprint(str(copy))
    assert before == code_version.fingerprint()
    with open(copy / "cnn.py", "a") as f:
        f.write("# a comment is an edit too\n")
    edited = code_version.fingerprint(str(copy))
    (copy / "extra.py").write_text("X = 1\n")
    assert len({before, edited, code_version.fingerprint(str(copy))}) == 3
    nodes = {
        c.id: c
        for c in _pipeline(
            trainer_custom_config=custom_config(HParams().to_dict(), edited), code_version=edited
        ).components
    }
    assert json.loads(nodes["Transform"].exec_properties["custom_config"])["code_version"] == edited
    assert json.loads(nodes["Trainer"].exec_properties["custom_config"])["code_version"] == edited
