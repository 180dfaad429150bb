"""A TF Serving-compatible development server: REST and gRPC over the push directory.

    python -m serving.server --model_name=mnist --model_base_path=serving_model/mnist
    python -m serving.server --model_config_file=serving_model/models.config

Flags carry tensorflow_model_server's names, so the same command line starts either. This
server is for development and tests; production runs the real TF Serving (serving/deploy/).
It binds 127.0.0.1 unless --host says otherwise.

The terminal shows one line per listening port and per loaded or unloaded version (--access_log
adds one per request); TensorFlow's C++ log and other libraries' output go to --log_file
(--verbose keeps everything on the terminal).
"""

import argparse
import json
import logging
import os
import signal
import sys
import tempfile
import threading
from typing import Optional

from modules.signatures import DEFAULT_LOW_CONFIDENCE_BOUND

log = logging.getLogger("serving.server")
DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024  # the largest REST body / gRPC message accepted
DEFAULT_MAX_ROWS = 1024  # rows (images, pictures, examples) one request may hold
DEFAULT_MAX_EXPLAIN_ROWS = 32  # rows of an explain signature's request (one takes about 1 s on 2 cores)
AUTO_PORT = -1  # --port=auto / --rest_api_port=auto: the system picks a free port (0 keeps TF Serving's "off")


def _port(text: str) -> int:
    if text == "auto":
        return AUTO_PORT
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0-65535 or 'auto'; got {text}")
    return port


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m serving.server", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--port", type=_port, default=8500, help="gRPC port (0: no gRPC; auto: any free port)")
    p.add_argument("--rest_api_port", type=_port, default=8501, help="REST port (0: no REST; auto: any free port)")
    p.add_argument(
        "--ports_file",
        help='once listening, write {"grpc": port, "rest": port} here (by rename): how a script learns auto ports',
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 exposes it to the network)")
    p.add_argument("--model_name", default="default")
    p.add_argument("--model_base_path", help="folder of <version>/saved_model.pb directories")
    p.add_argument("--model_config_file", help="a TF Serving models.config (overrides --model_name/base_path)")
    p.add_argument(
        "--file_system_poll_wait_seconds",
        type=float,
        default=1.0,
        help="how often to look for new versions (0: only at start)",
    )
    p.add_argument(
        "--model_config_file_poll_wait_seconds",
        type=float,
        default=0.0,
        help="TF Serving's flag: re-read --model_config_file this often and apply changes (0: never)",
    )
    p.add_argument(
        "--allow_version_labels_for_unavailable_models",
        action="store_true",
        help="TF Serving's flag: a new label may name a version that is not loaded yet",
    )
    p.add_argument(
        "--enable_batching",
        nargs="?",
        const="true",
        default="false",
        choices=("true", "false"),
        help="TF Serving's flag: batch Predict calls (serving/server/batching.py)",
    )
    p.add_argument("--batching_parameters_file", help="TF Serving's BatchingParameters text proto")
    p.add_argument(
        "--tensorflow_intra_op_parallelism",
        type=int,
        default=0,
        help="TF Serving's flag: threads one op may use (0: TensorFlow chooses, one per core)",
    )
    p.add_argument(
        "--tensorflow_inter_op_parallelism",
        type=int,
        default=0,
        help="TF Serving's flag: ops run at once (0: TensorFlow chooses)",
    )
    p.add_argument(
        "--max_request_bytes",
        type=int,
        default=DEFAULT_MAX_REQUEST_BYTES,
        help="largest REST body / gRPC message accepted",
    )
    p.add_argument(
        "--monitoring_config_file",
        help='TF Serving\'s MonitoringConfig text proto: prometheus_config { enable: true path: "/metrics" }',
    )
    p.add_argument(
        "--low_confidence_bound",
        type=float,
        default=DEFAULT_LOW_CONFIDENCE_BOUND,
        help="a prediction whose top probability is below this counts as low-confidence (metrics)",
    )
    p.add_argument(
        "--rest_api_timeout_in_ms",
        type=int,
        default=30000,
        help="TF Serving's flag: a REST connection silent this long (stalled or idle) is closed",
    )
    p.add_argument("--rest_api_max_connections", type=int, default=512, help="open REST connections at most")
    p.add_argument("--grpc_max_concurrent_rpcs", type=int, default=256, help="gRPC calls running or queued at most")
    p.add_argument(
        "--request_log_max_file_bytes",
        type=int,
        default=64 << 20,
        help="a request-log file (logging_config in models.config) is closed at this size",
    )
    p.add_argument(
        "--request_log_max_file_seconds", type=float, default=60.0, help="... or at this age, and a new one begun"
    )
    p.add_argument(
        "--enable_reload_config_request",
        choices=["true", "false"],
        default="true",
        help="gRPC HandleReloadConfigRequest (it replaces the served models): false where clients reach the gRPC port",
    )
    p.add_argument(
        "--max_batch_rows",
        type=int,
        default=DEFAULT_MAX_ROWS,
        help="rows (images, pictures, examples) one request may hold; more: INVALID_ARGUMENT before the model runs",
    )
    p.add_argument(
        "--max_explain_rows",
        type=int,
        default=DEFAULT_MAX_EXPLAIN_ROWS,
        help="rows one request to an explain signature may hold (each costs about 65 predictions and their gradients)",
    )
    p.add_argument(
        "--request_log_queue_size", type=int, default=1024, help="records waiting for the disk; more are dropped"
    )
    p.add_argument(
        "--request_log_queue_bytes",
        type=int,
        default=256 << 20,
        help="... and the bytes their tensors hold at most; more are dropped",
    )
    # Per-client rate limits and quotas (serving/server/rate_limit.py): not a TF Serving flag; the
    # real server has none, and serving/deploy/nginx/ puts the same limits in front of it.
    p.add_argument(
        "--rate_limit_per_second",
        type=float,
        default=0.0,
        help="requests a second each client may send to the API (REST /v1/ and gRPC); 0: no limit",
    )
    p.add_argument("--rate_limit_burst", type=int, default=20, help="requests a client may send at once above the rate")
    p.add_argument("--rate_limit_quota", type=int, default=0, help="requests per client per quota period; 0: none")
    p.add_argument("--rate_limit_quota_seconds", type=float, default=86400.0, help="the quota's period (a day)")
    p.add_argument(
        "--rate_limit_key_header",
        default="",
        help="count clients by this header's value (REST) or metadata key (gRPC), e.g. an API key a proxy "
        "has checked; requests without it are counted by address",
    )
    p.add_argument("--access_log", action="store_true", help="log one line per REST request")
    p.add_argument("--log_file", help="where library and TensorFlow output goes (default: a file in the temp dir)")
    p.add_argument("--verbose", action="store_true", help="keep every library's output on the terminal")
    args = p.parse_args(argv)
    if not args.model_config_file and not args.model_base_path:
        p.error("give --model_base_path (with --model_name) or --model_config_file")
    if args.rate_limit_per_second < 0:
        p.error(f"--rate_limit_per_second must be 0 (no limit) or more; got {args.rate_limit_per_second}")
    try:  # bad limits are refused before anything loads
        rate_limiter(args)
    except ValueError as error:
        p.error(str(error))
    return args


