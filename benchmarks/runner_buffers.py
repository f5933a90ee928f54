"""Where a local run's memory goes: runs `thresher run ...` in this process (the local runner) and,
after every fused stage, prints the process's RSS, the largest worker's peak RSS during the stage,
and what Beam's runner holds at that moment: the
bytes of its list buffers (flattened or materialised PCollections) and the keys and values of its
grouping buffers (a GroupByKey's input, decoded), live across all stages.

    python benchmarks/runner_buffers.py run --input CORPUS --output OUT --workers 2 \\
        --only dedup_exact,dedup_minhash --overwrite -q --no-progress

Before pipeline/graph/grouping.py this showed the MinHash band keys, the exact-dedup keys and the
joins' references held in grouping buffers, and the parked references in the flatten before the
corpus stages: ~11 KB a document at 20k. Since, every buffer holds file names only.
"""

from __future__ import annotations

import sys
import time
import weakref

from apache_beam.runners.portability.fn_api_runner import execution, fn_runner

from thresher.pipeline.processes import descendants

_live: "weakref.WeakSet" = weakref.WeakSet()


def _track(cls) -> None:
    init = cls.__init__

    def tracked(self, *args, **kwargs):
        init(self, *args, **kwargs)
        _live.add(self)

    cls.__init__ = tracked


def _rss_mb() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024
    return 0


def _children_rss_mb() -> int:
    """The largest RSS among this process's descendants (the local runner's worker processes)."""
    import os

    most = 0
    for pid in descendants(os.getpid()):
        try:
            with open(f"/proc/{pid}/status") as fh:
                most = max(most, next(int(line.split()[1]) for line in fh if line.startswith("VmRSS")) // 1024)
        except (OSError, StopIteration, ValueError, IndexError):
            continue
    return most


class _WorkerPeak:
    """The workers' largest RSS, sampled every 0.1 s; `take()` gives the peak since the last take."""

    def __init__(self):
        import threading

        self.peak = 0
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self):
        while True:
            self.peak = max(self.peak, _children_rss_mb())
            time.sleep(0.1)

    def take(self) -> int:
        peak, self.peak = self.peak, 0
        return peak


def main() -> int:
    for cls in (execution.ListBuffer, execution.GroupingBuffer):
        _track(cls)
    run_bundle = fn_runner.FnApiRunner._execute_bundle
    t0 = time.time()
    workers = _WorkerPeak()

    def execute(self, context, bundle, inputs):
        result = run_bundle(self, context, bundle, inputs)
        listed = keys = values = 0
        for b in list(_live):
            if isinstance(b, execution.ListBuffer):
                listed += sum(len(x) for x in b._inputs)
            else:
                keys += len(b._table)
                values += sum(len(v) for v in b._table.values())
        print(f"{time.time() - t0:7.1f} s  rss {_rss_mb():6,} MB  workers {workers.take():6,} MB  lists {listed / 1e6:8.1f} MB  "
              f"groups {keys:9,} keys {values:10,} values  {bundle.stage.name[:100]}", file=sys.stderr, flush=True)
        return result

    fn_runner.FnApiRunner._execute_bundle = execute
    from thresher.pipeline.cli import main as thresher

    return thresher(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
