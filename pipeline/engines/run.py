"""Run a curation job: check everything that can be checked, build the graph, run it, publish."""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import resources

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from thresher.pipeline.graph import resume, rundir
from thresher.pipeline.tools import card
from thresher.pipeline.config import Config, ConfigError
from thresher.pipeline.graph.curate import Curate
from thresher.pipeline.layout import RESUME
from thresher.pipeline.progress import PROGRESS_ENV, ProgressDisplay, ProgressWriter, write_run_meta
from thresher.pipeline.engines.runners import is_dry_run, is_local, make_runner_and_options
from thresher.pipeline.graph.stages import PipelineContext, enabled_stages
from thresher.pipeline.stats import AccountingError, accounting_problems, duplicate_ids_line
from thresher.transforms import dedup
from thresher.transforms.document import input_root, source_names
from thresher.transforms.ingest import detect_format
from thresher.transforms.stage import Stage


def embedded_sample() -> str:
    return str(resources.files("thresher.pipeline") / "data" / "sample.warc.gz")


@dataclass
class InputFile:
    path: str
    size: int
    source: str = ""  # the path relative to the run's input root: documents' `source`, and their ids


def resolve_inputs(patterns: list[str], root: str = "") -> tuple[list[InputFile], list[str]]:
    """Expand paths, folders and globs; every pattern must match a file of a known format. Returns
    the input files and the files of a folder or glob that were skipped (no known format)."""
    found: dict[str, int] = {}
    skipped: set[str] = set()
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
        skipped.update(m.path for m in matches if not detect_format(m.path))
    if root and "://" not in root:
        root = os.path.abspath(root)
    sources = source_names(sorted(found), root or None)
    if root:
        outside = [p for p, src in sources.items() if src == p]
        if outside:
            raise ConfigError(f"config key 'input_root': {outside[0]} is not under {root}")
    return [InputFile(p, s, sources[p]) for p, s in sorted(found.items())], sorted(skipped)


EXTRAS = {"s3://": ("boto3", "aws"), "gs://": ("google.cloud.storage", "gcp")}


def check_filesystems(paths: list[str]) -> None:
    """s3:// and gs:// need their extra installed; say so before Beam fails with its own words."""
    import importlib.util

    for path in paths:
        for scheme, (module, extra) in EXTRAS.items():
            if path.startswith(scheme):
                try:
                    found = importlib.util.find_spec(module) is not None
                except ModuleNotFoundError:  # a parent package (google.cloud) is missing
                    found = False
                if not found:
                    raise ConfigError(f"{path}: {scheme} paths need the [{extra}] extra: pip install 'thresher[{extra}]'")


def resolve_resources(cfg: Config, stages: list[Stage]) -> tuple:
    """What stages load once on the driver and ship to the workers (a tokenizer's bytes), read
    before the job so a bad one fails here, naming its key."""
    return tuple((s.name, s.resolve(getattr(cfg.stages, s.name), FileSystems.open)) for s in stages
                 if s.resolve is not None)


RESOURCES = "_resources"  # under the staging folder: large stage resources, read by the workers


def stage_resources(resources: tuple, staging: str) -> tuple:
    """Resources that can write themselves to files (`to_files`) go to the staging folder, which
    every worker can read; the job carries only their handles. (Pickled into the job, a 120 MB
    n-gram index made a 25-second local run of two workers take seven minutes.)"""
    out = []
    for name, res in resources:
        if hasattr(res, "to_files"):
            folder = rundir.join(staging, RESOURCES, name)
            if "://" not in folder:
                os.makedirs(folder, exist_ok=True)
            res = res.to_files(folder, rundir.atomic_write)
        out.append((name, res))
    return tuple(out)


def output_folders(stages: list[Stage]) -> tuple[str, ...]:
    """The run-directory folders this run writes: documents/, rejected/ and the stages' own."""
    return tuple(dict.fromkeys(rundir.DATA_FOLDERS + tuple(f for s in stages for f in s.outputs)))


