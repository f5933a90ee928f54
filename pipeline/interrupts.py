"""Ctrl-C as a terminal user expects it: one line, exit 130, nothing left behind.

A terminal sends SIGINT to the whole process group: the `thresher` driver, its local worker
processes and their extraction children. The driver (`watch`) notes the interrupt, silences the
logging of every library (Beam logs each bundle it abandons at ERROR), drops the tracebacks of
the runner's threads and raises KeyboardInterrupt as Python would; Beam may re-raise it wrapped in
its own exception, and `interrupted()` lets the CLI tell that apart from a failure. A worker
process (`end_quietly`) ends at once with status 130: the driver discards everything a run had
staged, so it has nothing to finish. The extraction child ignores the signal and dies with its
parent (transforms/extract.py). No Beam import here.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

_interrupted = threading.Event()


def interrupted() -> bool:
    return _interrupted.is_set()


def _on_sigint(signum, frame):
    if not _interrupted.is_set():
        _interrupted.set()
        logging.disable(logging.CRITICAL)
        threading.excepthook = lambda args: None  # the runner's threads fail as their workers go
    raise KeyboardInterrupt


def watch() -> None:
    """In the driver (main thread), before the job starts."""
    signal.signal(signal.SIGINT, _on_sigint)


def end_quietly() -> None:
    """In a local worker process: Ctrl-C ends it at once, without a traceback."""
    signal.signal(signal.SIGINT, lambda signum, frame: os._exit(130))
