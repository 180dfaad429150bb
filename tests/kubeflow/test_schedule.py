"""schedule.py against a local HTTP server that answers KFP's v2beta1 API."""

import json

import pytest

from kubeflow import runner, schedule
from tests.kubeflow import fake_kfp
from tests.kubeflow.fake_kfp import API, FakeKfp
from tests.ports import refusing_port


def _schedule(host, package, *extra):
    return schedule.main(["--host", host, "--package", package, "--cron", "0 30 2 * * *", *extra])


def test_first_schedule_uploads_and_creates_the_recurring_run(compiled, capsys):
    with FakeKfp() as fake:
        assert _schedule(fake.host, compiled, "--epochs", "3", "--min-accuracy", "0.995") == 0
        upload = [r for r in fake.requests if r["path"] == f"{API}/pipelines/upload"]
        [run] = fake.recurring_runs
    assert len(upload) == 1 and upload[0]["query"]["name"] == ["mnist-tfx"]
    assert b"deploymentSpec" in upload[0]["raw"]  # the compiled YAML itself was sent
    assert run["trigger"]["cron_schedule"]["cron"] == "0 30 2 * * *"
    assert int(run["max_concurrency"]) == 1 and run["no_catchup"] is True
    assert run["pipeline_version_reference"] == {"pipeline_id": "pipeline-1", "pipeline_version_id": "pipeline-1-v1"}
    parameters = run["runtime_config"]["parameters"]
    assert json.loads(parameters[runner.TRAINER_CONFIG_PARAMETER])["hparams"]["epochs"] == 3
    assert '"lowerBound": 0.995' in parameters[runner.EVAL_CONFIG_PARAMETER]
    assert '"recurring_run_id": "recurring-1"' in capsys.readouterr().out


def test_second_schedule_adds_a_version_and_uses_it(compiled):
    with FakeKfp() as fake:
        assert _schedule(fake.host, compiled) == 0
        assert _schedule(fake.host, compiled, "--version-name", "v2") == 0
        versions = [r for r in fake.requests if r["path"] == f"{API}/pipelines/upload_version"]
        second = fake.recurring_runs[1]
        experiment_posts = fake.paths("POST").count(f"{API}/experiments")
    assert len(versions) == 1 and versions[0]["query"]["name"] == ["v2"]
    assert second["pipeline_version_reference"]["pipeline_version_id"] == "pipeline-1-v2"
    assert experiment_posts == 1  # the experiment is reused


def test_a_schedule_of_feedback_spans_blesses_only_a_model_better_on_the_fresh_rows(compiled, capsys):
    from google.protobuf import json_format
    from tensorflow_model_analysis.proto import config_pb2

    from pipeline import blessing

    def thresholds(*extra):
        assert _schedule("http://127.0.0.1:9", compiled, "--dry-run", *extra) == 0
        parameters = json.loads(capsys.readouterr().out)["parameters"]
        config = json_format.Parse(parameters[runner.EVAL_CONFIG_PARAMETER], config_pb2.EvalConfig())
        return [list(t.slicing_specs) for m in config.metrics_specs[0].metrics for t in m.per_slice_thresholds]

    assert thresholds() == [[blessing.MNIST_TEST_SLICE]]
    assert thresholds("--fresh-window") == [[blessing.MNIST_TEST_SLICE], [blessing.FRESH_SLICE]]


def test_dry_run_contacts_nothing(compiled, capsys):
    with FakeKfp() as fake:
        assert _schedule(fake.host, compiled, "--dry-run") == 0
        assert fake.requests == []
    printed = json.loads(capsys.readouterr().out)
    assert printed["dry_run"] and printed["cron"] == "0 30 2 * * *" and printed["no_catchup"]


@pytest.mark.parametrize("refusal", [401, 403])  # unauthenticated, and authenticated without the right
def test_refused_credentials_are_named(compiled, capsys, refusal):
    with FakeKfp(refuse_with=refusal) as fake:
        assert _schedule(fake.host, compiled, "--token", "expired") == 1
    assert "refused the credentials" in capsys.readouterr().err


@pytest.mark.timeout(120)
def test_unreachable_endpoint_is_named(compiled, capsys):
    with refusing_port() as port:
        assert _schedule(f"http://127.0.0.1:{port}", compiled) == 1
    assert f"could not reach Kubeflow Pipelines at http://127.0.0.1:{port}" in capsys.readouterr().err


def test_five_field_cron_is_rejected():
    with pytest.raises(ValueError, match="KFP wants 6"):
        schedule.check_cron("0 3 * * *")


def test_the_stand_in_orders_and_pages_versions_as_the_v2beta1_api_documents():
    """Without sort_by the stand-in lists versions in creation order, so the schedule's
    "created_at desc" with page_size 1 is what makes it pick the newest (the second-schedule test)."""
    versions = ["p-v1", "p-v2", "p-v3"]
    assert fake_kfp._sorted_page(versions, {}) == versions
    assert fake_kfp._sorted_page(versions, {"sort_by": ["created_at desc"], "page_size": ["1"]}) == ["p-v3"]
    assert fake_kfp._sorted_page(versions, {"sort_by": ["created_at"], "page_size": ["2"]}) == ["p-v1", "p-v2"]
    with pytest.raises(ValueError, match="Invalid sorting field"):
        fake_kfp._sorted_page(versions, {"sort_by": ["colour"]})
