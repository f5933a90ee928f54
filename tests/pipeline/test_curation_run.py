"""The curation stages in a real run of the default recipe on the embedded sample."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from thresher.pipeline.cli import main
from thresher.pipeline.config import Config
from thresher.pipeline.engines.run import run
from tests.stages import CURATION_FILTERS
from thresher.pipeline.stats import accounting_problems

pytestmark = pytest.mark.slow
QUALITY = ("gopher_repetition", "gopher_quality", "c4", "fineweb")


def run_sample(out: Path, **sections) -> dict:
    cfg = Config()
    cfg.output = str(out)
    cfg.stages.tokenize.enabled = False
    for dotted, value in sections.items():
        stage, key = dotted.split("__")
        setattr(getattr(cfg.stages, stage), key, value)
    return run(cfg).stats


def table(folder: Path):
    return pq.ParquetDataset(str(folder)).read()


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("curate") / "run"
    return out, run_sample(out)


def test_every_curation_stage_runs_and_accounts(default_run):
    out, stats = default_run
    assert accounting_problems(stats) == []
    for name in CURATION_FILTERS:
        assert name in stats["stages"], name
    assert sum(sum(stats["stages"][s]["dropped"].values()) for s in QUALITY) > 0
    langs = table(out / "documents").column("lang").to_pylist()
    assert len(set(langs)) >= 8 and None not in langs  # a multilingual sample
    assert stats["stages"]["langid"]["counters"]["second_opinion"] > 0


def test_rejected_rows_carry_the_signals_computed_before_the_drop(default_run):
    out, _ = default_run
    rows = [r for r in table(out / "rejected").to_pylist() if r["stage"] == "gopher_quality"]
    assert rows
    for r in rows:
        s = json.loads(r["signals"])
        assert s["lang"] and 0 <= s["lang_score"] <= 1  # from langid, before the drop
        assert "gopher_repetition_dup_line_frac" in s  # from the filter before
        assert "gopher_quality_words" in s  # and its own
        assert r["reason"].startswith("gopher_")


def test_annotate_mode_records_every_signal_and_drops_nothing(default_run, tmp_path):
    _, dropping = default_run
    off = {f"{s}__enabled": False for s in ("dedup_exact", "dedup_minhash")}
    base = run_sample(tmp_path / "base", **off)
    annotated = run_sample(tmp_path / "ann", **off, **{f"{s}__annotate": True for s in QUALITY})
    assert accounting_problems(annotated) == []
    for s in QUALITY:
        assert annotated["stages"][s]["dropped"] == {}
    docs = table(tmp_path / "ann" / "documents")
    for s in QUALITY:
        assert f"{s}_reason" in docs.column_names
    assert "gopher_quality_mean_word_length" in docs.column_names
    # the first quality filter sees the same documents either way: its would-be drops are the drops
    reasons = [r for r in docs.column("gopher_repetition_reason").to_pylist() if r]
    assert len(reasons) == sum(base["stages"]["gopher_repetition"]["dropped"].values())
    counters = annotated["stages"]["gopher_repetition"]["counters"]
    assert sum(counters.values()) == len(reasons)
    # and annotated C4 keeps the text whole
    assert annotated["stages"]["c4"].get("counters", {}).get("texts_rewritten", 0) == 0
    # the console's funnel shows the would-be drops (it said "dropped 0" and nothing else)
    from thresher.pipeline.tools.inspection import funnel_lines

    lines = funnel_lines(annotated)
    at = lines.index("  would be dropped (annotate mode), by reason:")
    shown = {line.split()[0]: int(line.split()[1].replace(",", "")) for line in lines[at + 1:] if "more in" not in line}
    assert any(k.startswith("gopher_repetition.") for k in shown)
    assert all(annotated["stages"][k.split(".")[0]]["counters"][f"would_drop:{k.split('.', 1)[1]}"] == n
               for k, n in shown.items())


def test_documents_can_be_partitioned_by_language(default_run, tmp_path):
    import duckdb
    import polars as pl

    from thresher.pipeline.tools.inspection import build_report

    stats = run_sample(tmp_path / "p", langid__partition=True)
    docs = tmp_path / "p" / "documents"
    folders = sorted(p.name for p in docs.iterdir())
    assert len(folders) >= 8 and all(f.startswith("lang=") for f in folders)
    # Hive layout, as every reader expects it; the files keep `lang` too (dictionary-encoded, no clash)
    read = pq.read_table(docs)
    assert read.num_rows == stats["totals"]["kept"] == stats["output"]["documents"]
    from collections import Counter

    by_lang = Counter(str(x) for x in read.column("lang").to_pylist())
    unpartitioned = Counter(table(default_run[0] / "documents").column("lang").to_pylist())
    assert by_lang == unpartitioned  # the same documents, filed by language
    assert pl.read_parquet(str(docs / "**" / "*.parquet"), hive_partitioning=True).height == read.num_rows
    n = duckdb.sql(f"select count(*) from read_parquet('{docs}/*/*.parquet', hive_partitioning=true)").fetchall()[0][0]
    assert n == read.num_rows
    languages = build_report(str(tmp_path / "p"))["documents"]["languages"]  # inspect reads the folders
    assert sum(languages.values()) == read.num_rows
    assert {k: v for k, v in languages.items() if k != "(other)"}.items() <= by_lang.items()


def test_keep_only_some_languages(tmp_path):
    stats = run_sample(tmp_path / "k", langid__keep=["de", "fr"])
    langs = set(table(tmp_path / "k" / "documents").column("lang").to_pylist())
    assert langs <= {"de", "fr"} and langs
    assert stats["stages"]["langid"]["dropped"]["language_not_kept"] > 100


def test_thresher_sample_shows_victims_and_kept_documents(default_run, capsys):
    out, stats = default_run
    reason = next(r for r in stats["totals"]["by_reason"] if r.startswith("gopher_quality."))
    assert main(["sample", str(out), "--reason", reason, "-n", "2"]) == 0
    shown = capsys.readouterr().out
    assert shown.count("── ") == 2 and reason in shown and "lang=" in shown
    assert main(["sample", str(out), "--lang", "de", "-n", "3"]) == 0
    shown = capsys.readouterr().out
    assert shown.count("lang=de") == 3
    assert main(["sample", str(out), "--reason", "no_such_reason"]) == 2
    assert "reasons:" in capsys.readouterr().err
    # a language code is checked, not searched for in vain (issue 39)
    assert main(["sample", str(out), "--lang", "xx"]) == 2
    assert "--lang xx: not a language code lid.176 knows" in capsys.readouterr().err
    assert main(["sample", str(out), "--lang", "no"]) == 2
    assert "--lang no: written nb here" in capsys.readouterr().err
