"""The whole compiled DAG runs here, every container task through its own command, twice."""

import dataclasses
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from kubeflow import local_run, runner
from modules import features, hparams, idx, push_layout
from pipeline import configs, data_slice
from tests.timeouts import E2E_TIMEOUT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(E2E_TIMEOUT)]

CONTAINER_TASKS = {
    "ImportSchemaGen",
    "IdxExampleGen",
    "StatisticsGen",
    "ExampleValidator",
    "DataGate",
    "Transform",
    "Trainer",
    "Evaluator",
    "Pusher",
}
RESOLVERS = {"LatestBlessedModelResolver-model-blessing-resolver", "LatestBlessedModelResolver-model-resolver"}
MIN_ACCURACY = 0.5  # 540 training images, batch 32, 4 epochs: a bound well above chance


def _params(**hparam_changes) -> dict:
    small = {**configs.QUICK_HPARAMS, "epochs": 4, "batch_size": 32}  # enough steps for BatchNorm to settle
    quick = dataclasses.replace(hparams.HParams(), **{**small, **hparam_changes})
    return {
        runner.TRAINER_CONFIG_PARAMETER: runner.trainer_config_json(quick),
        runner.EVAL_CONFIG_PARAMETER: runner.eval_config_json(MIN_ACCURACY),
    }


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, small_data_root):
    root = tmp_path_factory.mktemp("kfp_local")
    # Two spans: IdxExampleGen's driver must resolve span-{SPAN} to the newest, span-2 (600 / 200 records).
    data_root = data_slice.write_slice(configs.DATA_ROOT, str(root / "data"), 300, 100)
    shutil.copytree(idx.span_dir(small_data_root, 1), idx.span_dir(data_root, 2))
    serving_dir = str(root / "serving" / configs.MODEL_NAME)
    args = runner.parse_args(
        [
            "--image=registry.example/mnist-tfx:test",
            f"--pipeline-root={root / 'pipeline_root'}",
            f"--data-root={data_root}",
            f"--serving-dir={serving_dir}",
            f"--schema-file={configs.SCHEMA_FILE}",  # the image's path, here the checkout's
            f"--output={root / 'pipeline.yaml'}",
            "--attack-examples=0",
            "--formats=tflite",  # the one other format the tests read
        ]
    )
    spec = local_run.local_task.load_spec(runner.compile_pipeline(args))
    kfp_root = str(root / "kfp")
    first = local_run.run(spec, kfp_root, "run-1", _params())
    # A recurring run whose Trainer settings changed: upstream tasks come from cache, a new model is
    # trained, and the resolver must hand the first run's blessed model to the Evaluator. Its learning
    # rate is too small to learn anything in its one epoch: it must be refused and the first version kept.
    second = local_run.run(spec, kfp_root, "run-2", _params(peak_learning_rate=1e-6, epochs=1))
    return first, second, serving_dir, small_data_root


def test_every_container_task_ran_through_its_command_and_the_first_model_was_pushed(two_runs):
    first, _, serving_dir, _ = two_runs
    assert {t for t, r in first.items() if r["state"] == "EXECUTED"} == CONTAINER_TASKS
    assert {t: first[t]["state"] for t in RESOLVERS} == dict.fromkeys(RESOLVERS, "NONE")  # nothing blessed yet
    blessing = first["Evaluator"]["outputs"]["blessing"]
    assert blessing["metadata"]["blessed"] == 1
    assert blessing["metadata"]["current_model_id"] == first["Trainer"]["outputs"]["model"]["name"]

    pushed = first["Pusher"]["outputs"]["pushed_model"]["metadata"]
    assert pushed["pushed"] == 1
    # The same layout as the local runner's push: a numbered version holding the SavedModel, the
    # TFLite model, the model card and release.json, with models.config beside the model folder.
    version_dir = os.path.join(serving_dir, pushed["pushed_version"])
    assert push_layout.version_dirs(serving_dir)[int(pushed["pushed_version"])] == version_dir
    for name in (push_layout.SAVED_MODEL_FILE, push_layout.TFLITE_FILE, push_layout.CARD_FILE):
        assert os.path.getsize(os.path.join(version_dir, name)) > 0, name
    with open(os.path.join(version_dir, push_layout.RELEASE_FILE)) as f:
        release = json.load(f)
    assert release["version"] == int(pushed["pushed_version"]) and release["data"]["span"] == 2
    counts = release["data"]["split_counts"]
    assert counts["train"] + counts["eval"] == 600 and counts["test"] == 200
    assert release["lineage"]["model"] == first["Trainer"]["outputs"]["model"]["uri"]
    with open(push_layout.models_config_path(serving_dir)) as f:
        assert f'base_path: "{os.path.abspath(serving_dir)}"' in f.read()


def test_the_pushed_model_answers_real_digits_above_its_bound(two_runs):
    first, _, serving_dir, small_data_root = two_runs
    version_dir = os.path.join(serving_dir, first["Pusher"]["outputs"]["pushed_model"]["metadata"]["pushed_version"])
    images, labels = idx.read_span_pair(idx.span_dir(small_data_root, 1), idx.TEST_PAIR)
    serve = tf.saved_model.load(version_dir).signatures["serving_default"]
    examples = [
        tf.train.Example(
            features=tf.train.Features(
                feature={features.IMAGE_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=img.reshape(-1)))}
            )
        ).SerializeToString()
        for img in images
    ]
    probabilities = next(iter(serve(examples=tf.constant(examples)).values())).numpy()
    assert float(np.mean(probabilities.argmax(axis=1) == labels)) >= MIN_ACCURACY


def test_a_second_run_reuses_the_cache_and_gets_the_first_model_as_baseline(two_runs):
    first, second, serving_dir, _ = two_runs
    states = {t: r["state"] for t, r in second.items()}
    retrained = {"Trainer", "Evaluator", "Pusher"}
    assert {t for t, s in states.items() if s == "CACHED"} == CONTAINER_TASKS - retrained
    assert {t for t, s in states.items() if s == "EXECUTED"} == retrained
    assert states["LatestBlessedModelResolver-model-resolver"] == "RESOLVED"
    first_model = first["Trainer"]["outputs"]["model"]["name"]
    assert second["LatestBlessedModelResolver-model-resolver"]["outputs"]["model"]["name"] == first_model
    assert second["Trainer"]["outputs"]["model"]["name"] != first_model
    # The Evaluator compared against it: TFX writes the baseline's id into the blessing.
    blessing = second["Evaluator"]["outputs"]["blessing"]["metadata"]
    assert blessing["baseline_model_id"] == first_model
    assert blessing["current_model_id"] == second["Trainer"]["outputs"]["model"]["name"]
    # A model left near chance is refused, and the push follows the blessing: nothing new is served.
    assert blessing["blessed"] == 0
    versions = sorted(push_layout.version_dirs(serving_dir))
    first_version = int(first["Pusher"]["outputs"]["pushed_model"]["metadata"]["pushed_version"])
    assert versions == [first_version]
    assert second["Pusher"]["outputs"]["pushed_model"]["metadata"]["pushed"] == 0
