"""A real MariaDB server (Debian's mariadb-server, installed by bootstrap.sh --browser) on 127.0.0.1,
with its data directory in a temporary folder: started for a test module and stopped after it."""

import contextlib
import os
import shutil
import subprocess
import time

from serving.tools.process import free_port

USER, PASSWORD, DATABASE = "mlmd", "mlmd-test-secret", "mlmd"


def binaries():
    """(server, installer, client) paths, or None when mariadb-server is not installed."""
    found = [
        shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/usr/bin")
        for name in ("mariadbd", "mariadb-install-db", "mariadb")
    ]
    return found if all(found) else None


def _ready(process: subprocess.Popen, client: str, sock: str, log: str, timeout: float = 60) -> bool:
    """True once the server answers on its socket; False if it exited (for example, its port was taken)."""
    deadline = time.time() + timeout
    while True:
        probe = subprocess.run(
            [client, f"--socket={sock}", "-uroot", "-e", "SELECT 1"], capture_output=True, timeout=10
        )
        if probe.returncode == 0:
            return True
        if process.poll() is not None:
            return False
        if time.time() > deadline:
            process.kill()
            process.wait(timeout=10)
            raise RuntimeError(f"mariadbd did not answer in {timeout} s; its log: {open(log).read()[-2000:]}")
        time.sleep(0.3)


@contextlib.contextmanager
def server(folder: str):
    """Yields "127.0.0.1:PORT/DB" of a fresh server whose user USER (password PASSWORD) may create
    and use DB; the server's log is folder/mariadb.log."""
    mariadbd, install_db, client = binaries()
    data, sock, log = (os.path.join(folder, n) for n in ("data", "mariadb.sock", "mariadb.log"))
    user = ["--user=root"] if os.geteuid() == 0 else []  # mariadbd refuses root unless told
    subprocess.run(
        [
            install_db,
            "--no-defaults",
            f"--datadir={data}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            *user,
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    # mariadbd cannot bind a port the system picks (--port=0 means its default, 3306), so it gets a
    # port found free; if another process took it meanwhile, the server stops and starts again on another.
    process = None
    try:
        for attempt in range(3):
            port = free_port()
            log_start = os.path.getsize(log) if os.path.exists(log) else 0
            process = subprocess.Popen(
                [
                    mariadbd,
                    "--no-defaults",
                    f"--datadir={data}",
                    f"--socket={sock}",
                    f"--port={port}",
                    "--bind-address=127.0.0.1",
                    f"--pid-file={os.path.join(folder, 'mariadb.pid')}",
                    f"--log-error={log}",
                    "--skip-log-bin",
                    *user,
                ]
            )
            if _ready(process, client, sock, log):
                break
            with open(log) as f:
                f.seek(log_start)
                this_attempt = f.read()
            if attempt == 2 or "Bind on TCP/IP port" not in this_attempt:
                raise RuntimeError(f"mariadbd did not start; its log: {this_attempt[-2000:]}")
        statements = (
            f"CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}';"
            f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'127.0.0.1';"
        )
        subprocess.run(
            [client, f"--socket={sock}", "-uroot", "-e", statements], check=True, capture_output=True, timeout=30
        )
        yield f"127.0.0.1:{port}/{DATABASE}", port
    finally:
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
