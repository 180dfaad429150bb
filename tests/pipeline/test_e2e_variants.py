"""The pipeline's variants, quick runs of their own: with the Tuner; with an inferred schema, killed
during training, then resumed. Apart from test_e2e.py so that the test workers share the
end-to-end runs."""

import glob
import os
import signal
import subprocess
import time

import pytest

from pipeline import configs
from pipeline.configs import PROJECT_ROOT
from tests.pipeline.test_e2e import CACHED_ON_RERUN, _quick_run, _run_pipeline
from tests.timeouts import E2E_TIMEOUT, PIPELINE_TIMEOUT

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(E2E_TIMEOUT)]

# None of these tests reads the release's adversarial table or its other formats (test_e2e.py
# does): the release makes neither.
SAVED_MODEL_ONLY = ("--attack-examples", "0", "--formats", "none")


def test_quick_run_with_tuner_feeds_trainer_and_pushes(tmp_path):
    import keras_tuner

    from modules import tuning

    # Base values outside the search space: a Trainer that ignored the Tuner would train with these.
    base = {"peak_learning_rate": 0.002, "dropout": 0.1}
    flags = [f for k, v in base.items() for f in ("--hparam", f"{k}={v}")]
    # One trial of one epoch, and one epoch of training, in batches of 32: the slice's 2,750 training
    # rows make 86 steps, which the seeded trial's learning rate (1e-3) needs to pass the quick bound
    # (22 steps of 128 left the model at 14%). The search space leaves out the base values, so the Tuner's values
    # reaching the Trainer show in its training record.
    tune_flags = ("--tune", "--tuning-trials", "1", "--epochs", "1", "--hparam", "batch_size=32")
    summary = _run_pipeline(tmp_path / "out", tmp_path / "serving", *tune_flags, *flags, *SAVED_MODEL_ONLY)
    assert summary["components"]["Tuner"]["state"] == "COMPLETE"
    assert summary["components"]["Trainer"]["state"] == "COMPLETE"
    from components import tfx_files
    from modules import export

    space = tuning.search_space(keras_tuner.HyperParameters())
    assert set(summary["tuned_hparams"]) == set(space)
    assert summary["blessed"] and summary["pushed"]
    # The Trainer trained with the Tuner's values, not the base ones: its training record says so.
    model_uri = summary["artifacts"]["Trainer.Model"]
    trained = export.read_training_record(tfx_files.serving_model_path(model_uri))["hparams"]
    assert {k: trained[k] for k in summary["tuned_hparams"]} == summary["tuned_hparams"]
    assert all(trained[k] != v for k, v in base.items())


def _trainer_executions(output_root):
    """(id, state) of every Trainer execution in the run's ML Metadata, oldest first."""
    from runs import summary

    store = summary.read_only_store(os.path.join(output_root, configs.METADATA_FILE))
    node = store.get_context_by_type_and_name("node", f"{configs.PIPELINE_NAME}.Trainer")
    return sorted((e.id, summary.state_name(e)) for e in store.get_executions_by_context(node.id))


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    """A quick run that infers its schema (--infer-schema), killed during training, then run again:
    (the Trainer executions after the kill, the resumed run's summary, output root, serving folder)."""
    root = tmp_path_factory.mktemp("resume")
    output_root, serving_dir = root / "out", root / "serving" / configs.MODEL_NAME
    flags = ("--infer-schema", *SAVED_MODEL_ONLY)
    proc = subprocess.Popen(
        _quick_run(output_root, serving_dir, *flags),
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    # Killed once the Trainer has logged its first epoch of two: inside training, whatever the speed.
    log_path, deadline = output_root / "run.log", time.time() + PIPELINE_TIMEOUT
    first_epoch = f"epoch 1/{configs.QUICK_HPARAMS['epochs']} "
    try:
        while time.time() < deadline and proc.poll() is None:
            if log_path.exists() and first_epoch in log_path.read_text():
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the run ended before it could be killed during training"
        assert first_epoch in log_path.read_text(), f"no '{first_epoch}' in the run's log in {PIPELINE_TIMEOUT} s"
    finally:  # killed here whatever happened: a failing test leaves no pipeline running
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert not os.path.exists(serving_dir) or not os.listdir(serving_dir)
    killed = _trainer_executions(output_root)
    resumed = _run_pipeline(output_root, serving_dir, *flags)
    return killed, resumed, output_root, serving_dir


def test_infer_schema_has_schemagen_infer_a_schema_and_the_run_pushes(killed_and_resumed):
    """--infer-schema (to regenerate pipeline/schema/schema.pbtxt): SchemaGen infers the schema from
    the statistics instead of ImportSchemaGen importing the curated one; the run goes on to a push."""
    import tensorflow_data_validation as tfdv

    _, summary, output_root, _ = killed_and_resumed
    assert "SchemaGen" in summary["components"] and "ImportSchemaGen" not in summary["components"]
    [schema] = glob.glob(str(output_root / "pipeline_root" / "SchemaGen" / "schema" / "*" / "schema.pbtxt"))
    assert {f.name for f in tfdv.load_schema_text(schema).feature} == {"image", "label", "source"}
    assert summary["blessed"] and summary["pushed"]


def test_a_run_killed_during_training_resumes_from_cache(killed_and_resumed):
    killed, resumed, output_root, serving_dir = killed_and_resumed
    # ML Metadata holds the killed Trainer execution as it was when the process died: RUNNING.
    [(killed_id, killed_state)] = killed
    assert killed_state == "RUNNING"
    states = {name: c["state"] for name, c in resumed["components"].items()}
    upstream = [n.replace("ImportSchemaGen", "SchemaGen") for n in CACHED_ON_RERUN if n != "Trainer"]
    assert {states[n] for n in upstream} == {"CACHED"}, states
    assert states["Trainer"] == "COMPLETE" and resumed["blessed"] and resumed["pushed"]
    assert os.listdir(serving_dir) == [str(resumed["pushed_version"])]
    # The killed execution is kept unchanged beside the new, complete one.
    after = _trainer_executions(output_root)
    assert after[0] == (killed_id, "RUNNING") and [state for _, state in after[1:]] == ["COMPLETE"]
