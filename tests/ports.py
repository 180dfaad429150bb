"""A port on 127.0.0.1 that refuses connections for as long as a test needs it."""

import contextlib
import socket
from typing import Iterator


@contextlib.contextmanager
def refusing_port() -> Iterator[int]:
    """A port bound here but never listened on: connecting to it is refused (no other process can
    take it and answer) until the block ends."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]
