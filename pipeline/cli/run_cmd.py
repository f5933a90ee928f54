"""`thresher run`: a curation job (no arguments: the default recipe on the embedded sample)."""

from __future__ import annotations

import argparse
import os
import sys

from thresher.pipeline.config import apply_overrides, load

NAME = "run"
HELP = "run a curation job (no arguments: the default recipe on the embedded sample)"
PARSER = {"description": "Run a curation job. Options not listed here are passed to Beam unchanged "
                         "(e.g. --project, --region, --temp_location for Dataflow)."}
_FLAGS: set[str] = {"-h", "--help"}  # this command's own option strings; every other option is Beam's


def add_arguments(p: argparse.ArgumentParser) -> None:
    def add(*names, **kw):
        _FLAGS.update(p.add_argument(*names, **kw).option_strings)

    p.add_argument("config", nargs="*", metavar="CONFIG.yaml",
                   help="YAML config (default: built-in defaults); several are laid on each other in order, "
                        "e.g. a recipe then thresher calibrate's thresholds")
    add("--input", nargs="+", action="extend", metavar="GLOB", help="input paths or globs (local, gs://, s3://)")
    add("--output", metavar="DIR", help="run directory (default: ./thresher-out)")
    add("--runner", metavar="NAME",
        help="direct (default), spark or flink (a job server on an embedded master, started for the run), "
             "portable, DataflowRunner, ...")
    add("--workers", type=int, metavar="N",
        help="local worker processes for the direct runner; Spark's local[N] / Flink's parallelism")
    add("--memory-mb", type=int, metavar="MB",
        help="what a local run may hold in memory, its processes together (default: half the machine's)")
    add("--dedup-against", nargs="+", action="extend", metavar="RUN_DIR",
        help="earlier runs: a document whose text one of them kept, or a near duplicate of one of their "
             "documents, is dropped as earlier_duplicate (stages.dedup_exact.against and dedup_minhash.against)")
    add("--only", metavar="A,B", help="run only these stages (ingest and writing always run)")
    add("--skip", metavar="A,B", help="skip these stages")
    add("--overwrite", action="store_true",
        help="replace what the output folder holds (another run's results, or other files)")
    add("--no-progress", action="store_true", help="no progress line while the job runs")
    add("-q", "--quiet", action="store_true", help="print nothing but errors")


def split_args(argv: list[str], parser: argparse.ArgumentParser) -> tuple[argparse.Namespace | None, list[str]]:
    """(this command's arguments, Beam's flags); None: let argparse answer --help."""
    if {"-h", "--help"} & set(argv):
        return None, []
    from thresher.pipeline.engines.options import split_run_args  # reads Beam's option classes

    ours, beam_flags = split_run_args(argv, _FLAGS)
    return parser.parse_args(ours), beam_flags


def resumed_line(stats: dict) -> list[str]:
    """What a rerun took from the stopped run of the same config (graph/resume.py)."""
    r = (stats.get("run") or {}).get("resumed")
    if not r:
        return []
    unread = f"{r['bytes'] / 1e6:,.1f} MB of input not read again, " if r["bytes"] else ""
    return [f"  reused {r['ranges']:,} input range{'s' if r['ranges'] != 1 else ''} a stopped run of this config had "
            f"finished ({unread}{r['documents']:,} documents past the document stages)"]


def summary(result) -> str:
    from thresher.pipeline.tools.inspection import funnel_lines

    s = result.stats
    files = s["input"]["files"]
    lines = [f"Thresher: {s['totals']['read']:,} records read from {files} file{'s' if files != 1 else ''} "
             f"({s['input']['bytes'] / 1e6:,.1f} MB) in {result.seconds:,.1f} s", *resumed_line(s), *funnel_lines(s),
             f"  output   {result.output}"]
    return "\n".join(lines)


def main(args: argparse.Namespace, beam_flags: list[str]) -> int:
    from thresher.pipeline import interrupts
    from thresher.pipeline.graph.heap import tune_heap

    interrupts.watch()  # Ctrl-C: one line and exit 130 (cli/__init__.py), whatever Beam wraps it in
    tune_heap()  # this process is the local runner, which holds every shuffle (pipeline/graph/heap.py)
    cfg = apply_overrides(load(args.config), input=args.input, output=args.output, runner=args.runner,
                          workers=args.workers, memory_mb=args.memory_mb, only=args.only, skip=args.skip,
                          dedup_against=args.dedup_against)
    from thresher.pipeline.engines.run import run  # Beam is slow to import: only for commands that need it

    if not args.quiet:
        print(f"thresher run: {', '.join(cfg.input) if cfg.input else 'embedded sample'} -> {cfg.output} "
              f"({cfg.runner.name}, {cfg.runner.workers} worker{'s' if cfg.runner.workers > 1 else ''})", file=sys.stderr)
    result = run(cfg, beam_flags, show_progress=not (args.no_progress or args.quiet), overwrite=args.overwrite,
                 quiet=args.quiet)
    if result.stats.get("dry_run"):
        print(f"dry run: the {result.stats['runner']} job was built and validated with "
              f"{len(result.stats['stages'])} stages; nothing was submitted or written")
    elif not args.quiet:
        print(summary(result))
    skipped = result.stats.get("run", {}).get("skipped_inputs") or []
    if skipped and not args.quiet:
        names = ", ".join(os.path.basename(p) for p in skipped[:5]) + (", ..." if len(skipped) > 5 else "")
        print(f"thresher run: skipped {len(skipped)} file{'s' if len(skipped) > 1 else ''} of no known format: {names}",
              file=sys.stderr)
    for warning in result.warnings:
        print(f"thresher: warning: {warning}", file=sys.stderr)
    for problem in result.problems:
        print(f"thresher: error: {problem}", file=sys.stderr)
    return 1 if result.problems else 0
