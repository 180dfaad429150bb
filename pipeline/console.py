"""A console a person can read: one line per component with its time, the Trainer's epochs, the
summary. Everything else (TensorFlow's C++ log, absl and Beam chatter, Keras, prints) goes to a
log file under the output root, which the summary names.

TensorFlow's C++ runtime writes to file descriptor 2 itself, past Python's logging, so the
descriptors 1 and 2 of the process are pointed at the log file; the console keeps a duplicate of
the original stdout. Call start() before TensorFlow, TFX or Beam are imported, or their start-up
lines reach the terminal.
"""

import logging
import os
import sys
import time
from typing import Dict, TextIO

# Loggers whose INFO lines a person wants to see: the runner's own, the model code's (epochs) and
# the custom components' (what the release did).
CONSOLE_LOGGERS = ("mnist_tfx", "modules", "components")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# TFX's LocalDagRunner says these (absl logging) around every component.
_STARTED, _FINISHED = "Component %s is running.", "Component %s is finished."


class ComponentLines(logging.Filter):
    """Passes the project's own lines, and turns TFX's component start/finish records into one
    line each, the finished one with the component's wall time."""

    def __init__(self):
        super().__init__()
        self.started: Dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg in (_STARTED, _FINISHED) and record.args:
            node = record.args[0]
            if record.msg == _STARTED:
                self.started[node] = time.time()
                record.msg, record.args = "%-28s started", (node,)
            else:
                seconds = time.time() - self.started.pop(node, time.time())
                record.msg, record.args = "%-28s done in %.1f s", (node, seconds)
            return True
        return record.levelno >= logging.INFO and record.name.split(".")[0] in CONSOLE_LOGGERS


def start(log_path: str, verbose: bool = False) -> TextIO:
    """Routes output as the module says; returns the console stream for the summary.

    verbose: everything stays on the terminal as well (the log file still gets it all)."""
    console = sys.stdout
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    log_file = open(log_path, "a", buffering=1)
    if not verbose:
        sys.stdout.flush()
        sys.stderr.flush()
        console = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
        os.dup2(log_file.fileno(), sys.stdout.fileno())
        os.dup2(log_file.fileno(), sys.stderr.fileno())
    to_file = logging.StreamHandler(log_file)
    to_file.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(to_file)
    to_console = logging.StreamHandler(console)
    to_console.setFormatter(logging.Formatter("%(asctime)s  %(message)s", "%H:%M:%S"))
    if not verbose:
        to_console.addFilter(ComponentLines())
    root.addHandler(to_console)
    # TFX reports components through absl at INFO. absl's own verbosity flag defaults to WARNING and
    # is applied to its logger whenever a library parses absl flags (Transform does): pin it to INFO.
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.INFO)
    return console