def rate_limiter(args: argparse.Namespace):
    """The per-client limiter the flags ask for, or None (--rate_limit_per_second 0, the default)."""
    from serving.server.rate_limit import RateLimiter

    if not args.rate_limit_per_second:
        return None
    return RateLimiter(
        args.rate_limit_per_second,
        args.rate_limit_burst,
        args.rate_limit_quota,
        args.rate_limit_quota_seconds,
        args.rate_limit_key_header or None,
    )


def serve(args: argparse.Namespace, stop: Optional[threading.Event] = None) -> None:
    """Serves until `stop` is set."""
    # Imported here, after main() has routed output: TensorFlow prints as it loads.
    from serving.server import batching, grpc_api, rest_api
    from serving.server.metrics import ServingMetrics, read_monitoring_config
    from serving.server.repository import ModelConfig, ModelRepository, configs_from_file, watch_config_file

    set_tensorflow_threads(args.tensorflow_intra_op_parallelism, args.tensorflow_inter_op_parallelism)
    if args.model_config_file:
        models = configs_from_file(args.model_config_file)
    else:
        models = [ModelConfig(args.model_name, os.path.abspath(args.model_base_path))]
    metrics_path = read_monitoring_config(args.monitoring_config_file) if args.monitoring_config_file else None
    repository = ModelRepository(
        models,
        ServingMetrics(args.low_confidence_bound) if metrics_path else None,
        allow_labels_for_unavailable=args.allow_version_labels_for_unavailable_models,
        batcher=batching.Batcher(batching.read_parameters(args.batching_parameters_file))
        if args.enable_batching == "true"
        else None,
        max_rows=args.max_batch_rows,
        max_explain_rows=args.max_explain_rows,
        max_file_bytes=args.request_log_max_file_bytes,
        max_file_seconds=args.request_log_max_file_seconds,
        queue_size=args.request_log_queue_size,
        queue_bytes=args.request_log_queue_bytes,
    )
    repository.start(args.file_system_poll_wait_seconds)
    stop = stop or threading.Event()
    if repository.batcher:
        log.info("batching on: %s", repository.batcher.parameters)
    if args.model_config_file and args.model_config_file_poll_wait_seconds > 0:
        watch_config_file(repository, args.model_config_file, args.model_config_file_poll_wait_seconds, stop)
    limiter = rate_limiter(args)
    if limiter:
        log.info("rate limit on: %s a second, burst %d, quota %d", limiter.rate, limiter.burst, limiter.quota)
    grpc_server, bound = None, {"grpc": 0, "rest": 0}
    if args.port:
        grpc_server, bound["grpc"] = grpc_api.make_server(
            repository,
            args.host,
            max(args.port, 0),
            args.max_request_bytes,
            max_concurrent_rpcs=args.grpc_max_concurrent_rpcs,
            config_dir=os.path.dirname(os.path.abspath(args.model_config_file or ".")),
            allow_reload=args.enable_reload_config_request == "true",
            rate_limiter=limiter,
        )
        grpc_server.start()
        log.info("gRPC API on %s:%d", args.host, bound["grpc"])
    rest_server = None
    if args.rest_api_port:
        rest_server = rest_api.make_server(
            repository,
            args.host,
            max(args.rest_api_port, 0),
            args.max_request_bytes,
            metrics_path,
            timeout_seconds=args.rest_api_timeout_in_ms / 1000,
            max_connections=args.rest_api_max_connections,
            rate_limiter=limiter,
        )
        bound["rest"] = rest_server.server_address[1]
        threading.Thread(target=rest_server.serve_forever, name="rest", daemon=True).start()
        log.info("REST API on http://%s:%d/v1/models/%s", args.host, bound["rest"], models[0].name)
        if metrics_path:
            log.info("Prometheus metrics on http://%s:%d%s", args.host, bound["rest"], metrics_path)
    if args.ports_file:
        write_ports_file(args.ports_file, bound)
    log.info("serving models %s (gRPC port %s, REST port %s)", [m.name for m in models], bound["grpc"], bound["rest"])
    stop.wait()
    # Stop taking requests first (gRPC lets those in flight finish within its grace period; REST
    # handler threads are not waited for), then drain the request logs: every answered request's
    # record is written, or counted as dropped when it comes after its log closed.
    if rest_server:
        rest_server.shutdown()
    if grpc_server:
        grpc_server.stop(grace=5).wait()
    repository.stop()


