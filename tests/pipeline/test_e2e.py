"""The real pipeline, end to end, on a slice of data/: `python pipeline/local_runner.py --quick`."""

import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

from components.release import adversarial, formats, tflite
from pipeline import configs
from pipeline.configs import PROJECT_ROOT
from tests.timeouts import COMMAND_TIMEOUT, E2E_TIMEOUT, PIPELINE_TIMEOUT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(E2E_TIMEOUT)]


COMPONENTS = (
    "IdxExampleGen ImportSchemaGen StatisticsGen ExampleValidator DataGate Transform Trainer "
    "LatestBlessedModelResolver Evaluator Pusher"
).split()
CACHED_ON_RERUN = COMPONENTS[: COMPONENTS.index("Trainer") + 1]  # everything up to the Trainer

# Over the ExampleGen test split, in a process importing only TensorFlow: serving_default's correct
# answers, the rows, the largest difference between serving_default's and predict_images'
# probabilities, the rows whose top probability is under the low-confidence bound, and the
# temperature variable inside the SavedModel.
_SERVING_ACCURACY = """
import glob, json, sys
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
bound = float(sys.argv[3])
by_examples, by_images = loaded.signatures["serving_default"], loaded.signatures["predict_images"]
files = glob.glob(sys.argv[2] + "/*")
correct = total = low = 0
max_diff = 0.0
spec = {"label": tf.io.FixedLenFeature([1], tf.int64), "image": tf.io.FixedLenFeature([784], tf.int64)}
for batch in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(256):
    probs = by_examples(examples=batch)["probabilities"]
    parsed = tf.io.parse_example(batch, spec)
    images = tf.reshape(tf.cast(parsed["image"], tf.uint8), [-1, 28, 28])
    max_diff = max(max_diff, float(tf.reduce_max(tf.abs(by_images(images=images)["probabilities"] - probs))))
    correct += int(tf.reduce_sum(tf.cast(tf.argmax(probs, axis=1) == parsed["label"][:, 0], tf.int32)))
    low += int(tf.reduce_sum(tf.cast(tf.reduce_max(probs, axis=1) < bound, tf.int32)))
    total += int(batch.shape[0])
print(json.dumps({"correct": correct, "total": total, "max_diff": max_diff, "low_confidence": low,
                  "temperature": float(loaded.temperature.numpy())}))
"""


def _quick_run(output_root, serving_dir, *extra):
    """The command line of `python pipeline/local_runner.py --quick` into these folders."""
    runner = os.path.join(PROJECT_ROOT, "pipeline", "local_runner.py")
    return [
        sys.executable,
        runner,
        "--quick",
        "--output-root",
        str(output_root),
        "--serving-dir",
        str(serving_dir),
        *extra,
    ]


