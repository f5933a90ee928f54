"""End-to-end: real Beam pipelines on Beam's Python runner, over the sample and broken inputs."""

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from thresher.pipeline.config import Config, from_dict
from thresher.pipeline.engines.run import run
from tests.pipeline.test_cli import decoy_packages
from tests.stages import CURATION_FILTERS
from thresher.pipeline.stats import accounting_problems
from tests.warcgen import gz, http_response, page, record

pytestmark = pytest.mark.slow


def run_to(tmp_path: Path, name: str, **overrides) -> tuple[Path, dict]:
    cfg = Config()
    cfg.output = str(tmp_path / name)
    for key, value in overrides.items():
        obj = cfg
        *parents, last = key.split(".")
        for p in parents:
            obj = getattr(obj, p)
        setattr(obj, last, value)
    result = run(cfg)
    return Path(result.output), result.stats


def folder_digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))
            if p.suffix in (".parquet", ".arrow", ".json")}


def rows(folder: Path) -> list[dict]:
    return pq.read_table(folder).to_pylist() if list(folder.glob("*.parquet")) else []


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    return run_to(tmp_path_factory.mktemp("sample"), "out")


def test_sample_run_directory_and_accounting(sample_run):
    out, stats = sample_run
    assert (out / "config.yaml").exists() and (out / "stats.json").exists()
    assert json.loads((out / "stats.json").read_text()) == stats
    assert accounting_problems(stats) == [] and stats["accounting_ok"]
    for name, s in stats["stages"].items():
        assert s["in"] == s["kept"] + sum(s["dropped"].values()) + sum(s["errored"].values()), name
    docs = rows(out / "documents")
    rejected = rows(out / "rejected")
    assert len(docs) == stats["totals"]["kept"] == stats["output"]["documents"]
    assert len(rejected) == stats["totals"]["dropped"] + stats["totals"]["errored"]
    assert stats["totals"]["read"] == len(docs) + len(rejected)
    # the sample has 420 responses with their requests and a warcinfo record
    assert stats["totals"]["read"] == 841
    assert stats["stages"]["ingest"]["dropped"]["not_response"] == 421
    assert stats["stages"]["ingest"]["dropped"]["http_status"] == 20
    assert {r["reason"] for r in rejected} >= {"not_response", "http_status", "content_type"}
    assert len({d["id"] for d in docs}) == len(docs)


def test_sample_documents_are_real_text_in_many_languages(sample_run):
    out, _ = sample_run
    docs = {d["url"]: d for d in rows(out / "documents")}
    euc_kr = [d for u, d in docs.items() if "/apache2-manual/ko/" in u and d["charset"] == "cp949"]
    assert euc_kr and all("모듈" in d["text"] or "아파치" in d["text"] for d in euc_kr)
    assert len({u.split("/")[4] for u in docs if "/debian-handbook/" in u}) >= 10  # language folders
    assert all("<html" not in d["text"].lower() for d in docs.values())


def test_two_runs_are_byte_identical(sample_run, tmp_path):
    first, _ = sample_run
    second, _ = run_to(tmp_path, "again")
    for sub in ("documents", "rejected"):
        assert folder_digest(first / sub) == folder_digest(second / sub)


def test_two_workers_give_the_same_bytes(tmp_path, monkeypatch):
    # one file per MB of input: several files per folder, so the assignment to files is tested too
    first, stats1 = run_to(tmp_path, "one", **{"write.shard_input_mb": 1})
    # the worker processes must import this Thresher, not a `pipeline` package in the current folder
    project = tmp_path / "project"
    project.mkdir()
    decoy_packages(project)
    monkeypatch.chdir(project)
    second, stats2 = run_to(tmp_path, "two", **{"runner.workers": 2, "stages.ingest.split_bytes": 256 * 1024,
                                                "write.shard_input_mb": 1})
    assert len(list((first / "documents").glob("*.parquet"))) == 3  # the sample is 2.8 MB
    for sub in ("documents", "rejected", "dedup", "shards"):
        assert folder_digest(first / sub) == folder_digest(second / sub)
        assert folder_digest(first / sub), sub
    assert stats1["totals"] == stats2["totals"]


def test_resolved_config_reruns_the_same_job(sample_run, tmp_path):
    first, _ = sample_run
    cfg = from_dict(yaml.safe_load((first / "config.yaml").read_text()))
    cfg.output = str(tmp_path / "rerun")
    out = Path(run(cfg).output)
    assert folder_digest(first / "documents") == folder_digest(out / "documents")


