"""Peak memory of a local run as the input grows: the sample crawl replicated 1x, 2x and 4x.

Each run is the default recipe (every stage, tokenization included) with 2 local worker
processes, in a fresh process; the copies are links to ../shared/data/crawl-sample.warc.gz
under other names, so their records have other ids and every copy is read, filtered, deduplicated
(the copies are exact duplicates: dedup_exact drops all but one) and written. A sampler reads
/proc every 0.1 s and reports the peak resident memory of the runner process, of the largest
worker, and of the whole process tree at once. The target (issue 8): the 4x run's peak within 25%
of the 1x run's.

``--compare DIR`` runs the same sizes from another source tree (a checkout of an earlier commit)
side by side, the baseline for the ratios; with an editable install of this tree, give it a
python that does not see that install (``--compare-python``: a venv whose .pth adds this venv's
site-packages as a plain path).

    python benchmarks/memory.py [--factors 1 2 4] [--compare DIR --compare-python PY]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from thresher.pipeline.processes import descendants

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CRAWL = ROOT.parent / "shared" / "data" / "crawl-sample.warc.gz"

RUN_SCRIPT = r"""
import json, sys, time
try:  # this tree, installed: the thresher.* namespace (the python given runs the tree's own install)
    from thresher.pipeline.config import Config
    try:
        from thresher.pipeline.engines.run import run
    except ImportError:  # a checkout from before pipeline/ had subpackages
        from thresher.pipeline.run import run
except ImportError:  # an older checkout compared against, with bare package names
    sys.path.insert(0, sys.argv[1])
    from pipeline.config import Config
    from pipeline.run import run
cfg = Config()
cfg.input = sys.argv[4:]
cfg.output = sys.argv[2]
cfg.runner.workers = int(sys.argv[3])
t0 = time.perf_counter()
stats = run(cfg).stats
print(json.dumps({"wall": time.perf_counter() - t0, "read": stats["totals"]["read"],
                  "kept": stats["totals"]["kept"], "accounting_ok": stats["accounting_ok"]}))
"""


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def measure(cmd: list[str], env: dict, interval: float = 0.1) -> tuple[subprocess.CompletedProcess, dict]:
    """Runs `cmd`; the peak RSS of its root, of its largest descendant, and of the tree at once."""
    # run from a neutral folder: a checkout before 1f93d4c (`--compare`) starts its workers with
    # `python -m pipeline.worker`, which would import a `pipeline/` in the cwd
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=tempfile.gettempdir())
    peak = {"runner": 0.0, "worker": 0.0, "tree": 0.0}
    while proc.poll() is None:
        rss = {pid: _rss_mb(pid) for pid in [proc.pid, *descendants(proc.pid)]}
        peak["runner"] = max(peak["runner"], rss.get(proc.pid, 0.0))
        peak["worker"] = max([peak["worker"]] + [v for pid, v in rss.items() if pid != proc.pid])
        peak["tree"] = max(peak["tree"], sum(rss.values()))
        time.sleep(interval)
    out, err = proc.communicate()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err), peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crawl", default=str(DEFAULT_CRAWL))
    ap.add_argument("--factors", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--compare", help="another source tree to run side by side (the baseline)")
    ap.add_argument("--compare-python", default=sys.executable,
                    help="python for --compare: one whose site-packages do not map `pipeline` to this tree "
                         "(an editable install does, for the worker processes too)")
    ap.add_argument("--skip-this-tree", action="store_true", help="run only --compare")
    args = ap.parse_args()
    trees = [] if args.skip_this_tree else [("this tree", str(ROOT), sys.executable)]
    if args.compare:
        trees.append(("compare", str(Path(args.compare).resolve()), args.compare_python))
    mb = os.path.getsize(args.crawl) / 1e6
    print(f"Peak RSS of a local run ({args.workers} workers, default recipe with tokenization) on N links to "
          f"{os.path.basename(args.crawl)} ({mb:.1f} MB each); a fresh process per run, /proc sampled every 0.1 s")
    print(f"  {'tree':<10} {'input':>6} {'records':>8} {'kept':>6} {'wall s':>7} {'runner MB':>10} {'worker MB':>10} "
          f"{'tree MB':>8} {'tree vs 1x':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "run.py")
        Path(script).write_text(RUN_SCRIPT)
        for t, (label, root, python) in enumerate(trees):
            base = None
            for f in args.factors:
                inputs = []
                for i in range(f):
                    link = os.path.join(tmp, f"tree{t}-copy{f}-{i}.warc.gz")
                    os.symlink(os.path.abspath(args.crawl), link)
                    inputs.append(link)
                out = os.path.join(tmp, f"out-{t}-{f}")
                # the worker processes import the same tree as the runner
                env = dict(os.environ, PYTHONPATH=root)
                proc, peak = measure([python, script, root, out, str(args.workers)] + inputs, env)
                if proc.returncode:
                    print(proc.stderr[-3000:])
                    continue
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                base = base or peak["tree"]
                print(f"  {label:<10} {f:>5}x {r['read']:>8,} {r['kept']:>6,} {r['wall']:>7.1f} {peak['runner']:>10.0f} "
                      f"{peak['worker']:>10.0f} {peak['tree']:>8.0f} {peak['tree'] / base:>9.2f}x"
                      + ("" if r["accounting_ok"] else "  ACCOUNTING FAILED"))
                subprocess.run(["rm", "-rf", out])


if __name__ == "__main__":
    main()