def _run_pipeline(output_root, serving_dir, *extra, check=True, console=None):
    """Runs the quick pipeline; returns its summary.json with the command's "exit_status" added.
    console: a list that receives the terminal lines."""
    summary_path = os.path.join(output_root, "summary.json")
    if os.path.exists(summary_path):
        os.remove(summary_path)  # an earlier run's summary must not stand in for this one's
    proc = subprocess.run(
        _quick_run(output_root, serving_dir, *extra),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=PIPELINE_TIMEOUT,
    )
    if (check and proc.returncode != 0) or not os.path.exists(summary_path):
        raise AssertionError(f"local_runner exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    if console is not None:
        console.extend((proc.stdout + proc.stderr).splitlines())
    with open(summary_path) as f:
        return {**json.load(f), "exit_status": proc.returncode}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    output_root, serving_dir = root / "out", root / "serving" / configs.MODEL_NAME
    console = []
    first = _run_pipeline(output_root, serving_dir, console=console)
    versions_after_first = sorted(os.listdir(serving_dir))
    second = _run_pipeline(output_root, serving_dir)
    return first, second, output_root, serving_dir, versions_after_first, console


def test_the_console_shows_components_epochs_and_summary_and_the_log_file_the_rest(runs):
    first, _, output_root, _, _, console = runs
    epoch_lines = [line for line in console if " epoch " in line]
    assert len(epoch_lines) == configs.QUICK_HPARAMS["epochs"]
    others = [line for line in console if line not in epoch_lines]
    assert len(others) <= 60, "\n".join(others)
    for component in COMPONENTS:
        assert any(f"{component} " in line and "done in" in line for line in others), component
    assert f"test accuracy: {first['test_accuracy']:.4f}" in others
    log_path = os.path.join(output_root, "run.log")
    assert any(line.endswith(log_path) for line in others)
    # TensorFlow's C++ start-up lines and Beam's chatter went to the log file, not the terminal.
    with open(log_path) as f:
        log = f.read()
    assert "cpu_feature_guard" in log and "apache_beam" in log
    assert not any("cpu_feature_guard" in line or "apache_beam" in line for line in console)


def test_first_run_executes_each_component_once(runs):
    first = runs[0]
    assert sorted(first["components"]) == sorted(COMPONENTS)
    assert {c["state"] for c in first["components"].values()} == {"COMPLETE"}


def test_first_run_blesses_and_pushes_a_version(runs):
    first, _, _, serving_dir, versions = runs[:5]
    assert first["blessed"] is True and first["pushed"] is True
    assert first["test_accuracy"] >= configs.QUICK_MIN_ACCURACY
    assert versions == [str(first["pushed_version"])]
    assert os.path.isfile(os.path.join(serving_dir, versions[0], "saved_model.pb"))


@pytest.fixture(scope="module")
def scored_alone(runs):
    """_SERVING_ACCURACY's answer for the pushed version over the run's test split."""
    from modules.signatures import DEFAULT_LOW_CONFIDENCE_BOUND

    _, _, output_root, serving_dir, versions = runs[:5]
    test_split = glob.glob(os.path.join(output_root, "pipeline_root", "IdxExampleGen", "examples", "*", "Split-test"))
    assert len(test_split) == 1
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _SERVING_ACCURACY,
            os.path.join(serving_dir, versions[0]),
            test_split[0],
            str(DEFAULT_LOW_CONFIDENCE_BOUND),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    ).stdout
    return json.loads(out.splitlines()[-1])


def test_pushed_model_alone_gives_the_evaluator_accuracy(runs, scored_alone):
    first = runs[0]
    assert scored_alone["total"] == configs.QUICK_TEST_RECORDS
    assert scored_alone["correct"] / scored_alone["total"] == pytest.approx(first["test_accuracy"], abs=1e-6)
    assert scored_alone["max_diff"] == 0.0  # both signatures run the same Transform graph and model


def test_accuracy_through_rest_and_grpc_equals_the_evaluators(runs):
    """The pushed model behind serving.server, every test image sent over REST (JSON) and gRPC."""
    from serving.clients.cli import evaluate
    from serving.clients.grpc_client import GrpcClient
    from serving.clients.rest_client import RestClient
    from tests.serving.conftest import start_server

    first, _, output_root, serving_dir = runs[:4]
    server = start_server("dev", str(serving_dir))
    grpc_client = GrpcClient(server.grpc_target, configs.MODEL_NAME)
    try:
        span = os.path.join(output_root, "quick_data", "span-1")
        results = [evaluate(RestClient(server.rest_url, configs.MODEL_NAME), span), evaluate(grpc_client, span)]
    finally:
        grpc_client.close()
        server.stop()
    for result in results:
        assert result["examples"] == configs.QUICK_TEST_RECORDS
        assert result["accuracy"] == pytest.approx(first["test_accuracy"], abs=1e-6)