def write_ports_file(path: str, ports: dict) -> None:
    """The bound ports as JSON, published by rename: a reader sees the whole file or none."""
    scratch = f"{path}.tmp-{os.getpid()}"
    with open(scratch, "w") as f:
        json.dump(ports, f)
    os.replace(scratch, path)


def set_tensorflow_threads(intra_op: int, inter_op: int) -> None:
    """TensorFlow's thread pools, before the first model loads (0 keeps TensorFlow's choice)."""
    import tensorflow as tf

    if intra_op:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op)
    if inter_op:
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    log.info(
        "TensorFlow threads: intra-op %d, inter-op %d (0: TensorFlow's choice)",
        tf.config.threading.get_intra_op_parallelism_threads(),
        tf.config.threading.get_inter_op_parallelism_threads(),
    )


def route_output(args: argparse.Namespace) -> None:
    """This server's own lines to the terminal (stderr); file descriptors 1 and 2, where TensorFlow's
    C++ runtime and other libraries write, to the log file unless --verbose."""
    terminal = sys.stderr
    if not args.verbose:
        log_name = (
            f"serving-server-{args.rest_api_port if args.rest_api_port != AUTO_PORT else f'auto-{os.getpid()}'}.log"
        )
        log_path = args.log_file or os.path.join(tempfile.gettempdir(), log_name)
        with open(log_path, "a") as log_file:
            terminal = os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1)
            for fd in (sys.stdout.fileno(), sys.stderr.fileno()):
                os.dup2(log_file.fileno(), fd)
        print(f"library output goes to {log_path}", file=terminal)
    handler = logging.StreamHandler(terminal)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])  # other libraries: warnings and errors
    logging.getLogger("serving").setLevel(logging.INFO)
    logging.getLogger("serving.access").setLevel(logging.INFO if args.access_log else logging.WARNING)


def main(argv=None) -> int:
    args = parse_args(argv)
    route_output(args)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        serve(args, stop=stop)
    except Exception:  # the terminal, not only the log file, must say why the server stopped
        log.exception("the server stopped")
        return 1
    return 0
