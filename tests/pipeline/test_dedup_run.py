"""Exact and near-duplicate removal through the whole pipeline, on generated documents with known truth."""

import hashlib
import json
import random
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from thresher.pipeline.config import Config
from thresher.pipeline.engines.run import run
from thresher.pipeline.stats import AccountingError
from tests.stages import CURATION_FILTERS

pytestmark = pytest.mark.slow

VOCAB = [f"word{i}" for i in range(3000)]


def text(seed: int, n: int = 300) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(VOCAB) for _ in range(n)) + "."


def edited(t: str, k: int, seed: int) -> str:
    rng = random.Random(seed)
    words = t.split()
    for i in rng.sample(range(len(words)), k):
        words[i] = "changed"
    return " ".join(words)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("dedup")
    docs = [{"id": f"base{i}", "text": text(i), "url": f"http://x/{i}"} for i in range(6)]
    docs += [
        {"id": "exact1", "text": docs[0]["text"].upper(), "url": "http://x/e1"},  # same after normalisation
        {"id": "exact2", "text": "  " + docs[0]["text"].replace(" ", "   "), "url": "http://x/e2"},
        {"id": "near1", "text": edited(docs[1]["text"], 3, 1), "url": "http://x/n1"},
        {"id": "near2", "text": edited(docs[1]["text"], 5, 2), "url": "http://x/n2"},
        {"id": "near3", "text": edited(docs[1]["text"], 4, 3) + " with a longer tail appended here", "url": "http://x/n3"},
        {"id": "far", "text": edited(docs[2]["text"], 120, 4), "url": "http://x/far"},  # Jaccard well below 0.8
    ]
    (d / "docs.jsonl").write_text("\n".join(json.dumps(x) for x in docs) + "\n")
    return d


def dedup_config(source: Path, out: Path) -> Config:
    """Dedup on synthetic text: tokenize and the curation filters are off ("word123" is no language)."""
    cfg = Config()
    cfg.input = [str(source)]
    cfg.output = str(out)
    cfg.stages.tokenize.enabled = False
    for name in CURATION_FILTERS:
        getattr(cfg.stages, name).enabled = False
    return cfg


def run_on(corpus: Path, out: Path, overwrite: bool = False, **minhash) -> tuple[Path, dict]:
    cfg = dedup_config(corpus / "docs.jsonl", out)
    for k, v in minhash.items():
        setattr(cfg.stages.dedup_minhash, k, v)
    res = run(cfg, overwrite=overwrite)
    return Path(res.output), res.stats


def test_exact_and_near_duplicates_are_removed_with_reasons(corpus, tmp_path):
    out, stats = run_on(corpus, tmp_path / "a")
    assert stats["stages"]["dedup_exact"]["dropped"] == {"exact_duplicate": 2}
    mh = stats["stages"]["dedup_minhash"]
    assert mh["dropped"] == {"near_duplicate": 3}
    assert mh["clusters"] == 1 and mh["cluster_sizes"] == {"4": 1} and mh["converged"]
    kept = {d["id"] for d in pq.read_table(out / "documents").to_pylist()}
    assert kept == {"base0", "base1", "base2", "base3", "base4", "base5", "far"}
    # what each kept document stands for: base0 its two exact copies, base1 its three near ones
    counts = {d["id"]: d["dup_count"] for d in pq.read_table(out / "documents").to_pylist()}
    assert counts == {"base0": 3, "base1": 4, "base2": 1, "base3": 1, "base4": 1, "base5": 1, "far": 1}
    rejected = {r["id"]: r for r in pq.read_table(out / "rejected").to_pylist()}
    assert rejected["exact1"]["reason"] == "exact_duplicate" and "base0" in rejected["exact1"]["detail"]
    for near in ("near1", "near2", "near3"):
        assert rejected[near]["reason"] == "near_duplicate" and rejected[near]["stage"] == "dedup_minhash"
        assert json.loads(rejected[near]["signals"])["near_duplicate_of"] == "base1"
    clusters = pq.read_table(out / "dedup" / "clusters.parquet").to_pylist()
    assert sorted((c["id"], c["cluster_id"]) for c in clusters) == [
        ("base1", "base1"), ("near1", "base1"), ("near2", "base1"), ("near3", "base1")]
    import datasets  # the run's dataset card lists the clusters once there are some

    assert datasets.load_dataset(str(out), "clusters", split="train").num_rows == 4
    assert datasets.load_dataset(str(out), split="train").num_rows == 7


def test_longest_representative(corpus, tmp_path):
    out, stats = run_on(corpus, tmp_path / "b", keep="longest")
    kept = {d["id"] for d in pq.read_table(out / "documents").to_pylist()}
    assert "near3" in kept and "base1" not in kept


def test_dedup_output_is_byte_identical_for_two_workers(corpus, tmp_path):
    one, _ = run_on(corpus, tmp_path / "one")
    cfg = dedup_config(corpus / "docs.jsonl", tmp_path / "two")
    cfg.runner.workers = 2
    two = Path(run(cfg).output)
    for sub in ("documents", "dedup", "rejected"):
        a = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (one / sub).rglob("*.parquet")}
        b = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (two / sub).rglob("*.parquet")}
        assert a == b and a, sub


def test_url_dedup_keeps_the_newest_capture(tmp_path):
    # ids in the opposite order of the dates: the date decides, not the id
    rows = [{"id": "a-old", "url": "http://same", "text": text(10), "date": "2020-01-01"},
            {"id": "b-new", "url": "http://same", "text": text(11), "date": "2024-01-01"},
            {"id": "c-older", "url": "http://same", "text": text(13), "date": "2019-06-01"},
            {"id": "other", "url": "http://other", "text": text(12), "date": "2021-01-01"}]
    (tmp_path / "u.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    cfg = dedup_config(tmp_path / "u.jsonl", tmp_path / "out")
    cfg.stages.dedup_exact.by_url = True
    stats = run(cfg).stats
    kept = {d["id"] for d in pq.read_table(tmp_path / "out" / "documents").to_pylist()}
    assert kept == {"b-new", "other"}
    assert stats["stages"]["dedup_exact"]["dropped"] == {"url_duplicate": 2}


def test_a_run_whose_components_did_not_converge_publishes_nothing(tmp_path):
    # a chain of edits whose ids are out of order: a path that one round of stars cannot contract
    chain = [text(40)]
    for i in range(7):
        chain.append(edited(chain[-1], 4, 100 + i))
    ids = ["c3", "c0", "c6", "c1", "c5", "c2", "c7", "c4"]
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in zip(ids, chain)))
    corpus = tmp_path
    out, _ = run_on(corpus, tmp_path / "out")
    before = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    with pytest.raises(AccountingError, match="still changed edges in the last of 1 rounds.*nothing was published"):
        run_on(corpus, tmp_path / "out", overwrite=True, rounds=1)
    after = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*"))
             if p.is_file() and ".staging" not in p.parts}
    assert after == before  # the previous good run is whole: documents, rejected, dedup, stats, config
    staged = json.loads((out / ".staging" / "stats.json").read_text())  # the failed run's, to look at
    assert not staged["accounting_ok"] and not staged["stages"]["dedup_minhash"]["converged"]


def test_spill_files_on_and_off_give_the_same_bytes(corpus, tmp_path):
    """runner.spill: documents through spill files (the local runner's default) or through the
    runner's shuffle (distributed runners' default): byte-identical output, tokens included."""
    outs = {}
    for mode, workers in (("on", 1), ("off", 1), ("off", 2)):
        cfg = dedup_config(corpus / "docs.jsonl", tmp_path / f"{mode}{workers}")
        cfg.stages.tokenize.enabled = True
        cfg.runner.spill, cfg.runner.workers = mode, workers
        outs[(mode, workers)] = Path(run(cfg).output)
    digests = {k: {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
                   for sub in ("documents", "rejected", "dedup", "shards") for p in sorted((out / sub).rglob("*"))
                   if p.is_file()}
               for k, out in outs.items()}
    assert len(digests[("on", 1)]) >= 5
    assert digests[("on", 1)] == digests[("off", 1)] == digests[("off", 2)]
    assert not (outs[("off", 1)] / ".staging").exists()
    rejected = pq.read_table(outs[("off", 2)] / "rejected").to_pylist()
    assert {r["reason"] for r in rejected} == {"exact_duplicate", "near_duplicate"}
    assert all(not k.startswith("_") for r in rejected for k in json.loads(r["signals"] or "{}"))


def spaced_edits(t: str, positions) -> str:
    words = t.split()
    for i in positions:
        words[i] = f"changed{i}"
    return " ".join(words)


@pytest.mark.parametrize("spill", ["on", "off"])
def test_pairs_near_the_threshold_are_decided_on_exact_shingle_sets(tmp_path, spill):
    """Two edits of one page, one just above the threshold (exact Jaccard 0.816) and one just below
    (0.789): their signatures cannot tell them apart reliably, the exact check does, whether the
    texts come back from spill files or travel with the references."""
    from thresher.transforms.dedup import exact_jaccard, shingle_hashes

    base = " ".join(f"w{i}" for i in range(300))  # every 5-gram distinct: each edit removes 5 shingles
    above = spaced_edits(base, range(10, 70, 10))  # 6 edits
    below = spaced_edits(base, range(105, 280, 25))  # 7 edits elsewhere
    j = {name: exact_jaccard(shingle_hashes(base), shingle_hashes(t)) for name, t in (("above", above), ("below", below))}
    assert 0.8 < j["above"] < 0.82 and 0.78 < j["below"] < 0.8
    rows = [{"id": "a", "text": base}, {"id": "b", "text": above}, {"id": "c", "text": below}]
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = dedup_config(tmp_path / "docs.jsonl", tmp_path / "out")
    cfg.runner.spill = spill
    stats = run(cfg).stats
    kept = {d["id"] for d in pq.read_table(tmp_path / "out" / "documents").to_pylist()}
    assert kept == {"a", "c"}
    mh = stats["stages"]["dedup_minhash"]
    assert mh["exact_checks"] >= 2 and mh["exact_linked"] == 1


def test_rehydration_writes_copies_by_cluster_size_and_inspect_shows_the_sizes(corpus, tmp_path):
    """FineWeb-2's rehydration: a kept document goes to shards/ as many times as its cluster's
    size bucket says; the accounting and `inspect --verify` count the copies."""
    from thresher.pipeline.tools.inspection import build_report, verify_run
    from thresher.transforms.shards import open_shard

    cfg = dedup_config(corpus / "docs.jsonl", tmp_path / "r")
    cfg.stages.tokenize.enabled = True
    cfg.stages.tokenize.rehydrate = {2: 2, 4: 3}  # base0 stands for 3 documents, base1 for 4
    res = run(cfg)
    out = Path(res.output)
    assert res.stats["stages"]["tokenize"]["counters"] == {"rehydrated_copies": 1 + 2}
    ids = sorted(i for f in sorted((out / "shards").glob("*.arrow")) for i in open_shard(str(f)).column("id").to_pylist())
    assert ids == sorted(["base0", "base0#2", "base1", "base1#2", "base1#3", "base2", "base3", "base4", "base5", "far"])
    assert verify_run(str(out)) == []
    assert build_report(str(out), details=False)["documents"]["dup_count"] == {"1": 5, "3-4": 2}
