"""Dedup against earlier runs (issue 35): every run leaves dedup/index/, a later run reads it with
`against` (exact and MinHash), and dump by dump gives the kept documents of one run over all the dumps."""

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from thresher.pipeline.cli import main
from thresher.pipeline.config import Config, ConfigError
from thresher.pipeline.engines.run import run
from thresher.pipeline.tools.rehydration import dup_counts
from thresher.transforms.dedup import EXACT_KEY_KIND, exact_key
from tests.stages import CURATION_FILTERS

pytestmark = pytest.mark.slow

VOCAB = [f"word{i}" for i in range(2000)]


def text(seed: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(VOCAB) for _ in range(60)) + "."


def edited(t: str, *positions: int) -> str:
    """A near duplicate: one word changed at each position (5-gram Jaccard about 0.84 for one)."""
    words = t.split()
    for p in positions:
        words[p] = "changed"
    return " ".join(words)


def shouted(t: str) -> str:
    """The same text after normalisation (case and spacing differ)."""
    return "  " + t.upper().replace(" ", "   ")


@pytest.fixture(scope="module")
def dumps(tmp_path_factory):
    """Three dumps; ids order the dumps (a < b < c), so one run over all keeps, of each text, the
    copy of the earliest dump, as dump by dump does."""
    d = tmp_path_factory.mktemp("dumps")
    a = [{"id": f"a{i:02d}", "text": text(i)} for i in range(20)]
    a.append({"id": "a20", "text": shouted(a[3]["text"])})  # a duplicate inside dump a
    a.append({"id": "a21", "text": edited(a[9]["text"], 10)})  # a near duplicate inside dump a
    b = [{"id": f"b{i:02d}", "text": text(100 + i)} for i in range(15)]
    b += [{"id": "b15", "text": shouted(a[0]["text"])},  # copies of texts dump a kept
          {"id": "b16", "text": a[5]["text"]},
          {"id": "b17", "text": a[20]["text"]},  # a copy of the text a dropped (a03 kept it)
          {"id": "b18", "text": b[2]["text"]},  # a duplicate inside dump b
          {"id": "b19", "text": edited(a[8]["text"], 30)},  # a near duplicate of a document a kept
          {"id": "b20", "text": edited(b[5]["text"], 20)}]  # a near duplicate inside dump b
    c = [{"id": f"c{i:02d}", "text": text(200 + i)} for i in range(10)]
    c += [{"id": "c10", "text": a[7]["text"]}, {"id": "c11", "text": shouted(b[4]["text"])},
          {"id": "c12", "text": b[15]["text"]},  # the text of b15, which b dropped: a00 holds it
          {"id": "c13", "text": edited(b[6]["text"], 40)},  # near b06
          {"id": "c14", "text": edited(a[21]["text"], 45)}]  # near a21, which a dropped as near a09
    for name, docs in (("a", a), ("b", b), ("c", c)):
        (d / f"{name}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in docs))
    return d


def config(inputs: list[Path], out: Path, against=()) -> Config:
    cfg = Config()
    cfg.input = [str(p) for p in inputs]
    cfg.output = str(out)
    cfg.stages.tokenize.enabled = False
    for name in CURATION_FILTERS:
        getattr(cfg.stages, name).enabled = False
    cfg.stages.dedup_exact.against = [str(p) for p in against]
    cfg.stages.dedup_minhash.against = [str(p) for p in against]
    return cfg


def kept(run_dir: Path) -> set[tuple[str, str]]:
    return {(r["id"], r["text"]) for r in pq.read_table(run_dir / "documents", columns=["id", "text"]).to_pylist()}


def test_dump_by_dump_keeps_what_one_run_over_all_dumps_keeps(dumps, tmp_path):
    run(config([dumps / "a.jsonl"], tmp_path / "A"))
    b = run(config([dumps / "b.jsonl"], tmp_path / "B", against=[tmp_path / "A"])).stats
    c = run(config([dumps / "c.jsonl"], tmp_path / "C", against=[tmp_path / "A", tmp_path / "B"])).stats
    whole = run(config([dumps / f"{n}.jsonl" for n in "abc"], tmp_path / "all"))
    assert kept(tmp_path / "A") | kept(tmp_path / "B") | kept(tmp_path / "C") == kept(Path(whole.output))
    assert len(kept(Path(whole.output))) == 20 + 15 + 10
    # dup_count across the dumps: each run's own, plus the copies later runs found (dedup/earlier_copies/)
    # is what one run over all counts, document for document
    across = dup_counts([tmp_path / "A", tmp_path / "B", tmp_path / "C"])
    whole_counts = pq.read_table(Path(whole.output) / "documents", columns=["id", "dup_count"]).to_pylist()
    assert {doc_id: n for (_, doc_id), n in across.items()} == {r["id"]: r["dup_count"] for r in whole_counts}
    assert across[(str(tmp_path / "A"), "a00")] == 3 and across[(str(tmp_path / "A"), "a09")] == 3
    copies = pq.read_table(tmp_path / "C" / "dedup" / "earlier_copies").to_pylist()
    assert sorted((Path(r["run"]).name, r["id"], r["copies"]) for r in copies) == [
        ("A", "a00", 1), ("A", "a07", 1), ("A", "a21", 1), ("B", "b04", 1), ("B", "b06", 1)]

    ex, mh = b["stages"]["dedup_exact"], b["stages"]["dedup_minhash"]
    assert ex["dropped"] == {"earlier_duplicate": 3, "exact_duplicate": 1} and ex["in"] == 21 and ex["kept"] == 17
    assert mh["dropped"] == {"earlier_duplicate": 1, "near_duplicate": 1} and mh["kept"] == 15
    assert c["stages"]["dedup_exact"]["dropped"] == {"earlier_duplicate": 3}
    assert c["stages"]["dedup_minhash"]["dropped"] == {"earlier_duplicate": 2}
    why = {r["id"]: r for r in pq.read_table(tmp_path / "C" / "rejected").to_pylist()}
    assert why["c10"]["reason"] == "earlier_duplicate" and why["c10"]["stage"] == "dedup_exact"
    assert why["c10"]["detail"] == f"duplicate of a07 in {tmp_path / 'A'}"
    assert why["c11"]["detail"] == f"duplicate of b04 in {tmp_path / 'B'}"
    assert why["c12"]["detail"] == f"duplicate of a00 in {tmp_path / 'A'}"
    assert why["c13"]["stage"] == "dedup_minhash" and why["c13"]["reason"] == "earlier_duplicate"
    assert why["c13"]["detail"] == f"near duplicate of b06 in {tmp_path / 'B'}"
    # near a document run A dropped as a near duplicate: its index holds every document its MinHash saw
    assert why["c14"]["detail"] == f"near duplicate of a21 in {tmp_path / 'A'}"
    why_b = {r["id"]: r["detail"] for r in pq.read_table(tmp_path / "B" / "rejected").to_pylist()}
    assert why_b["b17"] == f"duplicate of a03 in {tmp_path / 'A'}"
    assert why_b["b18"] == "duplicate of b02"
    assert why_b["b19"] == f"near duplicate of a08 in {tmp_path / 'A'}"

    # each run's index holds its own documents: the exact keys and ids of those dedup_exact kept,
    # the MinHash band keys, signatures and shingles of those dedup_minhash saw
    manifest = json.loads((tmp_path / "C" / "dedup" / "index" / "manifest.json").read_text())
    assert manifest["exact"]["key"] == EXACT_KEY_KIND and manifest["exact"]["rows"] == 12
    rows = pq.read_table([tmp_path / "C" / "dedup" / "index" / f for f in manifest["exact"]["files"]]).to_pylist()
    near = {(d["id"], d["text"]) for d in map(json.loads, (dumps / "c.jsonl").read_text().splitlines())
            if d["id"] in ("c13", "c14")}
    assert {(r["id"], r["key"].hex()) for r in rows} == {(i, exact_key(t)) for i, t in kept(tmp_path / "C") | near}
    assert manifest["minhash"]["rows"] == 12 and manifest["minhash"]["settings"] == {"ngram": 5, "bands": 18,
                                                                                   "rows": 6, "seed": 1}
    assert (tmp_path / "A").exists() and kept(tmp_path / "A") == {(d["id"], d["text"]) for d in map(
        json.loads, (dumps / "a.jsonl").read_text().splitlines()) if d["id"] not in ("a20", "a21")}  # read, never changed


def test_against_is_refused_before_the_job_when_it_cannot_match(dumps, tmp_path, capsys):
    run(config([dumps / "a.jsonl"], tmp_path / "A"))
    base = ["run", "--input", str(dumps / "b.jsonl"), "-q", "--no-progress",
            "--skip", ",".join(CURATION_FILTERS + ("tokenize",))]

    def refused(*args) -> str:
        assert main([*base, *args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("thresher: error: dedup against "), err
        return err[0]

    assert "no exact index there" in refused("--output", str(tmp_path / "B"), "--dedup-against", str(tmp_path / "nothing"))
    assert "that is this run's output" in refused("--output", str(tmp_path / "A"), "--dedup-against", str(tmp_path / "A"))
    cased = tmp_path / "cased.yaml"
    cased.write_text("stages:\n  dedup_exact:\n    lowercase: false\n")
    line = refused(str(cased), "--output", str(tmp_path / "B"), "--dedup-against", str(tmp_path / "A"))
    assert "stages.dedup_exact.lowercase is true, this run's is false" in line
    shingles = tmp_path / "shingles.yaml"
    shingles.write_text("stages:\n  dedup_minhash:\n    ngram: 7\n")
    line = refused(str(shingles), "--output", str(tmp_path / "B"), "--dedup-against", str(tmp_path / "A"))
    assert "stages.dedup_minhash.ngram is 5, this run's is 7" in line
    assert not (tmp_path / "B").exists() or not any((tmp_path / "B").iterdir())


def test_a_recipes_against_is_relative_to_its_folder(dumps, tmp_path, monkeypatch):
    from thresher.pipeline.config import load

    run(config([dumps / "a.jsonl"], tmp_path / "runs" / "A"))
    recipe = tmp_path / "runs" / "next.yaml"
    recipe.write_text("stages:\n  dedup_exact:\n    against: [A]\n")
    monkeypatch.chdir(dumps)
    assert load(str(recipe)).stages.dedup_exact.against == [str(tmp_path / "runs" / "A")]
    with pytest.raises(ConfigError, match="no exact index"):
        run(config([dumps / "b.jsonl"], tmp_path / "B", against=["A"]))  # relative to here: none


@pytest.mark.skipif(shutil.which("java") is None or shutil.which("mvn") is None,
                    reason="the Spark job server needs java and mvn")
def test_against_on_spark_gives_the_local_runners_bytes(dumps, tmp_path):
    """The earlier run's index read by Spark's workers: the same files as the local runner writes."""
    run(config([dumps / "a.jsonl"], tmp_path / "A"))
    skip = ",".join(CURATION_FILTERS + ("tokenize",))
    outs = {}
    for runner in ("direct", "spark"):
        outs[runner] = tmp_path / runner
        proc = subprocess.run([sys.executable, "-m", "thresher.pipeline", "run", "-q", "--runner", runner, "--workers",
                               "2", "--input", str(dumps / "b.jsonl"), "--skip", skip, "--dedup-against",
                               str(tmp_path / "A"), "--output", str(outs[runner])],
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
    local, spark = ({str(p.relative_to(d)): p.read_bytes() for sub in ("documents", "rejected", "dedup")
                     for p in sorted((d / sub).rglob("*")) if p.is_file()} for d in outs.values())
    assert local == spark and "dedup/index/manifest.json" in local
    stats = json.loads((outs["spark"] / "stats.json").read_text())
    assert stats["stages"]["dedup_exact"]["dropped"] == {"earlier_duplicate": 3, "exact_duplicate": 1}
    assert stats["stages"]["dedup_minhash"]["dropped"] == {"earlier_duplicate": 1, "near_duplicate": 1}
