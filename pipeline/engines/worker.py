"""The SDK worker process for local multi-process runs: Beam's own harness, with quiet logging and
a tuned C heap (pipeline/graph/heap.py).

Beam's worker logs every start-up step at INFO to the terminal it inherits; users of
`thresher run --workers N` should see progress, not gRPC channel set-up. Warnings still show.
"""

import sys

from thresher.pipeline.graph.heap import tune_heap
from thresher.pipeline.interrupts import end_quietly
from thresher.pipeline.logs import configure


def main() -> None:
    end_quietly()  # Ctrl-C in the terminal reaches the workers too: the driver reports it, once
    tune_heap()  # before Beam starts its gRPC threads
    configure(fmt="%(levelname)s worker: %(message)s")  # before Beam is imported: it logs on import
    from apache_beam.runners.worker import sdk_worker, sdk_worker_main

    # The local runner runs each stage once, as one bundle per worker, and the worker caches every
    # stage's processor, output buffers included: sized by the stage's data, so 40 rounds of
    # connected components held ~150 MB at 16x the dedup benchmark. Idle ones go after 1 s, not 60.
    sdk_worker.DEFAULT_BUNDLE_PROCESSOR_CACHE_SHUTDOWN_THRESHOLD_S = 1
    sdk_worker_main.main(sys.argv)


if __name__ == "__main__":
    main()
