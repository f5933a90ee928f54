"""The torture corpus (tests/torture.py) through a real run: every case ends as kept documents or
counted drops and errors with a reason, the rest of each file is still read, the job finishes."""

import os
import time
import uuid
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from thresher.pipeline.config import Config
from thresher.pipeline.engines.run import run
from tests.stages import CURATION_FILTERS
from thresher.pipeline.stats import accounting_problems
from tests.torture import make_corpus

pytestmark = pytest.mark.slow

MARK = "THRESHER_TEST_RUN_MARK"


@pytest.fixture(scope="module")
def torture(tmp_path_factory):
    root = tmp_path_factory.mktemp("torture")
    cases = make_corpus(root / "in")
    cfg = Config()
    cfg.input = [str(root / "in")]
    cfg.output = str(root / "out")
    cfg.runner.workers = 2
    cfg.stages.extract.timeout_s = 2.0  # the nested <div>s page needs minutes: killed at the limit
    # short generated pages are not what the quality filters are for; exact dedup stays on (the
    # duplicate-id case repeats a page)
    for name in (*CURATION_FILTERS, "dedup_minhash"):
        getattr(cfg.stages, name).enabled = False
    # a mark every process of this run inherits (workers, their extraction children): none may outlive it
    os.environ[MARK] = mark = uuid.uuid4().hex
    try:
        stats = run(cfg).stats
    finally:
        del os.environ[MARK]
    stats["_mark"] = mark
    out = root / "out"
    docs = pq.read_table(out / "documents").to_pylist()
    rejected = pq.read_table(out / "rejected").to_pylist()
    return cases, stats, docs, rejected


def test_every_case_ends_as_documents_drops_or_errors(torture):
    cases, stats, docs, rejected = torture
    assert accounting_problems(stats) == []
    kept = Counter(d["source"] for d in docs)
    outcomes: dict[str, Counter] = {c.file: Counter() for c in cases}
    for r in rejected:
        outcomes[r["source"]][(r["stage"], r["reason"], r["errored"])] += 1
    for case in cases:
        want = Counter({(s, r, False): n for (s, r), n in case.dropped.items()})
        want.update({(s, r, True): n for (s, r), n in case.errored.items()})
        assert (case.file, kept[case.file], outcomes[case.file]) == (case.file, case.kept, want), case.what
    t = stats["totals"]
    assert t["read"] == t["kept"] + t["dropped"] + t["errored"] == len(docs) + len(rejected)
    assert stats["input"]["files"] == len(cases)


def test_unreadable_spans_are_dead_letters_with_file_offset_and_error(torture):
    cases, _, _, rejected = torture
    errors = [r for r in rejected if r["errored"]]
    assert len(errors) == sum(n for c in cases for n in c.errored.values()) > 10
    for r in errors:
        assert r["source"] and r["offset"] is not None and r["detail"], r
    garbage = next(r for r in errors if r["reason"] == "garbage")
    assert garbage["offset"] > 0 and "840 bytes skipped" in garbage["detail"]


def test_lying_and_mixed_charsets_decode_to_the_right_text(torture):
    _, _, docs, _ = torture
    text = {d["url"]: d["text"] for d in docs}
    assert "Комитет собрался во вторник" in text["http://example.com/cp1251.html"]
    assert "Grüße aus Köln, schöne Straße" in text["http://example.com/latin1.html"]
    mixed = text["http://example.com/mixed.html"]
    assert "Grüße aus Köln" in mixed and "Straße in München" in mixed
    assert "\x00" not in text["http://example.com/nul.html"]


def test_the_huge_page_is_dropped_unread_and_the_next_page_kept(torture):
    _, _, docs, rejected = torture
    huge = next(r for r in rejected if r["source"] == "huge-page.warc.gz")
    assert huge["reason"] == "oversize" and "max_record_bytes" in huge["detail"]
    assert not huge["text"]  # never loaded
    assert any(d["source"] == "huge-page.warc.gz" and "After the huge page" in d["text"] for d in docs)


def _marked(mark: str) -> list[str]:
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if f"{MARK}={mark}".encode() in (proc / "environ").read_bytes().split(b"\0"):
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found.append(f"{proc.name}: {cmdline}")
        except OSError:  # gone meanwhile, or not ours to read
            pass
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc")
def test_no_worker_or_extraction_process_outlives_the_run(torture):
    # the workers end when their harness returns (pipeline/engines/worker.py): their extraction
    # children must end with them
    _, stats, _, _ = torture
    deadline = time.monotonic() + 10
    while (left := _marked(stats["_mark"])) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == []
