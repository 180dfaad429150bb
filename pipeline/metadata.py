"""Where ML Metadata lives: sqlite under the output root (the default), or a MySQL-compatible server
as Kubeflow uses in production (MySQL, MariaDB, Cloud SQL).

    python pipeline/local_runner.py --metadata-mysql 127.0.0.1:3306/mlmd
    python -m runs.lineage --version N --metadata-mysql 127.0.0.1:3306/mlmd      # read it back
    python -m monitoring.check --metadata-mysql 127.0.0.1:3306/mlmd              # judge served traffic
    MNIST_TFX_MYSQL_USER=... MNIST_TFX_MYSQL_PASSWORD=...   # credentials: the environment only

Credentials never travel on the command line (where `ps` and shell history would show them) and
never appear in a message. `check` opens the store once before anything runs, so a database that
is down or refuses the credentials is reported in plain words before any component starts.
"""

import os
import re
import socket
from typing import Mapping, Optional, Tuple

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

USER_ENV, PASSWORD_ENV = "MNIST_TFX_MYSQL_USER", "MNIST_TFX_MYSQL_PASSWORD"
_ADDRESS = re.compile(r"^(?P<host>[^:/\s]+):(?P<port>\d{1,5})/(?P<database>[A-Za-z0-9_]+)$")


class MetadataUnavailable(RuntimeError):
    """The ML Metadata store cannot be opened; the message says which and why, in plain words."""


def parse_mysql_address(address: str) -> Tuple[str, int, str]:
    """HOST:PORT/DB -> (host, port, database); ValueError in plain words for anything else."""
    match = _ADDRESS.match(address)
    if not match or not 0 < int(match.group("port")) < 65536:
        raise ValueError(f"--metadata-mysql {address!r}: expected HOST:PORT/DATABASE, e.g. 127.0.0.1:3306/mlmd")
    return match.group("host"), int(match.group("port")), match.group("database")


def mysql_config(address: str, environ: Mapping[str, str] = os.environ) -> metadata_store_pb2.ConnectionConfig:
    """The ConnectionConfig of a MySQL-compatible server; user and password from the environment."""
    host, port, database = parse_mysql_address(address)
    user = environ.get(USER_ENV)
    if not user:
        raise MetadataUnavailable(f"ML Metadata on {address}: set {USER_ENV} (and {PASSWORD_ENV}) in the environment")
    config = metadata_store_pb2.ConnectionConfig()
    config.mysql.host, config.mysql.port, config.mysql.database = host, port, database
    config.mysql.user = user
    config.mysql.password = environ.get(PASSWORD_ENV, "")
    return config


def add_mysql_argument(parser, instead_of: str) -> None:
    """The --metadata-mysql option of every command that opens the store (the runner, lineage, the
    monitor): one spelling, one help text."""
    parser.add_argument(
        "--metadata-mysql",
        metavar="HOST:PORT/DB",
        help=f"ML Metadata on a MySQL-compatible server instead of {instead_of}; user and password from "
        f"${USER_ENV} and ${PASSWORD_ENV}, never from the command line",
    )


def sqlite_config(path: str, read_only: bool = False) -> metadata_store_pb2.ConnectionConfig:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = path
    config.sqlite.connection_mode = (
        metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
        if read_only
        else metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    )
    return config


def describe(config: metadata_store_pb2.ConnectionConfig) -> str:
    """Where a config points, without credentials: "sqlite PATH" or "mysql HOST:PORT/DB"."""
    if config.HasField("mysql"):
        return f"mysql {config.mysql.host}:{config.mysql.port}/{config.mysql.database}"
    return f"sqlite {config.sqlite.filename_uri}"


def open_store(config: metadata_store_pb2.ConnectionConfig) -> metadata_store.MetadataStore:
    """The store, or MetadataUnavailable naming where and why (the server's own words, minus any
    password) when it cannot be opened."""
    try:
        return metadata_store.MetadataStore(config)
    except Exception as e:  # noqa: BLE001  MLMD raises its own error classes and RuntimeError
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if config.HasField("mysql"):
            reason = _mysql_reason(config.mysql)
        raise MetadataUnavailable(f"ML Metadata at {describe(config)} cannot be opened: {reason}") from None


def _mysql_reason(mysql) -> str:
    """Why a MySQL connection failed, in plain words: MLMD's own message is empty here
    ("mysql_real_connect failed: errno: , error:"), so the port is probed to tell a server that is
    down from one that refuses the login."""
    try:
        socket.create_connection((mysql.host, mysql.port), timeout=5).close()
    except OSError as e:
        return f"nothing answers on {mysql.host}:{mysql.port} ({e.strerror or e}): is the server running?"
    return (
        f"the server refused user '{mysql.user}' (wrong {PASSWORD_ENV}, or no right to create or use "
        f"database '{mysql.database}'), or it is not MySQL-compatible"
    )


def check(config: metadata_store_pb2.ConnectionConfig) -> Optional[str]:
    """Opens the store once (creating its tables if new); returns a one-line description."""
    store = open_store(config)
    del store
    return describe(config)
