"""create_pipeline's DAG, checked without running it."""
import json

from pipeline import configs
from pipeline.pipeline import create_pipeline

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
        pipeline_name="p", pipeline_root="/tmp/root", data_root="/tmp/data", serving_model_dir="/tmp/serving",
        model_name="mnist", preprocessing_fn=configs.PREPROCESSING_FN, run_fn=configs.RUN_FN, hparams={"epochs": 1},
        min_accuracy=0.99, max_accuracy_drop=0.002, label_drift_threshold=0.05, pixel_drift_threshold=0.01,
        beam_pipeline_args=configs.BEAM_PIPELINE_ARGS, schema_file=configs.SCHEMA_FILE)
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
    "analyze": ["train"], "transform": ["train", "eval"]}


def test_beam_args_avoid_prism_download():
    assert "--runner=FnApiRunner" in _pipeline().beam_pipeline_args


def test_tuner_feeds_trainer_when_enabled():
    pipeline = _pipeline(tuner_fn=configs.TUNER_FN, tuning_trials=2)
    nodes = {c.id: c for c in pipeline.components}
    assert sorted(u.id for u in nodes["Tuner"].upstream_nodes) == ["ImportSchemaGen", "Transform"]
    assert "Tuner" in {u.id for u in nodes["Trainer"].upstream_nodes}
    assert "Tuner" not in {c.id for c in _pipeline().components}
