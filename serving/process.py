"""Starts a model server (serving.server, or the real tensorflow_model_server: same flags) as a
child process on free 127.0.0.1 ports and waits until the model is AVAILABLE. For tests,
benchmarks and scripts."""

import os
import socket
import subprocess
import sys
import time
from typing import Optional

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(
        self,
        base_path: str,
        model_name: str,
        *extra_flags: str,
        binary: Optional[str] = None,
        log_path: Optional[str] = None,
        timeout: float = 120,
    ):
        """binary: a tensorflow_model_server executable; None runs this project's server."""
        self.kind = "tensorflow_model_server" if binary else "dev"
        self.model_name = model_name
        self.grpc_port, self.rest_port = free_port(), free_port()
        # --verbose: this project's server keeps library output in the same log, for a failing test to show.
        command = [binary] if binary else [sys.executable, "-m", "serving.server", "--verbose"]
        command += [
            f"--port={self.grpc_port}",
            f"--rest_api_port={self.rest_port}",
            f"--model_name={model_name}",
            f"--model_base_path={base_path}",
            "--file_system_poll_wait_seconds=1",
            *extra_flags,
        ]
        log_path = log_path or os.path.join(
            os.path.dirname(os.path.abspath(base_path)), f"{self.kind}-{self.rest_port}.log"
        )
        self.log = open(log_path, "w+")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        self.rest_url = f"http://127.0.0.1:{self.rest_port}"
        self.grpc_target = f"127.0.0.1:{self.grpc_port}"
        try:
            self.wait_available(timeout)
        except Exception:
            self.stop()
            raise

    def wait_available(self, timeout: float) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.process.returncode}:\n{self.output()}")
            try:
                status = requests.get(f"{self.rest_url}/v1/models/{self.model_name}", timeout=2).json()
                if any(s["state"] == "AVAILABLE" for s in status.get("model_version_status", [])):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"{self.kind} served nothing in {timeout} s:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:]

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if not self.log.closed:
            self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
