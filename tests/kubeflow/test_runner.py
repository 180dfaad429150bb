"""The compiled KFP v2 spec: DAG, image, executors, runtime parameters; loadable by the kfp SDK."""
import json

import kfp
import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from kubeflow import runner
from modules.hparams import HParams
from pipeline import configs
from tests.kubeflow.conftest import IMAGE
from tests.pipeline.test_pipeline import UPSTREAM


def _spec(path):
    with open(path) as f:
        return yaml.safe_load(f)


def test_dag_has_every_component_with_its_dependencies(compiled):
    tasks = _spec(compiled)["root"]["dag"]["tasks"]
    # The local DAG, except that KFP splits the latest-blessed-model resolver into two metadata
    # queries and the Evaluator waits for the model one.
    resolver = "LatestBlessedModelResolver"
    expected = {name: [f"{resolver}-model-resolver" if u == resolver else u for u in ups]
                for name, ups in UPSTREAM.items() if name != resolver}
    expected.update({f"{resolver}-model-blessing-resolver": [], f"{resolver}-model-resolver": []})
    assert {name: sorted(t.get("dependentTasks", [])) for name, t in tasks.items()} == expected


def test_every_container_runs_the_configured_image_and_our_executors(compiled):
    executors = _spec(compiled)["deploymentSpec"]["executors"]
    containers = {k: v["container"] for k, v in executors.items() if "container" in v}
    assert len(containers) == 9 and {c["image"] for c in containers.values()} == {IMAGE}
    class_of = {k: c["args"][c["args"].index("--executor_class_path") + 1]
                for k, c in containers.items() if "--executor_class_path" in c["args"]}
    assert class_of["IdxExampleGen_executor"] == "components.idx_example_gen.executor.Executor"
    assert class_of["Trainer_executor"] == "tfx.components.trainer.executor.GenericExecutor"
    assert class_of["Transform_executor"] == "tfx.components.transform.executor.Executor"
    assert class_of["DataGate_executor"].startswith("components.data_gate.component.")
    assert class_of["Pusher_executor"].startswith("components.release.component.")
    assert all(c["command"][-1] == "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"
               for c in containers.values())


def test_training_and_blessing_knobs_are_runtime_parameters(compiled):
    spec = _spec(compiled)
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    assert set(parameters) == {runner.TRAINER_CONFIG_PARAMETER, runner.EVAL_CONFIG_PARAMETER}
    trainer_default = json.loads(parameters[runner.TRAINER_CONFIG_PARAMETER]["defaultValue"])
    assert trainer_default["hparams"] == HParams().to_dict()
    eval_default = json.loads(parameters[runner.EVAL_CONFIG_PARAMETER]["defaultValue"])
    [accuracy] = [m for m in eval_default["metricsSpecs"][0]["metrics"] if m["className"] == "SparseCategoricalAccuracy"]
    [overall] = accuracy["perSliceThresholds"]
    assert overall["slicingSpecs"] == [{}]
    assert overall["threshold"]["valueThreshold"]["lowerBound"] == configs.MIN_ACCURACY
    tasks = spec["root"]["dag"]["tasks"]
    assert tasks["Trainer"]["inputs"]["parameters"]["custom_config"] == {
        "componentInputParameter": runner.TRAINER_CONFIG_PARAMETER}
    assert tasks["Evaluator"]["inputs"]["parameters"]["eval_config"] == {
        "componentInputParameter": runner.EVAL_CONFIG_PARAMETER}


def test_loads_with_the_kfp_sdk_and_parses_strictly(compiled):
    component = kfp.components.load_component_from_file(compiled)
    assert component.name == "mnist-tfx"
    json_format.ParseDict(_spec(compiled), pipeline_spec_pb2.PipelineSpec())


def test_schema_path_defaults_to_the_image_layout():
    args = runner.parse_args(["--image", "i", "--pipeline-root", "gs://b/r", "--data-root", "gs://b/d",
                              "--serving-dir", "/mnt/s"])
    assert args.schema_file == "/mnist-tfx/pipeline/schema/schema.pbtxt"


def test_an_object_store_serving_dir_is_refused_at_compile_time(capsys):
    with pytest.raises(SystemExit):
        runner.parse_args(["--image", "i", "--pipeline-root", "gs://b/r", "--data-root", "gs://b/d",
                           "--serving-dir", "gs://b/s"])
    assert "atomic rename" in capsys.readouterr().err