def test_rerun_takes_everything_up_to_the_trainer_from_cache(runs):
    second = runs[1]
    states = {name: c["state"] for name, c in second["components"].items()}
    assert {states[n] for n in CACHED_ON_RERUN} == {"CACHED"}, states
    # The Evaluator's inputs changed: its baseline is now the first run's blessed model, so it runs
    # again, compares the model with itself (no regression) and blesses it again.
    assert states["Evaluator"] == "COMPLETE"
    assert second["blessed"] is True
    # The same model blessed again is not copied again: it stays the served version.
    assert second["pushed_version"] == runs[0]["pushed_version"]
    assert second["test_accuracy"] == pytest.approx(runs[0]["test_accuracy"], abs=1e-9)


def test_schema_and_validation_results_load_with_tfdv(runs):
    import tensorflow_data_validation as tfdv
    from tensorflow_data_validation.utils import anomalies_util

    output_root = runs[2]
    root = os.path.join(output_root, "pipeline_root")
    [schema] = glob.glob(os.path.join(root, "ImportSchemaGen", "schema", "*", "schema.pbtxt"))
    assert {f.name for f in tfdv.load_schema_text(schema).feature} == {"image", "label", "source"}
    diffs = glob.glob(os.path.join(root, "ExampleValidator", "anomalies", "*", "Split-*", "SchemaDiff.pb"))
    assert len(diffs) == 3  # train, eval, test; the re-run took ExampleValidator from cache
    assert all(not anomalies_util.load_anomalies_binary(d).anomaly_info for d in diffs)
    [drift] = glob.glob(os.path.join(root, "DataGate", "validated_statistics", "*", "drift_anomalies.pbtxt"))
    assert not tfdv.load_anomalies_text(drift).anomaly_info
    # The gate kept the first run's train statistics as the drift baseline for the next span.
    baseline = os.path.join(root, "validated_statistics_baseline", "FeatureStats.pb")
    assert tfdv.load_stats_binary(baseline).datasets[0].num_examples > 0


def _tree_digest(path) -> str:
    digest = hashlib.sha256()
    for root, _, files in sorted(os.walk(path)):
        for name in sorted(files):
            with open(os.path.join(root, name), "rb") as f:
                digest.update(name.encode() + f.read())
    return digest.hexdigest()


