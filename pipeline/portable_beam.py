"""Beam's portable path on one machine: Beam's own Python job service and EXTERNAL SDK worker
pools, each a separate process on 127.0.0.1, the way Flink, Spark or Dataflow run the same jobs
(a job endpoint that plans the job, workers in pools that run the bundles).

    python -m pipeline.portable_beam --pools 2     # prints the local_runner flags, runs until Ctrl-C

Both services ship inside the apache-beam wheel (`local_job_service_main`, and `worker_pool_main`'s
servicer, served here on 127.0.0.1 only: `worker_pool_main` itself binds every interface);
nothing is downloaded (no Prism, no job-server jar). A pool starts one SDK worker process per
job it is asked for, with `python` from PATH: the pool's PATH and PYTHONPATH must reach this
project's interpreter and code, as they would inside the image on a cluster.
"""

import argparse
import contextlib
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence

from pipeline import configs

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass
class Services:
    job_endpoint: str
    pools: List[str]  # host:port of each worker pool
    logs: Dict[str, str]  # service name -> its log file

    def pipeline_args(self) -> List[str]:
        """The pipeline-wide Beam args: the portable runner, EXTERNAL workers from the first pool."""
        return [
            "--runner=PortableRunner",
            f"--job_endpoint={self.job_endpoint}",
            "--environment_type=EXTERNAL",
            f"--environment_config={self.pools[0]}",
        ]

    def component_args(self) -> Dict[str, List[str]]:
        """Per stage: its pool, round robin over the pools (every pool gets at least one stage)."""
        return {
            stage: [f"--environment_config={self.pools[i % len(self.pools)]}"]
            for i, stage in enumerate(configs.BEAM_COMPONENTS)
        }

    def local_runner_flags(self) -> List[str]:
        flags = [f"--beam-arg={a}" for a in self.pipeline_args()]
        for stage, args in self.component_args().items():
            flags += [f"--component-beam-arg={stage}={a}" for a in args]
        return flags


def _wait_port(port_file: str, process: subprocess.Popen, log: str, timeout: float = 60) -> int:
    """The port a service bound (port 0: the system chose it), from the file it writes once listening."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            with open(log) as f:
                raise RuntimeError(f"{process.args[2]} exited with {process.returncode}:\n{f.read()[-3000:]}")
        if os.path.exists(port_file):
            with open(port_file) as f:
                return int(f.read())
        time.sleep(0.2)
    raise TimeoutError(f"{process.args[2]} reported no port after {timeout} s; see {log}")


def _environment() -> Dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")  # `python` = this one
    env["PYTHONPATH"] = PROJECT_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


@contextlib.contextmanager
def services(folder: str, pools: int = 2) -> Iterator[Services]:
    """Starts a job service and `pools` worker pools (logs in folder); stops them all on exit."""
    os.makedirs(folder, exist_ok=True)
    env, started, logs = _environment(), [], {}

    def start(name: str, module: str, *flags: str) -> int:
        """Starts a service on a port the system picks; returns that port."""
        logs[name] = os.path.join(folder, f"{name}.log")
        port_file = os.path.join(folder, f"{name}.port")
        if os.path.exists(port_file):
            os.remove(port_file)
        with open(logs[name], "w") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", module, "--port=0", f"--port_file={port_file}", *flags],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=folder,
            )
        started.append(process)
        return _wait_port(port_file, process, logs[name])

    try:
        job_port = start("job_service", "apache_beam.runners.portability.local_job_service_main")
        addresses = [
            f"127.0.0.1:{start(f'worker_pool_{i}', 'pipeline.portable_beam', '--serve-pool')}" for i in range(pools)
        ]
        yield Services(f"127.0.0.1:{job_port}", addresses, logs)
    finally:
        for process in started:
            process.terminate()
        for process in started:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def workers_started(log_path: str) -> int:
    """SDK worker processes a pool started, from its log."""
    with open(log_path) as f:
        return sum("Starting worker with command" in line for line in f)


def jobs_done(log_path: str) -> int:
    """Jobs the job service finished with state DONE, from its log."""
    with open(log_path) as f:
        return sum("with state DONE" in line for line in f)


def serve_pool(port: int, port_file: Optional[str] = None) -> None:
    """What `python -m apache_beam.runners.worker.worker_pool_main --service_port=PORT` does (its
    servicer, SDK workers as processes), bound to 127.0.0.1; runs until terminated. port 0: the
    system picks one; port_file: where the bound port is written (by rename) once listening."""
    import grpc
    from apache_beam.portability.api import beam_fn_api_pb2_grpc
    from apache_beam.runners.worker.worker_pool_main import BeamFnExternalWorkerPoolServicer
    from apache_beam.utils import thread_pool_executor

    logging.basicConfig(level=logging.INFO)  # the servicer logs each worker it starts
    server = grpc.server(thread_pool_executor.shared_unbounded_instance())
    servicer = BeamFnExternalWorkerPoolServicer(use_process=True, data_buffer_time_limit_ms=-1)
    beam_fn_api_pb2_grpc.add_BeamFnExternalWorkerPoolServicer_to_server(servicer, server)
    port = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    if port_file:
        with open(f"{port_file}.tmp", "w") as f:
            f.write(str(port))
        os.replace(f"{port_file}.tmp", port_file)
    logging.info("worker pool listening on 127.0.0.1:%d", port)
    server.wait_for_termination()


def main(argv: Sequence[str] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pools", type=int, default=2)
    p.add_argument("--logs", default=os.path.join(PROJECT_ROOT, "outputs", "portable_beam"))
    p.add_argument("--serve-pool", action="store_true", help="be one worker pool (what services() starts)")
    p.add_argument("--port", type=int, default=0, help="with --serve-pool: its port (0: the system picks one)")
    p.add_argument("--port-file", "--port_file", help="with --serve-pool: write the bound port here")
    args = p.parse_args(argv)
    if args.serve_pool:
        serve_pool(args.port, args.port_file)
        return 0
    with services(args.logs, args.pools) as running:
        print("job service and worker pools up; logs in", args.logs)
        print("python pipeline/local_runner.py " + " ".join(running.local_runner_flags()))
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