def test_skip_extract_keeps_decoded_html(tmp_path):
    off = {f"stages.{name}.enabled": False for name in ("extract", *CURATION_FILTERS)}
    out, stats = run_to(tmp_path, "raw", **off)
    assert list(stats["stages"]) == ["ingest", "dedup_exact", "dedup_minhash", "tokenize"]
    assert stats["totals"]["errored"] == 0
    docs = rows(out / "documents")
    assert any("<html" in d["text"].lower() for d in docs)


def test_rerun_into_the_same_folder_replaces_without_duplicates(tmp_path):
    out, stats = run_to(tmp_path, "same")
    (out / ".staging").mkdir()
    (out / ".staging" / "leftover-from-a-crash").write_text("x")
    out, again = run_to(tmp_path, "same")
    assert len(rows(out / "documents")) == again["totals"]["kept"] == stats["totals"]["kept"]
    assert not (out / ".staging").exists()


@pytest.fixture(scope="module")
def broken_inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("broken")
    good = [page(i) for i in range(6)]
    (d / "good.warc.gz").write_bytes(gz(*good))
    (d / "truncated.warc.gz").write_bytes(gz(*good[:3])[:-20])
    (d / "garbage.warc.gz").write_bytes(gz(good[0]) + b"\x00garbage\xff" * 50 + gz(good[1]))
    block = http_response(b"<html><body><p>The Content-Length of this record lies.</p></body></html>")
    (d / "liar.warc").write_bytes(good[2] + record(block, uri="http://example.com/liar", content_length=len(block) + 3) + good[3])
    (d / "empty.warc.gz").write_bytes(b"")
    (d / "binary.warc.gz").write_bytes(gz(record(http_response(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8),
                                                 uri="http://example.com/image.html")))
    bad_utf8 = "<html><body><p>Gr\u00fc\u00dfe aus K\u00f6ln, ".encode() + b"\xff\xfe\xfd" + b" und mehr Text.</p></body></html>"
    (d / "badutf8.warc.gz").write_bytes(gz(record(http_response(bad_utf8), uri="http://example.com/badutf8")))
    lines = [json.dumps({"id": "j1", "text": "A JSON document with text.", "url": "http://j/1", "topic": "x"}),
             "{broken json", json.dumps({"text": 3}), json.dumps({"id": "j2", "text": "Another one."})]
    (d / "docs.jsonl").write_text("\n".join(lines) + "\n")
    pq.write_table(pa.table({"text": ["Parquet text one.", "Parquet text two."], "id": ["p1", "p2"]}), d / "docs.parquet")
    return d


def test_broken_inputs_are_counted_not_fatal(broken_inputs, tmp_path):
    # the generated pages share their template: dedup would rightly merge them, so it is off here
    # and the short generated texts are not what the quality filters are for: they are off too
    off = {f"stages.{name}.enabled": False for name in ("dedup_exact", "dedup_minhash", *CURATION_FILTERS)}
    out, stats = run_to(tmp_path, "broken", input=[str(broken_inputs)], **off)
    assert accounting_problems(stats) == []
    ingest = stats["stages"]["ingest"]
    assert ingest["errored"] == {"bad_content_length": 1, "bad_json": 1, "bad_record": 1, "garbage": 1,
                                 "gzip_truncated": 1}
    assert ingest["dropped"] == {"binary_payload": 1}
    assert stats["input"]["files"] == 9
    docs = rows(out / "documents")
    urls = {d["url"] for d in docs}
    # good 6 + truncated 2 + garbage 2 + liar 2 + badutf8 1 = 13 pages, plus 2 JSONL and 2 Parquet docs
    assert len(docs) == 17
    assert "http://example.com/badutf8" in urls
    assert {d["id"] for d in docs} >= {"j1", "j2", "p1", "p2"}
    assert json.loads(next(d for d in docs if d["id"] == "j1")["metadata"]) == {"topic": "x"}
    rejected = rows(out / "rejected")
    errs = {r["reason"]: r for r in rejected if r["errored"]}
    assert errs["garbage"]["source"] == "garbage.warc.gz" and errs["garbage"]["offset"] > 0
    assert "bytes skipped" in errs["garbage"]["detail"]