def write_index_manifest(staging: str, cfg: Config, stages: list[Stage], stats: dict) -> None:
    """dedup/index/manifest.json: the index files the dedup stages wrote and the settings of their
    keys, what a later run's `against` reads (transforms/dedup.py `exact_against`, `minhash_against`)."""
    names = {s.name for s in stages}
    manifest = {}

    def files(folder: str) -> list[str]:
        found = FileSystems.match([rundir.join(staging, folder, "*.parquet")])[0].metadata_list
        return sorted(f"{os.path.basename(folder)}/{os.path.basename(m.path)}" for m in found)

    if "dedup_exact" in names:
        manifest.update(dedup.exact_index_manifest(cfg.stages.dedup_exact, files(dedup.EXACT_INDEX),
                                                   stats["output"]["index_exact_rows"]))
    if "dedup_minhash" in names:
        manifest.update(dedup.minhash_index_manifest(cfg.stages.dedup_minhash, files(dedup.MINHASH_INDEX),
                                                     stats["output"]["index_minhash_rows"]))
    if manifest:
        rundir.atomic_write(rundir.join(staging, dedup.INDEX_MANIFEST), json.dumps(manifest, indent=2).encode())


@dataclass
class RunResult:
    output: str
    stats: dict
    seconds: float
    job: object = None  # a dry run's translated job (Dataflow: apiclient.Job)
    problems: list = field(default_factory=list)  # a finished run a scheduler must notice: read nothing, too many errors
    warnings: list = field(default_factory=list)  # published, but worth a look: ids kept more than once


def health_problems(stats: dict, max_error_fraction: float) -> list[str]:
    """What makes a published run a failure for whoever scheduled it."""
    t = stats["totals"]
    if t["read"] == 0:
        return [f"read nothing: {stats['input']['files']} input file(s), {stats['input']['bytes']:,} bytes, no record"]
    if t["errored"] / t["read"] > max_error_fraction:
        return [f"{t['errored']:,} of {t['read']:,} records errored ({t['errored'] / t['read']:.1%}), more than "
                f"max_error_fraction {max_error_fraction:.0%}: see rejected/ (errored = true) for where and why"]
    return []


def _dry_run(cfg: Config, stages, files, runner, options) -> RunResult:
    """Build and validate the whole job for the runner without running it or touching the output
    (Dataflow's --dry_run: the job is translated and its environment resolved, nothing submitted)."""
    output = cfg.output.rstrip("/")
    ctx = PipelineContext(cfg, rundir.join(output, ".staging"), None, resolve_resources(cfg, stages),
                          cfg.runner.spill_files(), sum(f.size for f in files))
    t0 = time.perf_counter()
    pipeline = beam.Pipeline(runner=runner, options=options)
    _ = pipeline | "Curate" >> Curate(ctx, [(f.path, f.source, f.size) for f in files], stages)
    result = pipeline.run()
    stats = {"dry_run": True, "runner": cfg.runner.name, "stages": [s.name for s in stages],
             "inputs": [f.path for f in files]}
    if os.environ.get(PROGRESS_ENV):
        write_run_meta(os.environ[PROGRESS_ENV], {"dry_run": True, "runner": cfg.runner.name})
    return RunResult(output, stats, time.perf_counter() - t0, job=getattr(result, "job", None))


def remote_job_id(result) -> str | None:
    """The id a job service or Dataflow gave the job (None on the local runner)."""
    job_id = getattr(result, "job_id", None)
    if callable(job_id):
        try:
            return str(job_id())
        except Exception:  # noqa: BLE001 - a result without an id yet
            return None
    return getattr(result, "_job_id", None)


def announce_job(result, runner: str, watched: str | None) -> None:
    """Say which remote job this run is (on stderr, and in the watched folder's run.meta)."""
    job_id = None if is_local(runner) else remote_job_id(result)
    if not job_id:
        return
    print(f"thresher run: submitted job {job_id} to {runner}", file=sys.stderr, flush=True)
    if watched:
        write_run_meta(watched, {"remote_job_id": job_id, "runner": runner})