def test_a_blessed_version_carries_tflite_model_card_and_release_record(runs, scored_alone):
    first, _, output_root, serving_dir, versions = runs[:5]
    version_dir = os.path.join(serving_dir, versions[0])
    with open(os.path.join(version_dir, "release.json")) as f:
        release = json.load(f)
    shipped = release["formats"]
    saved_model_accuracy = shipped[formats.SAVED_MODEL]["accuracy"]
    assert saved_model_accuracy == pytest.approx(first["test_accuracy"], abs=1e-3)
    # Each format ships within its bound or is missing with its reason; float16 and ONNX compute in
    # float32 and always ship. (Int8 kinds of a 2-epoch slice model may fall outside 0.1 point.)
    for name in formats.ORDER[1:]:
        if name in shipped["missing"]:
            assert shipped["missing"][name].startswith(name) and name not in shipped
            continue
        entry = shipped[name]
        if name == formats.MICRO:  # checked against LiteRT's classes on its rows, not by accuracy
            assert entry["same_class_as_litert"] >= (1 - formats.ACCURACY_BOUND) * entry["examples"] > 0
        else:
            assert entry["accuracy"] >= saved_model_accuracy - formats.ACCURACY_BOUND
        for file in [entry["file"]] if "file" in entry else entry["files"]:
            assert os.path.isfile(os.path.join(version_dir, file))
        if "file" in entry:
            assert os.path.getsize(os.path.join(version_dir, entry["file"])) == entry["size_bytes"]
    assert shipped[tflite.FLOAT16]["examples"] == shipped[formats.ONNX]["examples"] == configs.QUICK_TEST_RECORDS
    # Calibrated by the Trainer on eval; the release scores confidence on MNIST's test rows.
    confidence = release["confidence"]
    assert confidence["examples"] == configs.QUICK_TEST_RECORDS
    # The record's figures are the served model's: its own low-confidence share over the test rows,
    # and the temperature variable the SavedModel applies.
    expected_rate = scored_alone["low_confidence"] / scored_alone["total"]
    assert confidence["low_confidence_rate"] == pytest.approx(expected_rate, abs=1e-5)
    # release.json keeps the temperature to 4 decimals.
    assert confidence["calibration"]["temperature"] == pytest.approx(scored_alone["temperature"], abs=5e-5)
    assert confidence["calibration"]["fitted_on"] == f"eval ({release['data']['split_counts']['eval']} examples)"
    # Every handwriting family at its middle strength; the first push replaces no version.
    robust = release["robustness"]
    assert robust["examples"] == configs.QUICK_TEST_RECORDS and robust["baseline"] is None
    assert robust["clean_accuracy"] == pytest.approx(saved_model_accuracy, abs=0.002)
    assert len(robust["families"]) == 9
    # A family is scored on distorted copies of the same rows: each one below the clean accuracy
    # (rounded), and none at chance level for a blessed model.
    for name, family in robust["families"].items():
        assert 0.3 < family["accuracy"] <= robust["clean_accuracy"] + 0.01, (name, family)
    # Under attack: quick runs attack a few digits; the first push replaces no version.
    attacked = release["adversarial"]
    assert attacked["examples"] == configs.QUICK_ATTACK_EXAMPLES and attacked["baseline"] is None
    assert set(attacked["pgd"]) == {str(b) for b in adversarial.BUDGETS} and attacked["cross_check"]["agrees"]
    assert release["privacy"] == "not private"
    card = open(os.path.join(version_dir, "model_card.md")).read()
    assert "## Under attack" in card and "- Privacy: **not private**" in card
    assert f"version {versions[0]}" in card and "span **1**" in card and "## Confidence" in card
    assert "## Robustness" in card and "| thicker | 3 px square dilation |" in card
    assert f"Accuracy **{saved_model_accuracy:.4f}**" in card and "| 9 |" in card
    # What it bases its answers on: the picture beside the card, its confident mistakes listed.
    assert "## Explanations" in card and os.path.getsize(os.path.join(version_dir, "explanations.png")) > 10_000
    assert all(m["label"] != m["top_classes"][0][0] for m in release["explanations"]["mistakes"])
    with open(os.path.join(os.path.dirname(serving_dir), "models.config")) as f:
        assert f'base_path: "{serving_dir}"' in f.read()
    per_class = release["metrics"]["candidate"]["per_class"]
    assert sum(int(c["example_count"]) for c in per_class.values()) == configs.QUICK_TEST_RECORDS
    assert sum(map(sum, release["metrics"]["confusion_matrix"])) == configs.QUICK_TEST_RECORDS


