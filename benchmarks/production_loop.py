"""The production loop, end to end, with every number measured: train and push, serve with request
logging, replay in-distribution traffic (the monitor must stay quiet), replay shifted handwriting
with labels for part of it (the monitor must flag skew and the online-accuracy drop), turn the
labels into a span, retrain, and compare old and new versions on shifted traffic neither has seen.

Two shifts (--shift): "other-writers", digits written by other people (scikit-learn's UCI digits,
benchmarks/other_writers.py; the last of them held out for the old/new comparison), what a
deployment to another population meets; "thicker", MNIST's own test digits drawn with a thicker pen
(a 3x3 dilation), which both trainings then leave out of their distortions (a pen never seen).

    python benchmarks/production_loop.py --shift other-writers   # the full MNIST span, default training
    python benchmarks/production_loop.py --shift thicker --train-records 10000 --test-records 2000 --epochs 3

Every step is the project's own command, run as a user runs it: pipeline/local_runner.py,
serving.server (one process for the whole scenario, which keeps serving during the retraining),
python -m monitoring.feedback, python -m monitoring.check, python -m monitoring.span.
Writes benchmarks/results/production_loop.json (or --out) and prints a summary.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from typing import Dict, List

import numpy as np

from benchmarks import other_writers, output
from modules import distortions, idx, push_layout
from pipeline import configs
from serving.clients.rest_client import RestClient, ServingRequestError
from serving.tools.process import ServerProcess

REQUESTS_OF = 10  # images per request
# With the thicker pen both trainings leave out the pen and scan distortions (modules/augment.py):
# the scenario is a pen the served model never saw. With them on, the Trainer already trains for a
# 3x3 dilation and the served model hardly notices this shift (benchmarks/robustness.py).
UNSEEN_PEN = ["--hparam=distort=0"]
SHIFTS = {"thicker": "thicker strokes", "other-writers": "other writers (UCI digits)"}


def thicker(images: np.ndarray) -> np.ndarray:
    """Each stroke one pixel thicker on every side (a 3x3 dilation): a pen unlike MNIST's."""
    return distortions.thicker(images, 3)


def shifted_traffic(shift: str, test_images: np.ndarray, test_labels: np.ndarray, rows: np.ndarray):
    """(images, labels) of the shifted traffic in the order it is sent: the monitored windows first,
    then the rows held out for comparing the old and new versions. rows: MNIST test rows no clean
    window used (the thicker pen draws them)."""
    if shift == "thicker":
        return thicker(test_images[rows]), test_labels[rows]
    images, labels = other_writers.digits()
    order = np.random.default_rng(0).permutation(len(labels))  # scikit-learn's order cycles 0-9
    return images[order], labels[order]


COMMAND_TIMEOUT = 3 * 3600  # one pipeline run on the full span or one monitor command; a hang fails the run


def _command(args: List[str], log_path: str) -> int:
    """Runs one of the project's commands from the checkout; its output goes to log_path."""
    with open(log_path, "a") as log:
        log.write(f"\n$ {' '.join(args)}\n")
        log.flush()
        return subprocess.run(
            [sys.executable, *args],
            cwd=configs.PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=COMMAND_TIMEOUT,
        ).returncode


def _pipeline(work: str, log_path: str, extra: List[str]) -> dict:
    code = _command(
        [
            os.path.join("pipeline", "local_runner.py"),
            "--data-root",
            os.path.join(work, "data"),
            "--output-root",
            os.path.join(work, "out"),
            "--serving-dir",
            os.path.join(work, "serving", configs.MODEL_NAME),
            *extra,
        ],
        log_path,
    )
    with open(os.path.join(work, "out", "summary.json")) as f:
        summary = json.load(f)
    summary["exit_status"] = code
    return summary


def _data(work: str, train_records: int, test_records: int) -> None:
    """span-1 of the work's data root: the shipped span, or its first records."""
    source, target = idx.span_dir(configs.DATA_ROOT, 1), idx.span_dir(os.path.join(work, "data"), 1)
    os.makedirs(target, exist_ok=True)
    for pair, count in (("train", train_records), ("t10k", test_records)):
        images, labels = idx.read_span_pair(source, pair)
        images_path, labels_path = idx.pair_paths(target, pair)
        idx.write_images(images_path, images[:count] if count else images)
        idx.write_labels(labels_path, labels[:count] if count else labels)


class Replay:
    """Sends images to the server in requests of REQUESTS_OF and keeps each request's id."""

    def __init__(self, client: RestClient):
        self.client = client

    def window(self, images: np.ndarray, labels: np.ndarray, labelled_share: float, seed: int):
        """-> (since, until, label lines for a share of the requests, rows sent)."""
        time.sleep(1.05 - time.time() % 1)  # windows are whole seconds (the log's timestamp_secs)
        since = time.time()
        lines = []
        rng = np.random.default_rng(seed)
        for start in range(0, len(images), REQUESTS_OF):
            answer = self.client.predict_images(images[start : start + REQUESTS_OF])
            if rng.random() < labelled_share:
                for row in range(len(answer.classes)):
                    lines.append(f"{answer.request_id},{row},{int(labels[start + row])}")
        time.sleep(1.05 - time.time() % 1)
        return int(since), int(time.time()), lines


