"""Turns TF Serving's request logging on or off in a models.config, changing nothing else in it.

    python -m serving.tools.request_logging serving_model/models.config                 # every request
    python -m serving.tools.request_logging serving_model/models.config --sampling-rate 0.1
    python -m serving.tools.request_logging serving_model/models.config --off

Each model in the file (or the one --model names) gets TF Serving's `logging_config`: sampled
Predict calls as PredictionLog records in `<folder>/<model name>/requests-*` (tfrecord), the files
`python -m monitoring.check` reads. The default folder, `../outputs/request_logs`, is relative to
the config file's folder, as the servers read it: beside serving_model/ that is the checkout's
outputs/request_logs/, monitoring.check's default. The file is rewritten in one rename under the
lock a release takes (modules/push_layout.py), and a later push keeps the setting.
`python -m serving.server --model_config_file=...` writes the log (a running server applies the
change with `--model_config_file_poll_wait_seconds`); the real `tensorflow_model_server` has no
working request logger, so `python -m serving.tools.log_proxy` writes the same files in front of it.
"""

import argparse
import os
import sys

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from modules import push_layout

DEFAULT_FOLDER = os.path.join("..", "outputs", "request_logs")


def with_request_logging(text: str, folder: str, sampling_rate: float, model=None) -> str:
    """The models.config text with logging_config set (folder is not None) or removed (None) for
    every model, or the one named; ValueError in plain words for a model the file does not name."""
    config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
    models = [m for m in config.model_config_list.config if model is None or m.name == model]
    if not models:
        names = ", ".join(m.name for m in config.model_config_list.config) or "none"
        raise ValueError(f"no model {model!r} in the config (it names: {names})")
    for m in models:
        if folder is None:
            m.ClearField("logging_config")
            continue
        m.logging_config.log_collector_config.type = "tfrecord"
        m.logging_config.log_collector_config.filename_prefix = os.path.join(folder, m.name, "requests")
        m.logging_config.sampling_config.sampling_rate = sampling_rate
    return text_format.MessageToString(config)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="the models.config to change (e.g. serving_model/models.config)")
    p.add_argument("--folder", default=DEFAULT_FOLDER, help=f"where the logs go (default {DEFAULT_FOLDER})")
    p.add_argument("--sampling-rate", type=float, default=1.0, help="share of Predict calls logged (default 1)")
    p.add_argument("--model", help="only this model (default: every model in the file)")
    p.add_argument("--off", action="store_true", help="turn request logging off")
    args = p.parse_args(argv)
    if not 0 < args.sampling_rate <= 1:
        p.error(f"--sampling-rate {args.sampling_rate}: a share of the calls, above 0 and at most 1")
    if not os.path.isfile(args.config):
        p.error(f"{args.config}: no such file (a pipeline run writes serving_model/models.config)")
    folder = None if args.off else args.folder

    def change(previous):
        return with_request_logging(previous or "", folder, args.sampling_rate, args.model)

    try:
        push_layout.update_models_config(args.config, change)
    except (ValueError, text_format.ParseError) as error:
        print(f"ERROR: {args.config}: {error}", file=sys.stderr)
        return 2
    where = os.path.join(os.path.dirname(os.path.abspath(args.config)), args.folder)
    print(
        "request logging off"
        if args.off
        else f"request logging on: {os.path.normpath(where)}, rate {args.sampling_rate}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
