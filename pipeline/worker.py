"""The SDK worker process for local multi-process runs: Beam's own, with quiet logging and a tuned
C heap (pipeline/heap.py), and a quick exit. Three ways to start it: plain (Beam's harness, here),
``--standby BASE`` (import everything, then wait for a job on ``BASE.sock``) and ``--attach FOLDER``
(Beam's command with a standby pool: hand the job to a waiting process, or run it here if none
waits); pipeline/standby.py has the pool.

Beam's worker logs every start-up step at INFO to the terminal it inherits; users of
`thresher run --workers N` should see progress, not gRPC channel set-up. Warnings still show.

The exit: when the job ends, the local runner stops its workers one after the other, each waiting
for its process to end, and a worker's interpreter took 0.6-0.7 s to tear itself down after Beam's
harness returned (freeing a few hundred MB of objects, gRPC's shutdown): 1.3 s at the end of every
two-worker run, about 4% of a run of the crawl. Everything a worker writes is written and closed
inside its bundles (Beam has the results before it lets the worker go), so once the harness returns
normally the worker runs its exit handlers, flushes its output streams and ends at once
(`quick_exit`). Its extraction child ends with it (its stdin closes; on Linux it also asked to be
killed when its parent dies).
"""

import atexit
import os
import sys

from thresher.pipeline.heap import tune_heap
from thresher.pipeline.logs import configure


def quick_exit(code: int) -> None:
    """Ends this process now, skipping the interpreter's teardown: the exit handlers run (temporary
    folders, Beam's own), the output streams are flushed, and no object is freed one by one. Only
    once the process's work is written and closed."""
    atexit._run_exitfuncs()  # what a normal exit would run first; undocumented, in CPython since 2.x
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can be said on it
            pass
    os._exit(code)


def harness():
    """Beam's SDK harness, imported and tuned; returns the function that runs it (reading the
    runner's addresses from the environment)."""
    tune_heap()  # before Beam starts its gRPC threads
    configure(fmt="%(levelname)s worker: %(message)s")  # before Beam is imported: it logs on import
    from apache_beam.runners.worker import sdk_worker, sdk_worker_main

    # The local runner runs each stage once, as one bundle per worker, and the worker caches every
    # stage's processor, output buffers included: sized by the stage's data, so 40 rounds of
    # connected components held ~150 MB at 16x the dedup benchmark. Idle ones go after 1 s, not 60.
    sdk_worker.DEFAULT_BUNDLE_PROCESSOR_CACHE_SHUTDOWN_THRESHOLD_S = 1
    return lambda: sdk_worker_main.main(sys.argv)


def preload() -> None:
    """What a worker imports when it unpickles the job's stages (pipeline/standby.py: done while
    the driver builds the job)."""
    import importlib

    from thresher.transforms import stage as registry

    importlib.import_module("thresher.pipeline.graph")  # every pipeline module the stages use

    registry.stages()  # the stage modules, and the libraries they import


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 2 else ""
    if mode == "--attach":  # Beam's command for a worker: hand it to a waiting process if there is one
        from thresher.pipeline.standby import attach

        status = attach(sys.argv[2])
        if status is not None:
            quick_exit(status)
    run = harness()
    if mode == "--standby":
        from thresher.pipeline.standby import serve

        preload()
        serve(sys.argv[2], run)
    else:
        run()  # an exception ends the process the usual way, with its traceback
    quick_exit(0)