def run(args) -> dict:
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    log_path = os.path.join(work, "commands.log")
    result: Dict[str, object] = {"settings": vars(args).copy(), "windows": []}
    started = time.time()
    _data(work, args.train_records, args.test_records)
    training = [f"--epochs={args.epochs}"] if args.epochs else []
    unseen = UNSEEN_PEN if args.shift == "thicker" else []
    training += [f"--max-accuracy-drop={args.max_accuracy_drop}", *unseen, *args.pipeline_arg]
    first = _pipeline(work, log_path, training)
    if not first.get("pushed"):
        raise SystemExit(f"the first run pushed nothing: {first.get('error') or first.get('validation_failures')}")
    result["first_run"] = _run_numbers(first)

    # Serve with request logging; two versions loaded so the old one can be measured after the new arrives.
    serving_base = os.path.join(work, "serving", configs.MODEL_NAME)
    config_path = push_layout.models_config_path(serving_base)
    with open(config_path, "w") as f:
        f.write(
            push_layout.render_models_config(
                [(configs.MODEL_NAME, serving_base)], versions_served=2, request_log=(os.path.join(work, "logs"), 1.0)
            )
        )
    log_prefix = os.path.join(work, "logs", configs.MODEL_NAME, "requests")
    test_images, test_labels = idx.read_span_pair(idx.span_dir(configs.DATA_ROOT, 1), "t10k")
    # Replayed traffic comes from the end of MNIST's test file, away from any records the runs test on.
    pool = np.arange(len(test_labels))[::-1]
    w = args.window_rows
    shifted_images, shifted_labels = shifted_traffic(
        args.shift, test_images, test_labels, pool[args.clean_windows * w :]
    )
    if len(shifted_labels) < args.shifted_windows * w + 100:
        raise SystemExit(f"{len(shifted_labels)} shifted images: too few for {args.shifted_windows} windows of {w}")
    with ServerProcess(serving_base, configs.MODEL_NAME, f"--model_config_file={config_path}") as server:
        replay = Replay(RestClient(server.rest_url, configs.MODEL_NAME))
        plan = [("in-distribution", False)] * args.clean_windows + [(SHIFTS[args.shift], True)] * args.shifted_windows
        for k, (kind, shifted) in enumerate(plan):
            if shifted:
                j = k - args.clean_windows
                images, labels = shifted_images[j * w : (j + 1) * w], shifted_labels[j * w : (j + 1) * w]
            else:
                images, labels = test_images[pool[k * w : (k + 1) * w]], test_labels[pool[k * w : (k + 1) * w]]
            share = args.shifted_labelled_share if shifted else args.clean_labelled_share
            since, until, lines = replay.window(images, labels, share, seed=k)
            labels_file, store = os.path.join(work, f"labels-{k}.csv"), os.path.join(work, "feedback")
            with open(labels_file, "w") as f:
                f.write("request_id,row,label\n" + "\n".join(lines) + "\n")
            feedback_status = _command(
                ["-m", "monitoring.feedback", "--labels", labels_file, "--logs", log_prefix, "--store", store],
                log_path,
            )
            out = os.path.join(work, "monitor")  # one monitor: its history gives drift its previous window
            status = _command(
                [
                    "-m",
                    "monitoring.check",
                    "--logs",
                    log_prefix,
                    "--metadata",
                    os.path.join(work, "out", configs.METADATA_FILE),
                    "--feedback",
                    f"{work}/feedback",
                    "--since",
                    str(since),
                    "--until",
                    str(until),
                    "--out",
                    out,
                ],
                log_path,
            )
            with open(os.path.join(out, "check.json")) as f:
                check = json.load(f)
            shutil.copy(os.path.join(out, "check.json"), os.path.join(out, f"window-{k}.json"))
            result["windows"].append(
                {
                    "window": k,
                    "traffic": kind,
                    "rows": check["rows"],
                    "labelled_rows": len(lines),
                    "feedback_exit_status": feedback_status,
                    "monitor_exit_status": status,
                    "flagged": check["flagged"],
                    "checks": {c["name"]: c["value"] for v in check["versions"].values() for c in v["checks"]}
                    | ({"pixel_drift": check["drift"]["value"]} if check.get("drift") else {}),
                }
            )
            print(f"window {k} ({kind}): {check['verdict']}", flush=True)

        span_status = _command(
            ["-m", "monitoring.span", "--data-root", f"{work}/data", "--store", f"{work}/feedback"], log_path
        )
        result["span_exit_status"] = span_status
        with open(os.path.join(idx.span_dir(f"{work}/data", 2), "feedback_rows.json")) as f:
            result["span"] = {k: v for k, v in json.load(f).items() if k != "rows"}

        # Retrain while serving: a client keeps asking; every answer must succeed.
        served = {"ok": 0, "failed": 0}
        stop = threading.Event()

        def keep_asking():
            client = RestClient(server.rest_url, configs.MODEL_NAME)
            while not stop.is_set():
                try:
                    client.predict_images(test_images[:1])
                    served["ok"] += 1
                except (ServingRequestError, OSError):
                    served["failed"] += 1
                time.sleep(0.05)

        asker = threading.Thread(target=keep_asking, daemon=True)
        asker.start()
        second = _pipeline(work, log_path, training)
        deadline = time.time() + 60
        old, new = int(first["pushed_version"]), second.get("pushed_version")
        while new and time.time() < deadline:
            states = {s["version"]: s["state"] for s in replay.client.status()}
            if states.get(int(new)) == "AVAILABLE":
                break
            time.sleep(0.5)
        stop.set()
        asker.join()
        result["second_run"] = _run_numbers(second)
        result["requests_during_retraining"] = served

        # Old and new versions on shifted traffic neither trained on: the rows after the windows'.
        start = args.shifted_windows * w
        images = shifted_images[start : start + args.evaluation_rows]
        labels = shifted_labels[start : start + args.evaluation_rows]
        result["shifted_online_accuracy"] = {"rows": int(len(labels))}
        for name, version in (("old", old), ("new", int(new) if new else None)):
            if version is None:
                continue
            predicted = np.concatenate(
                [
                    replay.client.predict_images(images[i : i + 100], version=version).classes
                    for i in range(0, len(images), 100)
                ]
            )
            result["shifted_online_accuracy"][name] = {
                "version": version,
                "accuracy": round(float(np.mean(predicted == labels)), 4),
            }
    clean = [x for x in result["windows"] if x["traffic"] == "in-distribution"]
    shifted = [x for x in result["windows"] if x["traffic"] != "in-distribution"]
    both = {"pixel_skew", "online_accuracy"}
    first_flag = next((i + 1 for i, x in enumerate(shifted) if both <= set(x["flagged"])), None)
    result["summary"] = {
        "false_alarms_in_distribution": sum(bool(x["flagged"]) for x in clean),
        "in_distribution_windows": len(clean),
        "shifted_windows_until_skew_and_accuracy_flagged": first_flag,
        "old_version_shifted_accuracy": result["shifted_online_accuracy"].get("old", {}).get("accuracy"),
        "new_version_shifted_accuracy": result["shifted_online_accuracy"].get("new", {}).get("accuracy"),
        "new_version_pushed": bool(second.get("pushed")),
        "failed_requests_during_retraining": served["failed"],
        "wall_seconds": round(time.time() - started, 1),
    }
    return result


