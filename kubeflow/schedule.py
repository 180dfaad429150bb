"""Uploads the compiled pipeline to Kubeflow Pipelines and creates a recurring run.

    python -m kubeflow.schedule --host https://KFP_HOST --package pipeline.yaml \
        --cron "0 0 3 * * *" --epochs 15 --min-accuracy 0.995 [--dry-run]

A new upload of an existing pipeline becomes a new version of it. The recurring run uses the
newest version, runs at most one at a time and does not catch up on missed slots.
"""

import argparse
import datetime
import json
import sys
import urllib.error
import urllib.request
from typing import Any, Dict, Optional

from kubeflow.runner import EVAL_CONFIG_PARAMETER, TRAINER_CONFIG_PARAMETER, eval_config_json, trainer_config_json
from modules.hparams import HParams
from pipeline import configs

DEFAULT_CRON = "0 0 3 * * *"  # KFP's 6-field cron (seconds first): every day at 03:00


class ScheduleError(RuntimeError):
    """The KFP endpoint could not be reached, or refused us; the message says which."""


def check_cron(expression: str) -> str:
    if len(expression.split()) != 6:
        raise ValueError(
            f"cron {expression!r} has {len(expression.split())} fields; KFP wants 6 "
            "(second minute hour day-of-month month day-of-week), e.g. '0 0 3 * * *'"
        )
    return expression


def run_parameters(epochs: Optional[int], min_accuracy: float, fresh_window: bool = False) -> Dict[str, Any]:
    """The runtime parameters of the runs: Trainer's custom_config (epochs if given) and the
    Evaluator's EvalConfig with this accuracy bound."""
    hparams = HParams() if epochs is None else HParams(epochs=epochs)
    return {
        TRAINER_CONFIG_PARAMETER: trainer_config_json(hparams),
        EVAL_CONFIG_PARAMETER: eval_config_json(min_accuracy, fresh_window),
    }


def plan(args: argparse.Namespace) -> Dict[str, Any]:
    return {
        "host": args.host,
        "package": args.package,
        "pipeline": args.pipeline_name,
        "version": args.version_name,
        "experiment": args.experiment,
        "job": args.job_name,
        "cron": check_cron(args.cron),
        "max_concurrency": 1,
        "no_catchup": True,
        "parameters": run_parameters(args.epochs, args.min_accuracy, args.fresh_window),
    }


def _call(what: str, endpoint: str, fn, *args, **kwargs):
    """Turns transport and HTTP failures into one plain sentence about the endpoint."""
    try:
        return fn(*args, **kwargs)
    except Exception as e:  # kfp raises urllib3, kfp_server_api and requests errors
        status = getattr(e, "status", None)
        if status in (401, 403):
            raise ScheduleError(
                f"Kubeflow Pipelines at {endpoint} refused the credentials while trying to {what} "
                f"(HTTP {status}): check --token / the cluster's auth"
            ) from e
        if status is not None:
            raise ScheduleError(
                f"Kubeflow Pipelines at {endpoint} answered HTTP {status} while trying to {what}: "
                f"{getattr(e, 'body', '') or e}"
            ) from e
        raise ScheduleError(
            f"could not reach Kubeflow Pipelines at {endpoint} to {what}: {type(e).__name__}: {e}"
        ) from e


def probe(host: str, token: Optional[str], timeout: float = 10.0) -> None:
    """One plain request before kfp.Client (which retries its health check five times and then
    reports every failure, a refused token included, as a timeout)."""
    request = urllib.request.Request(f"{host.rstrip('/')}/apis/v2beta1/healthz")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        urllib.request.urlopen(request, timeout=timeout).close()
    except urllib.error.HTTPError as e:
        if e.code in (401, 403):
            raise ScheduleError(
                f"Kubeflow Pipelines at {host} refused the credentials (HTTP {e.code}): "
                "check --token / the cluster's auth"
            ) from e
        raise ScheduleError(f"Kubeflow Pipelines at {host} answered HTTP {e.code} to its health check") from e
    except (urllib.error.URLError, OSError) as e:
        raise ScheduleError(f"could not reach Kubeflow Pipelines at {host}: {getattr(e, 'reason', e)}") from e


def schedule(client, p: Dict[str, Any]) -> Dict[str, Any]:
    """Uploads (or adds a version), ensures the experiment, creates the recurring run."""
    host = p["host"]
    pipeline_id = _call("look up the pipeline", host, client.get_pipeline_id, p["pipeline"])
    if pipeline_id is None:
        pipeline_id = _call(
            "upload the pipeline", host, client.upload_pipeline, p["package"], pipeline_name=p["pipeline"]
        ).pipeline_id
    else:
        _call(
            "upload a new version",
            host,
            client.upload_pipeline_version,
            p["package"],
            pipeline_version_name=p["version"],
            pipeline_id=pipeline_id,
        )
    versions = _call(
        "list versions", host, client.list_pipeline_versions, pipeline_id, sort_by="created_at desc", page_size=1
    )
    version_id = versions.pipeline_versions[0].pipeline_version_id
    experiment_id = _call("create the experiment", host, client.create_experiment, p["experiment"]).experiment_id
    run = _call(
        "create the recurring run",
        host,
        client.create_recurring_run,
        experiment_id,
        p["job"],
        cron_expression=p["cron"],
        max_concurrency=p["max_concurrency"],
        no_catchup=p["no_catchup"],
        params=p["parameters"],
        pipeline_id=pipeline_id,
        version_id=version_id,
        enabled=True,
    )
    return {
        "pipeline_id": pipeline_id,
        "version_id": version_id,
        "experiment_id": experiment_id,
        "recurring_run_id": run.recurring_run_id,
    }


def parse_args(argv=None) -> argparse.Namespace:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", required=True, help="KFP API endpoint, e.g. http://localhost:8888")
    p.add_argument("--token", help="bearer token, when the endpoint needs one")
    p.add_argument("--package", default="pipeline.yaml", help="what `python -m kubeflow.runner` wrote")
    p.add_argument("--pipeline-name", default=configs.PIPELINE_NAME.replace("_", "-"))
    p.add_argument("--version-name", default=stamp)
    p.add_argument("--experiment", default=configs.PIPELINE_NAME.replace("_", "-"))
    p.add_argument("--job-name", default=f"{configs.PIPELINE_NAME.replace('_', '-')}-daily")
    p.add_argument("--cron", default=DEFAULT_CRON, help=f"6-field cron (default {DEFAULT_CRON!r})")
    p.add_argument("--epochs", type=int, help="training epochs for these runs (default: HParams' default)")
    p.add_argument(
        "--min-accuracy",
        type=float,
        default=configs.MIN_ACCURACY,
        help=f"test accuracy a model needs to be blessed and pushed (default {configs.MIN_ACCURACY})",
    )
    p.add_argument(
        "--fresh-window",
        action="store_true",
        help="the runs train on spans made from production feedback: bless only a model that beats the "
        "served one on each span's held-out fresh rows (every run's span must hold them)",
    )
    p.add_argument("--dry-run", action="store_true", help="print what would be done; contact nothing")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    p = plan(args)
    if args.dry_run:
        print(json.dumps({"dry_run": True, **p}, indent=2))
        return 0
    import kfp  # only for real calls: the dry run needs no client

    try:
        probe(args.host, args.token)
        client = _call("connect", args.host, kfp.Client, host=args.host, existing_token=args.token)
        print(json.dumps(schedule(client, p), indent=2))
    except ScheduleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