def test_run_report_has_curves_confusion_matrix_and_decision(runs):
    output_root = runs[2]
    page = open(os.path.join(output_root, "run_report.html")).read()
    assert "<p class='decision'>BLESSED: test accuracy" in page
    assert "Evaluation (test split)" in page and "Data (span 1)" in page
    assert "each family at its middle strength" in page and "<td>low resolution</td>" in page
    assert "Explanations (integrated gradients" in page
    for png in ("training_curves.png", "confusion_matrix.png", "per_class_accuracy.png", "explanations.png"):
        assert f"run_report/{png}" in page
        with open(os.path.join(output_root, "run_report", png), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_lineage_prints_the_chain_behind_the_pushed_version(runs):
    first, _, output_root, _, versions = runs[:5]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "runs.lineage",
            "--version",
            versions[0],
            "--metadata",
            os.path.join(output_root, "metadata.sqlite"),
            "--json",
        ],
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    ).stdout
    chain = {entry["component"]: entry for entry in json.loads(out)}
    assert {"Pusher", "Evaluator", "Trainer", "Transform", "StatisticsGen", "IdxExampleGen", "ImportSchemaGen"} <= set(
        chain
    )
    [statistics] = [a for a in chain["StatisticsGen"]["outputs"] if a["type"] == "ExampleStatistics"]
    assert statistics["split_names"] == '["train", "eval", "test"]'
    assert any(a["type"] == "Examples" for a in chain["StatisticsGen"]["inputs"])
    [examples] = [a for a in chain["IdxExampleGen"]["outputs"] if a["type"] == "Examples"]
    assert examples["span"] == 1
    assert chain["Trainer"]["parameters"]["custom_config"]["hparams"]["epochs"] == configs.QUICK_HPARAMS["epochs"]
    [evaluation] = [a for a in chain["Evaluator"]["outputs"] if a["type"] == "ModelEvaluation"]
    assert evaluation["test_accuracy"] == pytest.approx(first["test_accuracy"])
    [blessing] = [a for a in chain["Evaluator"]["outputs"] if a["type"] == "ModelBlessing"]
    assert blessing["blessed"] == 1
    assert {a["type"] for a in chain["Transform"]["outputs"]} >= {"TransformGraph"}


@pytest.fixture(scope="module")
def rejected(runs, tmp_path_factory):
    """Two runs that must not push: an impossible bound, then a worse model against the baseline.
    They run in the two runs' own folders, whose paths the first run's cached executions name, and
    leave them as the two runs left them: the output root and the served folder are set aside first
    and put back after, so the tests that read them see the same whatever order the tests run in."""
    _, _, output_root, serving_dir = runs[:4]
    model_folder = os.path.dirname(serving_dir)  # the model folder and models.config
    kept, rejected_runs = tmp_path_factory.mktemp("two_runs"), tmp_path_factory.mktemp("rejected")
    shutil.copytree(output_root, kept / "out")
    shutil.copytree(model_folder, kept / "serving")
    before = _tree_digest(serving_dir)
    try:
        # The first run's model (everything up to the Trainer from cache), judged against a bound
        # no model reaches.
        impossible = _run_pipeline(output_root, serving_dir, "--min-accuracy", "1.01", check=False)
        after_impossible = (sorted(os.listdir(serving_dir)), _tree_digest(serving_dir))
        # A far worse model (a tiny learning rate, one epoch) with no lower bound: only the change
        # threshold can reject it.
        worse = _run_pipeline(
            output_root,
            serving_dir,
            "--min-accuracy",
            "0",
            "--epochs",
            "1",
            "--hparam",
            "peak_learning_rate=1e-6",
            check=False,
        )
        after_worse = (sorted(os.listdir(serving_dir)), _tree_digest(serving_dir))
    finally:
        for path, name in ((output_root, "out"), (model_folder, "serving")):
            if os.path.exists(path):
                shutil.move(path, rejected_runs / name)  # kept for a look when a test here fails
            shutil.move(kept / name, path)
    return before, impossible, after_impossible, worse, after_worse


def test_a_bound_above_one_is_not_blessed_and_pushes_nothing(runs, rejected):
    versions = runs[4]
    before, impossible, (names, digest), _, _ = rejected
    assert impossible["blessed"] is False and impossible["pushed"] is False
    assert impossible["exit_status"] == 1  # not blessed: the runner says so to scripts and schedulers
    assert {impossible["components"][n]["state"] for n in CACHED_ON_RERUN} == {"CACHED"}  # the first run's model
    # One failure, on MNIST's test rows: the per-class slices carry no threshold.
    [reason] = impossible["validation_failures"]
    assert "lowerBound" in reason and "(source=t10k)" in reason
    assert names == versions and digest == before


