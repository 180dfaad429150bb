"""The compiled KFP v2 spec: DAG, image, executors, runtime parameters; loadable by the kfp SDK."""

import json

import kfp
import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tensorflow_model_analysis.proto import config_pb2

from kubeflow import runner
from modules.hparams import HParams, from_custom_config
from pipeline import blessing, code_version, configs
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
    expected = {
        name: [f"{resolver}-model-resolver" if u == resolver else u for u in ups]
        for name, ups in UPSTREAM.items()
        if name != resolver
    }
    expected.update({f"{resolver}-model-blessing-resolver": [], f"{resolver}-model-resolver": []})
    assert {name: sorted(t.get("dependentTasks", [])) for name, t in tasks.items()} == expected


def test_every_container_runs_the_configured_image_and_our_executors(compiled):
    executors = _spec(compiled)["deploymentSpec"]["executors"]
    containers = {k: v["container"] for k, v in executors.items() if "container" in v}
    assert len(containers) == 9 and {c["image"] for c in containers.values()} == {IMAGE}
    class_of = {
        k: c["args"][c["args"].index("--executor_class_path") + 1]
        for k, c in containers.items()
        if "--executor_class_path" in c["args"]
    }
    assert class_of["IdxExampleGen_executor"] == "components.idx_example_gen.executor.Executor"
    assert class_of["Trainer_executor"] == "tfx.components.trainer.executor.GenericExecutor"
    assert class_of["Transform_executor"] == "tfx.components.transform.executor.Executor"
    assert class_of["DataGate_executor"].startswith("components.data_gate.component.")
    assert class_of["Pusher_executor"].startswith("components.release.component.")
    assert all(
        c["command"][-1] == "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"
        for c in containers.values()
    )


def _eval_thresholds(eval_config_json: str):
    """(lower bound, allowed drop) as the Evaluator reads them: the JSON parsed into an EvalConfig."""
    eval_config = json_format.Parse(eval_config_json, config_pb2.EvalConfig())
    [accuracy] = [m for spec in eval_config.metrics_specs for m in spec.metrics if m.per_slice_thresholds]
    [mnist] = accuracy.per_slice_thresholds  # no fresh-window threshold by default
    assert list(mnist.slicing_specs) == [blessing.MNIST_TEST_SLICE]  # MNIST's test rows only
    return mnist.threshold.value_threshold.lower_bound.value, -mnist.threshold.change_threshold.absolute.value


def test_training_and_blessing_knobs_are_runtime_parameters(compiled):
    spec = _spec(compiled)
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    assert set(parameters) == {runner.TRAINER_CONFIG_PARAMETER, runner.EVAL_CONFIG_PARAMETER}
    # The defaults decoded the way the Trainer (run_fn) and the Evaluator decode them.
    trainer_default = json.loads(parameters[runner.TRAINER_CONFIG_PARAMETER]["defaultValue"])
    assert from_custom_config(trainer_default) == HParams()
    assert trainer_default["code_version"] == code_version.fingerprint()
    assert _eval_thresholds(parameters[runner.EVAL_CONFIG_PARAMETER]["defaultValue"]) == (
        configs.MIN_ACCURACY,
        configs.MAX_ACCURACY_DROP,
    )
    tasks = spec["root"]["dag"]["tasks"]
    assert tasks["Trainer"]["inputs"]["parameters"]["custom_config"] == {
        "componentInputParameter": runner.TRAINER_CONFIG_PARAMETER
    }
    assert tasks["Evaluator"]["inputs"]["parameters"]["eval_config"] == {
        "componentInputParameter": runner.EVAL_CONFIG_PARAMETER
    }


def test_the_min_accuracy_flag_reaches_the_compiled_default(tmp_path, small_data_root):
    args = runner.parse_args(
        [
            "--image",
            IMAGE,
            "--pipeline-root",
            str(tmp_path / "root"),
            "--data-root",
            small_data_root,
            "--serving-dir",
            str(tmp_path / "serving"),
            "--output",
            str(tmp_path / "pipeline.yaml"),
            "--min-accuracy",
            "0.97",
        ]
    )
    parameters = _spec(runner.compile_pipeline(args))["root"]["inputDefinitions"]["parameters"]
    assert _eval_thresholds(parameters[runner.EVAL_CONFIG_PARAMETER]["defaultValue"])[0] == 0.97


def test_the_release_converts_every_format_unless_the_compile_asks_for_fewer(compiled, tmp_path, small_data_root):
    def pusher_formats(path):
        return _spec(path)["root"]["dag"]["tasks"]["Pusher"]["inputs"]["parameters"]["formats"]["runtimeValue"]

    assert pusher_formats(compiled) == {"constant": "all"}
    argv = ["--image", IMAGE, "--pipeline-root", str(tmp_path / "root"), "--data-root", small_data_root]
    argv += ["--serving-dir", str(tmp_path / "serving"), "--output", str(tmp_path / "pipeline.yaml")]
    assert pusher_formats(runner.compile_pipeline(runner.parse_args([*argv, "--formats", "onnx"]))) == {
        "constant": "onnx"
    }
    with pytest.raises(SystemExit):  # refused before anything is compiled
        runner.parse_args([*argv, "--formats", "tflite_micro"])


def test_loads_with_the_kfp_sdk_and_parses_strictly(compiled):
    component = kfp.components.load_component_from_file(compiled)
    assert component.name == "mnist-tfx"
    json_format.ParseDict(_spec(compiled), pipeline_spec_pb2.PipelineSpec())


def test_schema_path_defaults_to_the_image_layout():
    args = runner.parse_args(
        ["--image", "i", "--pipeline-root", "gs://b/r", "--data-root", "gs://b/d", "--serving-dir", "/mnt/s"]
    )
    assert args.schema_file == "/mnist-tfx/pipeline/schema/schema.pbtxt"


def test_an_object_store_serving_dir_is_refused_at_compile_time(capsys):
    with pytest.raises(SystemExit):
        runner.parse_args(
            ["--image", "i", "--pipeline-root", "gs://b/r", "--data-root", "gs://b/d", "--serving-dir", "gs://b/s"]
        )
    assert "atomic rename" in capsys.readouterr().err


def test_without_kfp_the_compile_says_which_python_it_needs(monkeypatch, tmp_path):
    from tfx import v1 as tfx

    # What TFX offers where kfp is not installed (Python 3.12 and later): no KubeflowV2DagRunner.
    monkeypatch.delattr(tfx.orchestration.experimental, "KubeflowV2DagRunner")
    with pytest.raises(
        SystemExit, match=r"needs the kfp package, .* only on Python 3.10 and 3.11; this is Python 3\.\d+"
    ):
        runner.main(
            [
                *("--image", IMAGE, "--pipeline-root", str(tmp_path / "root"), "--data-root", str(tmp_path)),
                *("--serving-dir", str(tmp_path / "serving"), "--output", str(tmp_path / "pipeline.yaml")),
            ]
        )
    assert not (tmp_path / "pipeline.yaml").exists()
