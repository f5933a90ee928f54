"""Kill a local multi-process run with SIGKILL at several points; the same command then finishes
the job with output identical to an uninterrupted run, and no reader ever saw a partial file."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from thresher.pipeline.graph.resume import read_checkpoint

pytestmark = pytest.mark.slow
DATA = ("documents", "rejected", "dedup", "shards")


def command(out: Path) -> list[str]:
    return [sys.executable, "-m", "thresher.pipeline", "run", "--output", str(out), "--workers", "2", "--no-progress", "-q"]


def digest(out: Path) -> dict:
    files = {}
    for sub in DATA:
        for p in sorted((out / sub).rglob("*")):
            if p.is_file():
                files[str(p.relative_to(out))] = hashlib.sha256(p.read_bytes()).hexdigest()
    stats = json.loads((out / "stats.json").read_text())
    return {"files": files, "totals": stats["totals"], "output": stats["output"]}


def visible_files(out: Path) -> list[str]:
    """What a reader of the run directory sees: everything outside the hidden staging folder."""
    return sorted(str(p.relative_to(out)) for p in out.rglob("*")
                  if p.is_file() and ".staging" not in p.relative_to(out).parts)


def kill_after(out: Path, seconds: float) -> None:
    proc = subprocess.Popen(command(out), start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(seconds)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its worker processes, no clean-up
    proc.wait()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    subprocess.run(command(out), check=True, timeout=600)
    return digest(out)


@pytest.mark.parametrize("seconds", [1.5, 4.0, 8.0])
def test_a_killed_run_leaves_nothing_visible_and_the_rerun_completes_identically(reference, tmp_path, seconds):
    out = tmp_path / "run"
    kill_after(out, seconds)
    if (out / "stats.json").exists():
        pytest.skip(f"the run finished within {seconds} s on this machine: nothing was killed")
    assert visible_files(out) == []  # no partial documents/, shards/ or stats.json
    subprocess.run(command(out), check=True, timeout=600)
    assert digest(out) == reference
    assert not (out / ".staging").exists()


def test_a_killed_rerun_keeps_the_previous_complete_output(reference, tmp_path):
    out = tmp_path / "run"
    subprocess.run(command(out), check=True, timeout=600)
    before = digest(out)
    kill_after(out, 4.0)
    assert digest(out) == before == reference  # the old run stays whole until the new one publishes
    subprocess.run(command(out), check=True, timeout=600)
    assert digest(out) == reference


# Reruns that reuse finished work (pipeline/graph/resume.py): small ranges, so a killed run has
# finished some and not others; the rerun reads only the others and publishes the same bytes.
SMALL_RANGES = "stages:\n  ingest:\n    split_bytes: 65536\nrunner:\n  workers: 2\n"


def jsonl_inputs(folder: Path) -> Path:
    """Four JSONL files of documents (Python's own docstrings), some repeated, some lines broken."""
    from tests.reference_texts import stdlib_docs

    docs = stdlib_docs()
    folder.mkdir()
    for k in range(4):
        with open(folder / f"part-{k}.jsonl", "w") as fh:
            for i, text in enumerate(docs):
                if i % 4 == k or i % 9 == 0:  # every ninth document in every file: exact duplicates
                    fh.write(json.dumps({"text": text, "url": f"https://docs.example/{i}"}) + "\n")
                if i % 40 == k:
                    fh.write("{not json\n")
    return folder


def checkpoint_files(out: Path) -> list[Path]:
    """The finished ranges' checkpoints (a `.tmp-` one is still being written)."""
    return [p for p in (out / ".staging" / "resume").glob("*/ranges/*.range") if not p.name.startswith(".")]


def checkpoints(out: Path) -> int:
    return len(checkpoint_files(out))


def _wait_for_group(pgid: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError("a process of the stopped run is still alive")


def stop_when(cmd: list[str], out: Path, ranges: int, sig: int) -> bool:
    """Runs `cmd`; once `ranges` checkpoints exist, sends `sig` (SIGKILL: to every process of the
    run, a crash; SIGINT: to the driver, Ctrl-C). False if the run ended first."""
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if checkpoints(out) >= ranges:
            if sig == signal.SIGKILL:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                os.kill(proc.pid, sig)
            proc.wait(timeout=120)
            _wait_for_group(proc.pid)  # no worker of the stopped run writes a checkpoint after this
            return True
        time.sleep(0.02)
    proc.wait(timeout=120)
    return False


@pytest.mark.parametrize("inputs,sig", [("warc", signal.SIGKILL), ("jsonl", signal.SIGKILL), ("warc", signal.SIGINT)],
                         ids=["warc-ranges-killed", "jsonl-chunks-killed", "warc-ranges-ctrl-c"])
def test_a_rerun_reads_only_the_ranges_the_stopped_run_had_not_finished(tmp_path, inputs, sig):
    config = tmp_path / "small-ranges.yaml"
    extra = [str(config)]
    if inputs == "jsonl":
        extra += ["--input", str(jsonl_inputs(tmp_path / "jsonl"))]
    config.write_text(SMALL_RANGES)
    ref = tmp_path / "ref"
    subprocess.run(command(ref) + extra, check=True, timeout=600)
    reference = digest(ref)
    out = tmp_path / "run"
    assert stop_when(command(out) + extra, out, 4, sig), "the run finished before 4 ranges were checkpointed"
    assert visible_files(out) == []
    finished = checkpoint_files(out)  # each written whole (renamed into place): every one is reused
    parked_documents = sum(read_checkpoint(str(p), header_only=True)["documents"] for p in finished)
    subprocess.run(command(out) + extra, check=True, timeout=600)
    assert digest(out) == reference  # documents/, rejected/, dedup/, shards/ byte for byte; the funnel
    stats = json.loads((out / "stats.json").read_text())
    resumed = stats["run"]["resumed"]
    assert resumed["ranges"] == len(finished) >= 4
    assert stats["counts"]["resume|ranges"] == resumed["ranges"]
    assert resumed["documents"] == parked_documents
    assert not (out / ".staging").exists()
    assert "resumed" not in json.loads((ref / "stats.json").read_text())["run"]