def test_a_worse_model_is_rejected_by_the_change_threshold(runs, rejected):
    versions = runs[4]
    before, _, _, worse, (names, digest) = rejected
    assert worse["components"]["Trainer"]["state"] == "COMPLETE"  # a new model was trained
    assert worse["test_accuracy"] < runs[0]["test_accuracy"] - 0.002
    assert worse["blessed"] is False and worse["pushed"] is False
    assert worse["exit_status"] == 1
    assert any("change against the baseline" in r for r in worse["validation_failures"]), worse["validation_failures"]
    assert names == versions and digest == before


# ML Metadata on a real MariaDB server (Debian's mariadb-server, which bootstrap.sh --browser installs):
# the same two quick runs against it, read back the same way.


@pytest.fixture(scope="module")
def mariadb(tmp_path_factory):
    from tests import mariadb

    assert mariadb.binaries(), "mariadb-server is not installed (bootstrap.sh --browser installs it)"
    with mariadb.server(str(tmp_path_factory.mktemp("mariadb"))) as (address, port):
        yield (
            address,
            port,
            {**os.environ, "MNIST_TFX_MYSQL_USER": mariadb.USER, "MNIST_TFX_MYSQL_PASSWORD": mariadb.PASSWORD},
        )


@pytest.fixture(scope="module")
def mariadb_runs(mariadb, tmp_path_factory):
    address, _, env = mariadb
    root = tmp_path_factory.mktemp("e2e_mariadb")
    output_root, serving_dir = root / "out", root / "serving" / configs.MODEL_NAME
    summaries = []
    for _ in range(2):
        proc = subprocess.run(
            # What these runs are about is the store: the release makes no other format and no attack.
            _quick_run(output_root, serving_dir, "--metadata-mysql", address, "--formats=none", "--attack-examples=0"),
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            env=env,
            timeout=PIPELINE_TIMEOUT,
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        with open(os.path.join(output_root, "summary.json")) as f:
            summaries.append(json.load(f))
    return summaries, output_root, sorted(os.listdir(serving_dir))


def _lineage(version, *where, env=None):
    out = subprocess.run(
        [sys.executable, "-m", "runs.lineage", "--version", version, *where, "--json"],
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=COMMAND_TIMEOUT,
    ).stdout
    return [
        (e["component"], sorted(a["type"] for a in e["inputs"]), sorted(a["type"] for a in e["outputs"]))
        for e in json.loads(out)
    ]


def test_mariadb_runs_cache_as_sqlite_runs_do_and_lineage_reads_the_same_chain(runs, mariadb, mariadb_runs):
    (first, second), output_root, versions = mariadb_runs
    assert not os.path.exists(os.path.join(output_root, configs.METADATA_FILE))  # nothing went to sqlite
    assert first["blessed"] and first["pushed"] and versions == [str(first["pushed_version"])]
    states = {name: c["state"] for name, c in second["components"].items()}
    sqlite_states = {name: c["state"] for name, c in runs[1]["components"].items()}
    assert {states[n] for n in CACHED_ON_RERUN} == {"CACHED"} and states == sqlite_states
    assert second["pushed_version"] == first["pushed_version"]  # the same model: not copied again
    address, _, env = mariadb
    from_mariadb = _lineage(versions[0], "--metadata-mysql", address, env=env)
    from_sqlite = _lineage(runs[4][0], "--metadata", os.path.join(runs[2], configs.METADATA_FILE))
    assert from_mariadb == from_sqlite and len(from_mariadb) >= 7


def test_the_monitor_judges_served_traffic_from_a_mariadb_store(mariadb, mariadb_runs, test_images_labels, tmp_path):
    """monitoring.check --metadata-mysql finds the served version's training statistics and test
    accuracy in the server's store and judges a window of MONITOR_MIN_ROWS rows against them: quiet
    on MNIST's test digits (exit 0), pixel skew on the same digits drawn with a thicker pen (exit 1).
    Credentials it lacks are named in plain words, exit status 2."""
    from modules import distortions
    from tests.monitoring.conftest import write_log

    (first, _), output_root, versions = mariadb_runs
    address, _, env = mariadb
    rows = configs.MONITOR_MIN_ROWS + 100
    images = test_images_labels[0][-rows:]  # not the quick run's test rows (its first ones)

    def monitor(name, window_images, *where, env):
        prefix = str(tmp_path / name / "logs" / "requests")
        write_log(prefix, window_images, per_request=4, version=int(versions[0]), model_name=configs.MODEL_NAME)
        args = ["--logs", prefix, "--feedback", str(tmp_path / name / "fb"), "--since", "0", "--until", "4e9"]
        command = [sys.executable, "-m", "monitoring.check", *args, *where, "--out", str(tmp_path / name / "out")]
        proc = subprocess.run(
            command, cwd=PROJECT_ROOT, capture_output=True, text=True, env=env, timeout=COMMAND_TIMEOUT
        )
        result = None
        if os.path.exists(tmp_path / name / "out" / "check.json"):
            with open(tmp_path / name / "out" / "check.json") as f:
                result = json.load(f)
        return proc, result

    for name, window_images, status, flagged in (
        ("clean", images, 0, []),
        ("thicker", distortions.thicker(images, 3), 1, ["pixel_skew"]),
    ):
        proc, result = monitor(name, window_images, "--metadata-mysql", address, env=env)
        assert proc.returncode == status, (name, proc.stdout[-2000:] + proc.stderr[-2000:])
        assert result["rows"] == rows and not result["unknown_versions"]
        served = result["versions"][versions[0]]
        assert served["rows"] == rows and served["test_accuracy"] == pytest.approx(first["test_accuracy"])
        assert served["statistics_uri"].startswith(str(output_root))  # the mariadb run's own StatisticsGen output
        assert {c["name"] for c in served["checks"]} >= {"schema", "pixel_skew", "online_accuracy"}
        assert not any("not judged" in c["detail"] for c in served["checks"] if c["name"] == "pixel_skew")
        assert [c for c in result["flagged"] if c != "pixel_drift"] == flagged, (name, result["flagged"])

    no_user = {k: v for k, v in env.items() if not k.startswith("MNIST_TFX_MYSQL")}
    proc, _ = monitor("no_user", images[:8], "--metadata-mysql", address, env=no_user)
    assert proc.returncode == 2 and "set MNIST_TFX_MYSQL_USER" in proc.stdout + proc.stderr


def test_a_database_that_is_down_or_refuses_the_credentials_stops_the_run_before_it_starts(mariadb, tmp_path):
    from tests.ports import refusing_port

    address, _, env = mariadb
    with refusing_port() as down:  # held for the test: nothing can answer on it
        cases = {
            "refused": (
                address,
                {**env, "MNIST_TFX_MYSQL_PASSWORD": "wrong-secret-123"},
                "the server refused user 'mlmd'",
            ),
            "down": (f"127.0.0.1:{down}/mlmd", env, "is the server running?"),
            "no user": (
                address,
                {k: v for k, v in env.items() if not k.startswith("MNIST_TFX_MYSQL")},
                "set MNIST_TFX_MYSQL_USER",
            ),
        }
        for name, (where, case_env, reason) in cases.items():
            output_root = tmp_path / name
            proc = subprocess.run(
                _quick_run(output_root, tmp_path / "serving", "--metadata-mysql", where),
                cwd=PROJECT_ROOT,
                capture_output=True,
                text=True,
                env=case_env,
                timeout=COMMAND_TIMEOUT,
            )
            assert proc.returncode == 2, (name, proc.stderr[-2000:])
            [line] = [line for line in proc.stderr.splitlines() if line.startswith("ERROR: ")]
            assert where in line and reason in line, line
            assert "wrong-secret-123" not in proc.stderr + proc.stdout
            assert not os.path.exists(output_root / "pipeline_root")  # no component ran
