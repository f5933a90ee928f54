"""Run a curation job: check everything that can be checked, build the graph, run it, publish."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from importlib import resources

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipeline import rundir
from pipeline.config import Config, ConfigError
from pipeline.graph import CLUSTERS_SCHEMA, Curate
from pipeline.heap import tune_heap
from pipeline.progress import ProgressDisplay
from pipeline.runners import is_dry_run, is_local, make_runner_and_options
from pipeline.stages import StageSpec, enabled_stages, tokenizer_json
from pipeline.stats import AccountingError, accounting_problems, add_clustering_rounds
from transforms.ingest import detect_format
from transforms.tokenize import TokenizerInfo, tokenizer_from_json


def embedded_sample() -> str:
    return str(resources.files("pipeline") / "data" / "sample.warc.gz")


@dataclass
class InputFile:
    path: str
    size: int


def resolve_inputs(patterns: list[str]) -> list[InputFile]:
    """Expand paths, folders and globs; every pattern must match a file of a known format."""
    found: dict[str, int] = {}
    for pattern in patterns:
        if "://" not in pattern and os.path.isdir(pattern):
            pattern = os.path.join(pattern, "**")
        try:
            matches = FileSystems.match([pattern])[0].metadata_list
        except Exception as e:
            raise ConfigError(f"input '{pattern}': cannot be listed: {e}") from None
        matches = [m for m in matches if not (("://" not in m.path) and os.path.isdir(m.path))]
        if not matches:
            raise ConfigError(f"input '{pattern}' matches no file")
        known = [m for m in matches if detect_format(m.path)]
        if not known:
            raise ConfigError(f"input '{pattern}': no file of a known format "
                              "(.warc[.gz], .wet[.gz], .jsonl[.gz|.zst], .json[.gz], .ndjson, .parquet)")
        if "*" not in pattern and "?" not in pattern and len(known) < len(matches):
            raise ConfigError(f"input '{matches[0].path}': unknown format")
        for m in known:
            found[m.path] = m.size_in_bytes
    return [InputFile(p, s) for p, s in sorted(found.items())]


def write_empty_parquet(path: str, schema) -> None:
    import io

    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(schema.empty_table(), buf)
    rundir.atomic_write(path, buf.getvalue())


def tokenizer_info(cfg: Config) -> TokenizerInfo:
    """The tokenizer's identity for the manifest; a bad tokenizer fails here, before the job."""
    try:
        return tokenizer_from_json(*tokenizer_json(cfg), cfg.stages.tokenize.eos_token)[1]
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise ConfigError(f"config key 'stages.tokenize.tokenizer': {e}") from None


@dataclass
class RunResult:
    output: str
    stats: dict
    seconds: float
    job: object = None  # a dry run's translated job (Dataflow: apiclient.Job)


def _dry_run(cfg: Config, stages, files, runner, options) -> RunResult:
    """Build and validate the whole job for the runner without running it or touching the output
    (Dataflow's --dry_run: the job is translated and its environment resolved, nothing submitted)."""
    output = cfg.output.rstrip("/")
    tokenizer = tokenizer_info(cfg) if any(s.name == "tokenize" for s in stages) else None
    t0 = time.perf_counter()
    pipeline = beam.Pipeline(runner=runner, options=options)
    _ = pipeline | "Curate" >> Curate(cfg, [(f.path, f.size) for f in files], stages, rundir.join(output, ".staging"),
                                      None, tokenizer)
    result = pipeline.run()
    stats = {"dry_run": True, "runner": cfg.runner.name, "stages": [s.name for s in stages],
             "inputs": [f.path for f in files]}
    return RunResult(output, stats, time.perf_counter() - t0, job=getattr(result, "job", None))


def run(cfg: Config, beam_flags: list[str] | None = None, show_progress: bool = False) -> RunResult:
    """Everything `thresher run` does after parsing its arguments."""
    beam_flags = list(beam_flags or [])
    stages: list[StageSpec] = enabled_stages(cfg)
    cfg = copy.deepcopy(cfg)
    cfg.input = list(cfg.input or [embedded_sample()])
    files = resolve_inputs(cfg.input)
    runner, options = make_runner_and_options(cfg.runner.name, cfg.runner.workers, beam_flags)

    if is_dry_run(options):
        return _dry_run(cfg, stages, files, runner, options)

    output = cfg.output.rstrip("/") or "/"
    if "://" not in output:
        output = os.path.abspath(output)
        os.makedirs(output, exist_ok=True)
    cfg.output = output
    tokenizer = None
    if any(s.name == "tokenize" for s in stages):
        tokenizer = tokenizer_info(cfg)
    staging = rundir.prepare(output)
    progress_dir = None
    if is_local(cfg.runner.name):
        progress_dir = tempfile.mkdtemp(prefix="thresher-progress-")
        tune_heap()  # this process is the local runner, which holds every shuffle (pipeline/heap.py)

    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.perf_counter()
    try:
        pipeline = beam.Pipeline(runner=runner, options=options)
        _ = pipeline | "Curate" >> Curate(cfg, [(f.path, f.size) for f in files], stages, staging, progress_dir,
                                          tokenizer)
        if show_progress and progress_dir:
            with ProgressDisplay(progress_dir, sum(f.size for f in files), [s.name for s in stages]):
                pipeline.run().wait_until_finish()
        else:
            pipeline.run().wait_until_finish()
    finally:
        if progress_dir:
            shutil.rmtree(progress_dir, ignore_errors=True)
    seconds = time.perf_counter() - t0

    stats = json.loads(rundir.read_bytes(rundir.join(staging, "stats.json")))
    names = [s.name for s in stages]
    if "dedup_minhash" in names:
        add_clustering_rounds(stats, cfg.stages.dedup_minhash.rounds)
        clusters = rundir.join(staging, "dedup", "clusters.parquet")
        if not FileSystems.exists(clusters):  # no near-duplicates at all: an empty table, not a missing file
            write_empty_parquet(clusters, CLUSTERS_SCHEMA)
    stats["run"] = {
        "started": started.isoformat(timespec="seconds"),
        "wall_seconds": round(seconds, 3),
        "runner": cfg.runner.name,
        "workers": cfg.runner.workers,
        "stages": [s.name for s in stages],
        "inputs": [f.path for f in files],
    }
    problems = accounting_problems(stats)
    stats["accounting_ok"] = not problems
    if problems:
        stats["accounting_problems"] = problems
    rundir.publish(output, staging, ("documents", "rejected") + (("shards",) if tokenizer else ())
                   + (("dedup",) if "dedup_minhash" in names else ()))
    rundir.atomic_write(rundir.join(output, "config.yaml"), cfg.to_yaml().encode())
    rundir.atomic_write(rundir.join(output, "stats.json"), json.dumps(stats, indent=2).encode())
    rundir.finish(staging)
    if problems:
        raise AccountingError("accounting identity broken: " + "; ".join(problems))
    return RunResult(output, stats, seconds)