@contextlib.contextmanager
def local_engine(runner: str, workers: int, verbose: bool):
    """`--runner spark|flink`: Beam's job server for that engine on its embedded master, and a
    worker pool of this interpreter, for the length of the run (pipeline/engines/jobserver.py); no flags
    for other runners."""
    from thresher.pipeline.engines.jobserver import ENGINES, engine

    if runner not in ENGINES:
        yield []
        return
    log = (lambda msg: print(msg, file=sys.stderr)) if verbose else (lambda msg: None)
    with engine(runner, workers, log=log) as flags:
        yield flags


def run(cfg: Config, beam_flags: list[str] | None = None, show_progress: bool = False,
        overwrite: bool = False, quiet: bool = True) -> RunResult:
    """Everything `thresher run` does after parsing its arguments. A library call: it leaves the
    calling process's settings alone (the command tunes the heap, pipeline/graph/heap.py).

    The output folder must be new or empty, or hold a run of this same config (a rerun after a
    crash); another run or other files are replaced only with `overwrite`. `quiet` False: say on
    stderr where a Spark or Flink job server was started."""
    beam_flags = list(beam_flags or [])
    stages: list[Stage] = enabled_stages(cfg)
    cfg = copy.deepcopy(cfg)
    # config.yaml reruns the job from any folder: its local paths are absolute
    cfg.input = [p if "://" in p else os.path.abspath(p) for p in cfg.input or [embedded_sample()]]
    if cfg.input_root and "://" not in cfg.input_root:
        cfg.input_root = os.path.abspath(cfg.input_root)
    for section in (cfg.stages.dedup_exact, cfg.stages.dedup_minhash):
        section.against = [p if "://" in p else os.path.abspath(p) for p in section.against]
    against = cfg.stages.dedup_exact.against + cfg.stages.dedup_minhash.against
    check_filesystems([*cfg.input, cfg.output, *against])
    if is_local(cfg.runner.name):
        cfg.runner.worker_memory_mb()  # a budget too small for the workers: say so before reading
    files, skipped = resolve_inputs(cfg.input, cfg.input_root)
    runner, options = make_runner_and_options(cfg.runner.name, cfg.runner.workers, beam_flags)

    if is_dry_run(options):
        return _dry_run(cfg, stages, files, runner, options)

    output = cfg.output.rstrip("/") or "/"
    if "://" not in output:
        output = os.path.abspath(output)
        os.makedirs(output, exist_ok=True)
    cfg.output = output
    if output in (p.rstrip("/") for p in against):
        raise ConfigError(f"dedup against {output}: that is this run's output, which the run replaces")
    rundir.check_replaceable(output, cfg.to_yaml(), overwrite)
    resources = resolve_resources(cfg, stages)
    folders = output_folders(stages)
    resumable = cfg.runner.resume and resume.supported(cfg, stages)
    staging = rundir.prepare(output, folders, keep=RESUME if resumable else None)
    resume_plan = None
    if resumable:  # the input ranges a crashed run of this config finished are not read again
        resume_plan = resume.plan(staging, resume.config_digest(cfg, stages), files,
                                  cfg.stages.ingest.split_bytes)
    resources = stage_resources(resources, staging)
    # THRESHER_PROGRESS_DIR: a folder the caller watches (`thresher serve` does); it is left in place
    watched = os.environ.get(PROGRESS_ENV) or None
    input_bytes, stage_names = sum(f.size for f in files), [s.name for s in stages]
    progress_dir = None
    if is_local(cfg.runner.name):
        progress_dir = watched or tempfile.mkdtemp(prefix="thresher-progress-")
        ProgressWriter.release(progress_dir)  # an earlier run in this process starts no totals of this one
        if watched:
            write_run_meta(watched, {"input_bytes": input_bytes, "stages": stage_names})
    ctx = PipelineContext(cfg, staging, progress_dir, resources, cfg.runner.spill_files(), input_bytes, resume_plan)

    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.perf_counter()
    try:
        with local_engine(cfg.runner.name, cfg.runner.workers, not quiet) as engine_flags:
            if engine_flags:  # spark / flink: a job server and a worker pool started for this run
                runner, options = make_runner_and_options("portable", 1, beam_flags + engine_flags)
            pipeline = beam.Pipeline(runner=runner, options=options)
            _ = pipeline | "Curate" >> Curate(ctx, [(f.path, f.source, f.size) for f in files], stages)
            # The line runs from submission on: the local Python runner does the whole job inside
            # pipeline.run(), the job-server runners (Spark, Flink) in wait_until_finish().
            display = (ProgressDisplay(progress_dir, input_bytes, stage_names) if show_progress and progress_dir
                       else contextlib.nullcontext())
            with display:
                result = pipeline.run()
                announce_job(result, cfg.runner.name, watched)
                result.wait_until_finish()
    except BaseException as e:  # the job failed or was interrupted: the previous output was never touched
        try:
            # no half-written staging folder stays behind, but for the finished input ranges a rerun reuses
            rundir.finish(staging, keep=RESUME if resumable else None)
        except Exception:  # workers still writing into it: the next run clears it
            pass
        if "Unable to fetch remote job server jar" in str(e):  # Beam's SparkRunner / FlinkRunner
            engine = "flink" if "flink" in str(e) else "spark"
            raise ConfigError(f"{cfg.runner.name} could not download Beam's shaded job-server jar: `--runner {engine}` "
                              f"runs Beam's {engine} job server built from Maven Central's modules instead "
                              f"(`thresher jobserver {engine}` starts one to submit to)") from e
        raise
    finally:
        if progress_dir and progress_dir != watched:
            shutil.rmtree(progress_dir, ignore_errors=True)
    seconds = time.perf_counter() - t0

    stats = json.loads(rundir.read_bytes(rundir.join(staging, "stats.json")))
    stats["run"] = {
        "started": started.isoformat(timespec="seconds"),
        "wall_seconds": round(seconds, 3),
        "runner": cfg.runner.name,
        "workers": cfg.runner.workers,
        "stages": [s.name for s in stages],
        "inputs": [f.path for f in files],
        "input_root": cfg.input_root or input_root([f.path for f in files]),
        "skipped_inputs": skipped,
    }
    if resume_plan is not None and resume_plan.reused:
        stats["run"]["resumed"] = {"ranges": len(resume_plan.reused), "bytes": resume_plan.reused_bytes,
                                   "documents": int(stats.get("counts", {}).get("resume|documents", 0))}
    problems = accounting_problems(stats)
    for s in stages:
        if s.finish is not None:
            problems += s.finish(stats, getattr(cfg.stages, s.name))
    stats["accounting_ok"] = not problems
    duplicates = duplicate_ids_line(stats)
    if duplicates and cfg.write.duplicate_ids == "error" and not problems:
        rundir.atomic_write(rundir.join(staging, "stats.json"), json.dumps(stats, indent=2).encode())
        raise AccountingError(f"{duplicates}; write.duplicate_ids is error: nothing was published (this run's "
                              f"files are in {staging})")
    if problems:
        # Nothing is published from a failed run: the previous output stays as it was, and this
        # run's files stay in the staging folder to look at.
        stats["accounting_problems"] = problems
        rundir.atomic_write(rundir.join(staging, "stats.json"), json.dumps(stats, indent=2).encode())
        raise AccountingError(f"accounting identity broken: {'; '.join(problems)} (nothing was published; "
                              f"this run's files are in {staging})")
    write_index_manifest(staging, cfg, stages, stats)
    rundir.publish(output, staging, folders)
    rundir.atomic_write(rundir.join(output, "config.yaml"), cfg.to_yaml().encode())
    rundir.atomic_write(rundir.join(output, card.FILENAME), card.dataset_card(stats, folders).encode())
    health = health_problems(stats, cfg.max_error_fraction)
    if health:
        stats["health_problems"] = health
    rundir.atomic_write(rundir.join(output, "stats.json"), json.dumps(stats, indent=2).encode())
    rundir.finish(staging)
    return RunResult(output, stats, seconds, problems=health, warnings=[duplicates] if duplicates else [])