def _run_numbers(summary: dict) -> dict:
    return {
        key: summary.get(key)
        for key in (
            "span",
            "test_accuracy",
            "blessed",
            "pushed",
            "pushed_version",
            "validation_failures",
            "wall_seconds",
            "exit_status",
            "error",
        )
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default=os.path.join(configs.PROJECT_ROOT, "outputs", "production_loop"))
    p.add_argument("--out", default=output.result_path("production_loop.json"))
    p.add_argument("--train-records", type=int, default=0, help="first records of MNIST's training file (0: all)")
    p.add_argument("--test-records", type=int, default=0, help="first records of its test file (0: all)")
    p.add_argument("--epochs", type=int, help="training epochs (default: the HParams default)")
    p.add_argument("--max-accuracy-drop", type=float, default=configs.MAX_ACCURACY_DROP)
    p.add_argument("--pipeline-arg", action="append", default=[], help="more local_runner flags")
    p.add_argument("--window-rows", type=int, default=1000, help="images per monitored window")
    p.add_argument("--clean-windows", type=int, default=3)
    p.add_argument("--shifted-windows", type=int, default=1)
    p.add_argument("--clean-labelled-share", type=float, default=0.2, help="share of requests labelled")
    p.add_argument("--shifted-labelled-share", type=float, default=0.5)
    p.add_argument("--evaluation-rows", type=int, default=2000, help="shifted images for old vs new (at most)")
    p.add_argument("--shift", choices=sorted(SHIFTS), default="other-writers", help="the shifted traffic")
    args = p.parse_args(argv)
    if os.path.exists(args.work) and os.listdir(args.work):
        raise SystemExit(f"{args.work} is not empty: give another --work or remove it")
    result = run(args)
    output.write_json(result, args.out)
    print(json.dumps(result["summary"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
