"""Ctrl-C as a terminal user expects it: one line, exit 130, nothing left behind.

A terminal sends SIGINT to the whole process group: the `thresher` driver and its local worker
processes (the extraction children run in their own session and die with their parent,
transforms/extract.py). The driver (`watch`) notes the interrupt, silences the logging of every
library (Beam logs each bundle it abandons at ERROR), drops the tracebacks of the runner's
threads and raises KeyboardInterrupt as Python would; Beam may re-raise it wrapped in its own
exception, and `interrupted()` lets the CLI tell that apart from a failure. A worker process
(`end_quietly`) ends at once with status 130: the driver discards everything a run had staged,
so it has nothing to finish.

A worker starts with the signal ignored until `end_quietly` takes it (engines/runners.py
`worker_command`): a Python interrupted while it imports its site module prints "Fatal Python
error" and a traceback. A worker that was starting when Ctrl-C landed, or that Beam started just
after, never sees it, and Beam waits for every worker to exit before it lets the driver go (a
worker that connects after the runner closed its control channel waits for work forever). So the
driver also kills its local workers (`_stop_local_workers`). No Beam import here.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

from thresher.pipeline.processes import children_by_parent, cmdline

WORKER_MODULE = "thresher.pipeline.engines.worker"  # engines/runners.py `worker_command` runs it

_interrupted = threading.Event()


def interrupted() -> bool:
    return _interrupted.is_set()


def _on_sigint(signum, frame):
    if not _interrupted.is_set():
        _interrupted.set()
        logging.disable(logging.CRITICAL)
        threading.excepthook = lambda args: None  # the runner's threads fail as their workers go
    raise KeyboardInterrupt


def _child_workers(parent: int) -> list[int]:
    """This process's children that run a local worker (Linux /proc; none found elsewhere)."""
    return [pid for pid in children_by_parent().get(parent, []) if WORKER_MODULE.encode() in cmdline(pid)]


def _stop_local_workers(seconds: float = 60.0) -> None:
    """After Ctrl-C, kill the driver's local workers, and any Beam starts meanwhile, until the
    driver exits (a daemon thread) or `seconds` pass. A worker has nothing to finish (see above)."""
    _interrupted.wait()
    me, end = os.getpid(), time.monotonic() + seconds
    while time.monotonic() < end:
        for pid in _child_workers(me):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.1)


def watch() -> None:
    """In the driver (main thread), before the job starts. The thread that stops the workers is
    started here, not in the handler: a handler runs between two bytecodes of the main thread,
    which may hold threading's own lock (Beam starting a thread) that starting one needs."""
    signal.signal(signal.SIGINT, _on_sigint)
    threading.Thread(target=_stop_local_workers, name="stop-workers", daemon=True).start()


def end_quietly() -> None:
    """In a local worker process: Ctrl-C ends it at once, without a traceback."""
    signal.signal(signal.SIGINT, lambda signum, frame: os._exit(130))
