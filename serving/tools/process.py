"""Starts a model server (serving.server, or the real tensorflow_model_server: same flags) as a
child process on 127.0.0.1 and waits until the model is AVAILABLE. For tests, benchmarks and scripts.

serving.server binds ports the system picks (--port=auto) and reports them (--ports_file), so no
other process can take a port between its choice and its use. The real tensorflow_model_server
cannot report a port: it gets ports found free, and is started again on new ones if one was taken."""

import json
import os
import socket
import subprocess
import sys
import time
from typing import Optional

import requests

PORT_ATTEMPTS = 3  # starts of tensorflow_model_server when a port found free was taken meanwhile
# What tensorflow_model_server logs when its gRPC or its REST port is taken (it may keep serving gRPC).
_TAKEN = ("ddress already in use", "Failed to start HTTP Server")


def _port_taken(log: str) -> bool:
    return any(words in log for words in _TAKEN)


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
        flags = [
            f"--model_name={model_name}",
            f"--model_base_path={base_path}",
            "--file_system_poll_wait_seconds=1",
            *extra_flags,
        ]
        folder = os.path.dirname(os.path.abspath(base_path))
        for attempt in range(PORT_ATTEMPTS):
            self._start(binary, flags, log_path or os.path.join(folder, f"{self.kind}-{os.getpid()}-{id(self)}.log"))
            try:
                self.wait_available(timeout)
                return
            except BaseException as e:  # a test's time limit or Ctrl-C too: never leave the server running
                taken = isinstance(e, Exception) and self.kind != "dev" and _port_taken(self.output())
                self.stop()
                if not taken or attempt == PORT_ATTEMPTS - 1:
                    raise

    def _start(self, binary: Optional[str], flags: list, log_path: str) -> None:
        # --verbose: this project's server keeps library output in the same log, for a failing test to show.
        if binary:
            self.grpc_port, self.rest_port = free_port(), free_port()
            self._ports_file = None
            command = [binary, f"--port={self.grpc_port}", f"--rest_api_port={self.rest_port}", *flags]
        else:
            self.grpc_port = self.rest_port = None
            self._ports_file = f"{log_path}.ports"
            if os.path.exists(self._ports_file):
                os.remove(self._ports_file)
            command = [sys.executable, "-m", "serving.server", "--verbose", "--port=auto", "--rest_api_port=auto"]
            command += [f"--ports_file={self._ports_file}", *flags]
        self.log = open(log_path, "w+")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def _wait_ports(self, deadline: float) -> None:
        """The ports serving.server reports once it listens."""
        while self.rest_port is None:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.process.returncode}:\n{self.output()}")
            if os.path.exists(self._ports_file):
                with open(self._ports_file) as f:
                    ports = json.load(f)
                self.grpc_port, self.rest_port = ports["grpc"], ports["rest"]
                return
            if time.time() > deadline:
                raise TimeoutError(f"{self.kind} reported no ports:\n{self.output()}")
            time.sleep(0.2)

    def wait_available(self, timeout: float) -> None:
        deadline = time.time() + timeout
        self._wait_ports(deadline)
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.process.returncode}:\n{self.output()}")
            if self.kind != "dev" and _port_taken(self.output()):  # not this server that would answer there
                raise RuntimeError(f"{self.kind} could not bind its ports:\n{self.output()}")
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
                self.process.wait(timeout=20)
        if not self.log.closed:
            self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
