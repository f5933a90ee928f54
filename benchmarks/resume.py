"""A rerun after a crash, against a full run: the job is killed (SIGKILL, every process) once
about `--kill-at` of its input ranges are finished, then run again; the rerun's wall time as a
share of an uninterrupted run's, side by side with the same job without checkpoints
(`runner.resume: false`, what each run pays for being resumable).

    python benchmarks/resume.py --input CRAWL.warc.gz [--workers 2] [--kill-at 0.8] [--work resume-work]
        [--config extra.yaml] [--only STAGES]

The rerun's output is checked against the full run's, file for file (documents/, rejected/,
dedup/, shards/).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path


def command(inputs: list[str], out: Path, workers: int, configs: list[str]) -> list[str]:
    return [sys.executable, "-m", "thresher.pipeline", "run", *configs, *sum((["--input", i] for i in inputs), []),
            "--output", str(out), "--workers", str(workers), "--no-progress", "-q"]


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"job failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def checkpoints(out: Path) -> list[Path]:
    return [p for p in (out / ".staging" / "resume").glob("*/ranges/*.range") if not p.name.startswith(".")]


def disk_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def killed_at(cmd: list[str], out: Path, ranges: int) -> tuple[float, int]:
    """Runs `cmd` until `ranges` checkpoints exist, then kills its whole process group."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None:
        if len(checkpoints(out)) >= ranges:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return time.perf_counter() - t0, disk_bytes(out / ".staging" / "resume")
        time.sleep(0.05)
    raise SystemExit(f"the run ended (rc {proc.returncode}) before {ranges} ranges were finished")


def digest(out: Path) -> dict:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for sub in ("documents", "rejected", "dedup", "shards") for p in sorted((out / sub).rglob("*")) if p.is_file()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", required=True, nargs="+", help="input files (gzip WARC is checkpointed by byte range)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--kill-at", type=float, default=0.8, help="share of the input ranges finished when the run is killed")
    ap.add_argument("--config", action="append", default=[], help="config files for every job")
    ap.add_argument("--only", default="", help="the stages the jobs run (thresher run --only)")
    ap.add_argument("--work", default="resume-work")
    args = ap.parse_args()
    work = Path(args.work).resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    off = work / "no-resume.yaml"
    off.write_text("runner:\n  resume: false\n")
    inputs = [os.path.abspath(p) for p in args.input]
    only = ["--only", args.only] if args.only else []
    run = lambda out, *extra: command(inputs, work / out, args.workers, [*args.config, *extra]) + only  # noqa: E731

    full = timed(run("full"))
    stats = json.loads((work / "full" / "stats.json").read_text())
    without = timed(run("without", str(off)))
    split = 4 * 2**20
    for cfg in args.config:
        text = Path(cfg).read_text()
        if "split_bytes:" in text:
            split = int(text.split("split_bytes:")[1].split()[0])
    ranges = sum(math.ceil(os.path.getsize(p) / split) for p in inputs)  # gzip WARC; files read whole vary
    target = max(1, round(args.kill_at * ranges))
    killed_wall, resume_bytes = killed_at(run("rerun"), work / "rerun", target)
    finished = len(checkpoints(work / "rerun"))
    rerun = timed(run("rerun"))
    restats = json.loads((work / "rerun" / "stats.json").read_text())
    same = digest(work / "rerun") == digest(work / "full")

    print(f"input: {', '.join(inputs)} ({stats['input']['bytes'] / 1e6:,.1f} MB, {stats['totals']['read']:,} records, "
          f"{ranges} ranges), {args.workers} workers")
    print(f"{'job':<44} {'wall s':>8} {'share':>7}")
    print(f"{'full run (resumable: checkpoints written)':<44} {full:>8.1f} {1:>7.2f}")
    print(f"{'full run, runner.resume: false':<44} {without:>8.1f} {without / full:>7.2f}")
    print(f"{f'killed at {finished}/{ranges} ranges finished':<44} {killed_wall:>8.1f} {killed_wall / full:>7.2f}")
    print(f"{'rerun after the kill':<44} {rerun:>8.1f} {rerun / full:>7.2f}")
    r = restats["run"].get("resumed", {})
    print(f"rerun reused {r.get('ranges', 0)} ranges ({r.get('bytes', 0) / 1e6:,.1f} MB, {r.get('documents', 0):,} "
          f"documents past the document stages); checkpoints on disk at the kill: {resume_bytes / 1e6:,.1f} MB "
          f"({resume_bytes / max(stats['input']['bytes'], 1):.2f}x the input)")
    print(f"rerun output identical to the full run's: {same}")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
