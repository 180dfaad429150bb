"""The monitoring commands print their own lines; what TensorFlow and TFDV print as they load (their
C++ log writes to file descriptor 2 directly) goes to a log file instead."""

import os
import sys
import tempfile
from typing import TextIO


def route_library_output(command: str) -> TextIO:
    """Points file descriptors 1 and 2 at <temp dir>/mnist-tfx-<command>.log; returns the terminal."""
    log_path = os.path.join(tempfile.gettempdir(), f"mnist-tfx-{command}.log")
    sys.stdout.flush()
    terminal = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    with open(log_path, "a") as log_file:
        for fd in (sys.stdout.fileno(), sys.stderr.fileno()):
            os.dup2(log_file.fileno(), fd)
    print(f"(library output: {log_path})", file=terminal)
    return terminal
