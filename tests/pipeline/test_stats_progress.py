import io
import os
import re

import pytest

from thresher.pipeline.config import Config
from thresher.pipeline.engines.run import run
from thresher.pipeline.progress import ProgressDisplay, ProgressWriter, read_totals
from thresher.pipeline.stats import accounting_problems, assemble


def counts():
    return {
        ("ingest", "in"): 10, ("ingest", "kept"): 6, ("ingest", "dropped", "http_status"): 3,
        ("ingest", "errored", "garbage"): 1, ("extract", "in"): 6, ("extract", "kept"): 5,
        ("extract", "dropped", "empty_text"): 1, ("output", "documents"): 5, ("input", "files"): 2,
    }


def test_assemble_funnel():
    stats = assemble(counts(), ["ingest", "extract"])
    assert stats["totals"] == {"read": 10, "kept": 5, "dropped": 4, "errored": 1,
                               "by_reason": {"ingest.http_status": 3, "extract.empty_text": 1, "ingest.garbage": 1}}
    assert stats["stages"]["ingest"]["errored"] == {"garbage": 1}
    assert accounting_problems(stats) == []


def test_every_broken_identity_is_named():
    c = counts()
    c[("ingest", "in")] = 11  # a record that vanished
    c[("output", "documents")] = 4  # a row that was not written
    c[("extract", "in")] = 7
    problems = accounting_problems(assemble(c, ["ingest", "extract"]))
    assert any(p.startswith("stage ingest: in 11") for p in problems)
    assert any("stage extract: in 7 != kept 6 of stage ingest" in p for p in problems)
    assert any("rows written to documents/ 4" in p for p in problems)


def test_progress_files_are_summed(tmp_path):
    a, b = ProgressWriter(str(tmp_path), interval=0), ProgressWriter(str(tmp_path), interval=0)
    a.add("read_bytes", 1_000_000)
    b.add("read_bytes", 500_000)
    b.add("stage:extract", 7)
    assert read_totals(str(tmp_path)) == {"read_bytes": 1_500_000, "stage:extract": 7}
    line = ProgressDisplay(str(tmp_path), 3_000_000, ["extract"], stream=io.StringIO()).line()
    assert "read 1.5/3.0 MB (50%)" in line and "extract 7" in line


def test_the_stages_of_a_worker_share_one_progress_file(tmp_path):
    """One file per process, not per DoFn instance; adds from several threads all count."""
    from concurrent.futures import ThreadPoolExecutor

    folder = str(tmp_path)
    writer = ProgressWriter.shared(folder)
    assert ProgressWriter.shared(folder) is writer
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: ProgressWriter.shared(folder).add(f"stage:s{i % 3}"), range(3000)))
    writer.flush()
    assert len(os.listdir(folder)) == 1
    assert read_totals(folder) == {"stage:s0": 1000, "stage:s1": 1000, "stage:s2": 1000}
    ProgressWriter.release(folder)  # a new run in this folder starts from zero
    assert ProgressWriter.shared(folder) is not writer and not ProgressWriter.shared(folder).totals


def test_progress_without_folder_is_a_no_op():
    w = ProgressWriter(None)
    w.add("read_bytes", 5)
    w.flush()
    assert not w.totals


def test_corpus_stages_report_progress_too(tmp_path):
    """The progress line counts documents into every stage, the dedup stages' included (they count
    what comes in per group, not per document outcome)."""
    from thresher.pipeline.graph.dedup_shuffle import Signatures
    from thresher.transforms.dedup import BAND_KEYS, SIGNATURE, TEXT_LENGTH

    fn = Signatures("dedup_minhash", progress_dir=str(tmp_path))
    fn.setup()
    fn.start_bundle()
    for i in range(3):
        list(fn.process({"id": f"d{i}", SIGNATURE: b"\0" * 4, TEXT_LENGTH: 10, BAND_KEYS: b"\0" * 8}))
    list(fn.finish_bundle())
    assert read_totals(str(tmp_path))["stage:dedup_minhash"] == 3


@pytest.mark.slow
def test_a_local_run_shows_its_progress_while_it_runs(tmp_path, capsys, monkeypatch):
    """The local runner does the whole job inside pipeline.run(): the line must already run then
    (it once started only after, when there was nothing left to show)."""
    monkeypatch.setattr(ProgressDisplay, "LOG_PERIOD", 0.2)  # stderr is not a terminal here
    cfg = Config()
    cfg.output = str(tmp_path / "out")
    result = run(cfg, show_progress=True)
    lines = [line for line in capsys.readouterr().err.splitlines() if " records" in line]
    assert lines, "no progress line while the job ran"
    counts = [int(m.group(1).replace(",", "")) for m in map(re.compile(r"\| ([\d,]+) records").search, lines) if m]
    assert counts and max(counts) > 0 and counts == sorted(counts)  # totals grow while it runs
    assert max(counts) <= result.stats["totals"]["read"]


def test_on_a_terminal_the_line_fits_its_width(tmp_path, monkeypatch):
    """Rewritten in place with a carriage return: a line wider than the terminal would wrap and
    leave its first rows behind at every update."""
    import time

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    writer = ProgressWriter(str(tmp_path), interval=0)
    writer.add("read_bytes", 1_000_000)
    stages = [f"stage_with_a_long_name_{i}" for i in range(8)]
    for name in stages:
        writer.add(f"stage:{name}", 12345)
    monkeypatch.setenv("COLUMNS", "60")
    term = Terminal()
    display = ProgressDisplay(str(tmp_path), 3_000_000, stages, stream=term, period=0.01)
    assert len(display.line()) > 60  # (the whole line is wider than this terminal)
    with display:
        time.sleep(0.1)
    updates = [u for u in term.getvalue().split("\r") if u and u != "\x1b[K"]
    assert updates and all(u.endswith("\x1b[K") and len(u) - 3 <= 59 for u in updates)
    assert all("read 1.0/3.0 MB (33%)" in u for u in updates)  # the start of the line is kept
