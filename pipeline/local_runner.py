"""Runs the whole pipeline locally: Beam in-process, sqlite ML Metadata, a summary at the end.

    python pipeline/local_runner.py                # full MNIST, strong model, ~minutes on 2 cores
    python pipeline/local_runner.py --quick        # a slice of the data and short training
    python pipeline/local_runner.py --verbose      # every library's log on the terminal too
    python pipeline/local_runner.py --metadata-mysql 127.0.0.1:3306/mlmd   # ML Metadata on a MySQL-
                                                   # compatible server (pipeline/metadata.py)

The terminal shows one line per component, the Trainer's epochs and the summary; the rest goes
to <output root>/run.log (pipeline/console.py).
"""

import argparse
import dataclasses
import json
import logging
import os
import sys
import time

from modules import idx, push_layout
from modules.hparams import HParams, custom_config
from pipeline import configs, console, metadata

LOG_FILE = "run.log"
SUMMARY_FILE = "summary.json"
log = logging.getLogger("mnist_tfx.runner")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--data-root", default=configs.DATA_ROOT, help="folder of span-N/ IDX folders; ExampleGen takes the latest span"
    )
    p.add_argument(
        "--output-root",
        help="pipeline root, metadata.sqlite, summary.json and run.log go here (default outputs/, "
        "outputs/quick/ with --quick)",
    )
    p.add_argument(
        "--serving-dir",
        help="Pusher's base directory: versions land in <serving-dir>/<version>/ (default "
        f"serving_model/{configs.MODEL_NAME}/; with --quick <output-root>/serving_model/{configs.MODEL_NAME}/)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"a slice ({configs.QUICK_TRAIN_RECORDS} train / {configs.QUICK_TEST_RECORDS} test "
        f"records), hyperparameters {configs.QUICK_HPARAMS}, accuracy bound {configs.QUICK_MIN_ACCURACY}",
    )
    p.add_argument("--epochs", type=int, help="training epochs (default: the HParams default)")
    p.add_argument(
        "--attack-examples",
        type=int,
        help="test digits the release attacks for its adversarial table, 0 for none (default "
        f"{configs.ATTACK_EXAMPLES}; with --quick {configs.QUICK_ATTACK_EXAMPLES})",
    )
    p.add_argument(
        "--formats",
        default="all",
        help=f"what the release converts beside the SavedModel: all (default), none, or some of "
        f"{','.join(push_layout.FORMATS)}",
    )
    p.add_argument(
        "--hparam",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any modules/hparams.HParams field, repeatable (e.g. --hparam bn_momentum=0.9)",
    )
    p.add_argument("--min-accuracy", type=float, help=f"blessing lower bound (default {configs.MIN_ACCURACY})")
    p.add_argument(
        "--max-accuracy-drop",
        type=float,
        default=configs.MAX_ACCURACY_DROP,
        help="largest accepted drop in accuracy against the latest blessed model",
    )
    p.add_argument(
        "--beam-arg",
        action="append",
        dest="beam_args",
        help=f"a Beam pipeline arg, repeatable (default: {' '.join(configs.BEAM_PIPELINE_ARGS)})",
    )
    p.add_argument(
        "--component-beam-arg",
        action="append",
        default=[],
        metavar="COMPONENT=ARG",
        help="a Beam arg for one component only, after the pipeline's (e.g. "
        "StatisticsGen=--environment_config=localhost:50001), repeatable",
    )
    p.add_argument(
        "--infer-schema",
        action="store_true",
        help="infer the schema with SchemaGen instead of importing pipeline/schema/schema.pbtxt",
    )
    p.add_argument(
        "--tune",
        action="store_true",
        help=f"add a Tuner ({configs.TUNING_TRIALS} trials); its best values override the defaults",
    )
    p.add_argument(
        "--tuning-trials",
        type=int,
        default=configs.TUNING_TRIALS,
        help=f"points of the search space the Tuner tries with --tune (default {configs.TUNING_TRIALS})",
    )
    metadata.add_mysql_argument(p, "<output-root>/metadata.sqlite")
    p.add_argument("--no-cache", action="store_true", help="re-execute every component")
    p.add_argument("--verbose", action="store_true", help="show every library's log on the terminal as well")
    args = p.parse_args(argv)
    args.component_beam_args = component_beam_args(args.component_beam_arg)  # checked before anything runs
    if args.tuning_trials < 1:
        raise SystemExit(f"--tuning-trials {args.tuning_trials}: the Tuner tries at least one point")
    try:
        push_layout.requested_formats(args.formats)
    except ValueError as error:
        raise SystemExit(f"--formats {error}") from None
    return args


def component_beam_args(pairs) -> dict:
    """COMPONENT=ARG strings -> {component id: [args]}."""
    by_component = {}
    for pair in pairs:
        component, sep, arg = pair.partition("=")
        if not sep or not arg.startswith("--"):
            raise SystemExit(f"--component-beam-arg {pair}: expected COMPONENT=--flag[=value]")
        if component not in configs.BEAM_COMPONENTS:
            raise SystemExit(
                f"--component-beam-arg {pair}: {component!r} runs no Beam job; those that do: "
                f"{', '.join(configs.BEAM_COMPONENTS)}"
            )
        by_component.setdefault(component, []).append(arg)
    return by_component


def parse_hparams(pairs) -> dict:
    """NAME=VALUE strings -> typed HParams overrides; an unknown name is an error."""
    types = {f.name: f.type for f in dataclasses.fields(HParams)}
    overrides = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in types:
            raise SystemExit(f"--hparam {pair}: unknown field {name!r}; known: {sorted(types)}")
        overrides[name] = _typed(types[name], value, pair)
    return overrides


def _typed(kind, value: str, pair: str):
    """The field's annotation is its class: int, float, str or bool (true/false, not Python's
    bool("false"), which is True)."""
    if kind is bool:
        if value.lower() not in ("true", "false"):
            raise SystemExit(f"--hparam {pair}: true or false")
        return value.lower() == "true"
    try:
        return kind(value)
    except ValueError:
        raise SystemExit(f"--hparam {pair}: not {kind.__name__}") from None


def default_paths(args: argparse.Namespace):
    """Quick runs keep their own metadata and push directory: a slice-trained model must never
    become the baseline of, or be served in place of, a full run's."""
    output_root = args.output_root or os.path.join(configs.OUTPUT_ROOT, *(["quick"] if args.quick else []))
    if args.serving_dir:
        serving_dir = args.serving_dir
    elif args.quick:
        serving_dir = os.path.join(output_root, "serving_model", configs.MODEL_NAME)
    else:
        serving_dir = os.path.join(configs.SERVING_ROOT, configs.MODEL_NAME)
    return os.path.abspath(output_root), os.path.abspath(serving_dir)


def attack_examples(args: argparse.Namespace) -> int:
    if args.attack_examples is not None:
        if args.attack_examples < 0:
            raise SystemExit(f"--attack-examples {args.attack_examples}: a number of test digits, 0 or more")
        return args.attack_examples
    return configs.QUICK_ATTACK_EXAMPLES if args.quick else configs.ATTACK_EXAMPLES


def settings(args: argparse.Namespace):
    """(hparams, min_accuracy) after --quick, --epochs, --hparam and --min-accuracy."""
    hparams, min_accuracy = HParams(), configs.MIN_ACCURACY
    if args.quick:
        hparams = dataclasses.replace(hparams, **configs.QUICK_HPARAMS)
        min_accuracy = configs.QUICK_MIN_ACCURACY
    if args.epochs is not None:
        hparams = dataclasses.replace(hparams, epochs=args.epochs)
    hparams = dataclasses.replace(hparams, **parse_hparams(args.hparam))
    if args.min_accuracy is not None:
        min_accuracy = args.min_accuracy
    return hparams, min_accuracy


def metadata_config(args: argparse.Namespace, output_root: str):
    """ML Metadata's ConnectionConfig: the server --metadata-mysql names, or sqlite in output_root."""
    if args.metadata_mysql:
        return metadata.mysql_config(args.metadata_mysql)
    return metadata.sqlite_config(os.path.join(output_root, configs.METADATA_FILE))


def run(args: argparse.Namespace, output_root: str, serving_dir: str, metadata_connection) -> dict:
    # Imported here, after console.start(): TensorFlow, TFX and Beam print as they load.
    from tfx import v1 as tfx

    from pipeline import beam_dependencies, code_version, data_slice
    from pipeline.blessing import eval_config
    from pipeline.dag import create_pipeline
    from runs import report
    from runs import summary as run_summary

    hparams, min_accuracy = settings(args)
    data_root = args.data_root
    if args.quick:
        data_root = data_slice.write_slice(
            args.data_root,
            os.path.join(output_root, "quick_data"),
            configs.QUICK_TRAIN_RECORDS,
            configs.QUICK_TEST_RECORDS,
        )
    fingerprint = code_version.fingerprint()
    pipeline = create_pipeline(
        pipeline_name=configs.PIPELINE_NAME,
        pipeline_root=os.path.join(output_root, "pipeline_root"),
        data_root=os.path.abspath(data_root),
        serving_model_dir=serving_dir,
        model_name=configs.MODEL_NAME,
        preprocessing_fn=configs.PREPROCESSING_FN,
        run_fn=configs.RUN_FN,
        trainer_custom_config=custom_config(hparams.to_dict(), fingerprint),
        # A span made from production feedback: bless only a model that beats the served one on its fresh rows.
        eval_config=eval_config(
            min_accuracy, args.max_accuracy_drop, fresh_window=idx.has_fresh_pair(idx.latest_span(data_root)[1])
        ),
        label_drift_threshold=configs.LABEL_DRIFT_LINF,
        pixel_drift_threshold=configs.PIXEL_DRIFT_JSD,
        schema_file=None if args.infer_schema else configs.SCHEMA_FILE,
        code_version=fingerprint,
        tuner_fn=configs.TUNER_FN if args.tune else None,
        tuning_trials=args.tuning_trials if args.tune else None,
        beam_pipeline_args=args.beam_args or configs.BEAM_PIPELINE_ARGS,
        component_beam_args=args.component_beam_args,
        attack_examples=attack_examples(args),
        formats=args.formats,
        metadata_connection_config=metadata_connection,
        enable_cache=not args.no_cache,
    )
    beam_dependencies.install()  # workers on this environment need no TFX sdist (pipeline/beam_dependencies.py)
    started = time.time()
    error = None
    try:
        tfx.orchestration.LocalDagRunner().run(pipeline)
    except Exception as e:  # a component failed: the summary says which one and why
        logging.getLogger("tfx").exception("pipeline run failed")  # the traceback goes to the log file
        error = f"{type(e).__name__}: {e}"
    summary = run_summary.summarize(metadata_connection, configs.PIPELINE_NAME)
    summary.update(
        error=error,
        wall_seconds=round(time.time() - started, 1),
        hparams=hparams.to_dict(),
        min_accuracy=min_accuracy,
        data_root=os.path.abspath(data_root),
    )
    with open(os.path.join(output_root, SUMMARY_FILE), "w") as f:
        json.dump(summary, f, indent=2)
    summary["report"] = report.write(summary, output_root)
    return summary


def format_summary(summary: dict, log_path: str) -> str:
    lines = [f"\nrun {summary['run_id']} finished in {summary['wall_seconds']} s"]
    for node, info in summary["components"].items():
        lines.append(f"  {node:<28} {info['state']:<9} {info['wall_seconds']:>7.1f} s")
    if summary["error"]:
        failed = [n for n, c in summary["components"].items() if c["state"] == "FAILED"]
        lines.append(f"RUN STOPPED at {', '.join(failed) or 'start-up'}; nothing was pushed.\n{summary['error']}")
    else:
        acc = summary["test_accuracy"]
        lines.append(f"test accuracy: {acc:.4f}" if acc is not None else "test accuracy: not evaluated")
        if summary["blessed"] and summary["pushed"]:
            lines.append(f"BLESSED; pushed to {summary['pushed_model_dir']}")
            if summary.get("formats"):
                lines.append(summary["formats"])
        elif summary["blessed"]:
            lines.append("BLESSED but not pushed: see the log")
        else:
            lines.append("NOT BLESSED; nothing pushed. " + "; ".join(summary.get("validation_failures") or []))
    lines.append(f"report: {summary['report']}\nlog:    {log_path}")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:  # before anything runs: hyperparameters HParams refuses (an attack budget outside (0, 1], ...)
        hparams, _ = settings(args)
        if args.tune and hparams.private:  # the Tuner fits plain models on the training split
            raise ValueError("--tune with private=true: the Tuner would train on the training split without privacy")
    except ValueError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 2
    output_root, serving_dir = default_paths(args)
    os.makedirs(output_root, exist_ok=True)
    try:  # a database that is down or refuses the credentials, in plain words
        metadata_connection = metadata_config(args, output_root)
        where = metadata.check(metadata_connection)
    except (ValueError, metadata.MetadataUnavailable) as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 2
    log_path = os.path.join(output_root, LOG_FILE)
    out = console.start(log_path, verbose=args.verbose)
    log.info("pipeline %s: data %s, outputs %s, log %s", configs.PIPELINE_NAME, args.data_root, output_root, log_path)
    log.info("ML Metadata: %s", where)
    summary = run(args, output_root, serving_dir, metadata_connection)
    print(format_summary(summary, log_path), file=out, flush=True)
    return 0 if summary["blessed"] else 1


if __name__ == "__main__":
    sys.exit(main())
