"""Dedup benchmark on real documents (texts extracted from ../shared/data/crawl-sample.warc.gz).

1. Signature throughput per core, from text to a MinHash signature (18x6 = 108 values, the
   default, and 14x8 = 112, the previous one): ours (transforms/dedup.py) beside datasketch's fastest bulk path (``MinHash.bulk``, on the same
   shingles) and datatrove's ``MinhashDedupSignature`` (run in its own virtualenv, --datatrove-python).
2. Quality: pair precision / recall / F1 of the near-dedup clusters against exact Jaccard >= 0.8
   (word 5-gram shingles), on the crawl's documents and on a stress set of edited versions of its
   pages, for the previous and the current settings; the threshold curve; the probability-of-candidate
   curve of the bands x rows.
3. Scale: the dedup stages' time and peak memory at 1x, 2x and 4x input (documents replicated with
   light edits), each run in a fresh process.

    python benchmarks/dedup.py [--docs RUN_DIR] [--datatrove-python /path/to/venv/bin/python]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path


DEFAULT_CRAWL = Path(__file__).resolve().parents[2] / "shared" / "data" / "crawl-sample.warc.gz"

DATATROVE_SCRIPT = r"""
import json, sys, time
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
texts = [json.loads(l)["text"] for l in open(sys.argv[1], encoding="utf-8")]
s = MinhashDedupSignature(output_folder=sys.argv[2], config=MinhashConfig())  # 5-grams, 14 x 8, 64-bit
s.get_signature(s.get_shingles(texts[0]))  # load the word tokenizer outside the timing
t0 = time.perf_counter()
failed = 0
for t in texts:
    try:
        s.get_signature(s.get_shingles(t))
    except ValueError:  # datatrove cannot sign a document with no shingles (a few very short pages)
        failed += 1
print(json.dumps({"seconds": time.perf_counter() - t0, "failed": failed}))
"""


def curated(crawl: str, out: str) -> str:
    from thresher.pipeline.config import Config
    from thresher.pipeline.engines.run import run

    cfg = Config()
    cfg.input = [crawl]
    cfg.output = out
    for st in ("dedup_exact", "dedup_minhash", "tokenize"):
        getattr(cfg.stages, st).enabled = False
    run(cfg)
    return out


def load_docs(run_dir: str) -> list[dict]:
    import pyarrow.parquet as pq

    rows = []
    for f in sorted(Path(run_dir, "documents").glob("*.parquet")):
        rows += pq.read_table(f, columns=["id", "url", "text"]).to_pylist()
    return rows


def bench_signatures(texts: list[str], dt_python: str | None) -> list[tuple[str, float]]:
    from datasketch import MinHash

    from thresher.transforms.dedup import MinHasher, shingle_hashes, tokens

    out = []
    for perms, label in ((108, "18x6, the default"), (112, "14x8")):
        hasher = MinHasher(perms)
        t0 = time.perf_counter()
        for t in texts:
            hasher.signature(shingle_hashes(t, 5))
        out.append((f"thresher (numpy, 64-bit, {label})", time.perf_counter() - t0))

    t0 = time.perf_counter()
    shingle_sets = []
    for t in texts:
        toks = tokens(t)
        n = min(5, len(toks)) or 1
        shingle_sets.append({" ".join(toks[i:i + n]).encode() for i in range(max(1, len(toks) - n + 1))})
    MinHash.bulk(shingle_sets, num_perm=112)
    out.append(("datasketch MinHash.bulk (32-bit)", time.perf_counter() - t0))

    if dt_python:
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "texts.jsonl")
            with open(src, "w", encoding="utf-8") as fh:
                for t in texts:
                    fh.write(json.dumps({"text": t}) + "\n")
            script = os.path.join(tmp, "dt.py")
            Path(script).write_text(DATATROVE_SCRIPT)
            proc = subprocess.run([dt_python, script, src, os.path.join(tmp, "sig")], capture_output=True, text=True)
            if proc.returncode == 0:
                res = json.loads(proc.stdout.strip().splitlines()[-1])
                out.append((f"datatrove MinhashDedupSignature{'*' if res['failed'] else ''}", res["seconds"]))
                if res["failed"]:
                    print(f"* datatrove raised on {res['failed']} documents without shingles (timed all the same)")
            else:
                print("datatrove failed:", proc.stderr[-2000:])
    return out


def exact_jaccard_pairs(docs: list[dict], lowest: float = 0.5) -> dict[tuple[str, str], float]:
    """Exact Jaccard (word 5-gram shingle sets) of every pair at or above `lowest`: candidates from
    a loose LSH (40 bands x 2 rows catches pairs at 0.5 with probability 1 - 0.75^40 > 0.9999),
    then the exact sets. Pairs not returned are below `lowest`: different pages."""
    from thresher.transforms.dedup import MinHasher, band_keys, exact_jaccard, shingle_hashes

    sets = {d["id"]: shingle_hashes(d["text"]) for d in docs}
    hasher = MinHasher(80, seed=99)
    buckets = defaultdict(list)
    for d in docs:
        for key in band_keys(hasher.signature(sets[d["id"]]), 40, 2):
            buckets[key].append(d["id"])
    pairs = {}
    for members in buckets.values():
        for a, b in itertools.combinations(sorted(set(members)), 2):
            if (a, b) not in pairs:
                pairs[(a, b)] = exact_jaccard(sets[a], sets[b])
    return {p: j for p, j in pairs.items() if j >= lowest}


def versions(docs: list[dict], pages: int = 700, per_page: int = 3, seed: int = 0) -> list[dict]:
    """A stress set for the threshold: `pages` crawl pages of 80+ words, each with `per_page` edited
    versions (a random share of 0-7% of its words replaced), so that pairs spread over exact
    Jaccard 0.55-1.0 with many right at 0.8."""
    rng = random.Random(seed)
    out = []
    for d in [d for d in docs if len(d["text"].split()) >= 80][:pages]:
        words = d["text"].split(" ")
        out.append({"id": f"{d['id']}-0", "text": d["text"]})
        for k in range(1, per_page + 1):
            p = rng.uniform(0, 0.07)
            out.append({"id": f"{d['id']}-{k}",
                        "text": " ".join(f"x{rng.randrange(10**6)}" if rng.random() < p else w for w in words)})
    return out


def cluster_run(docs: list[dict], tmp: str, name: str, **minhash) -> tuple[set, dict]:
    """The pipeline with dedup_minhash alone on `docs`: (pairs in one cluster, the stage's stats)."""
    import pyarrow.parquet as pq

    from thresher.pipeline.config import Config
    from thresher.pipeline.engines.run import run
    from thresher.transforms import stage as stage_registry

    src = os.path.join(tmp, f"{name}.jsonl")
    if not os.path.exists(src):
        with open(src, "w", encoding="utf-8") as fh:
            for d in docs:
                fh.write(json.dumps({"id": d["id"], "text": d["text"]}, ensure_ascii=False) + "\n")
    cfg = Config()
    cfg.input = [src]
    cfg.output = os.path.join(tmp, f"{name}-{len(os.listdir(tmp))}")
    for st in stage_registry.stages():
        if st.optional:
            getattr(cfg.stages, st.name).enabled = st.name == "dedup_minhash"
    for k, v in minhash.items():
        setattr(cfg.stages.dedup_minhash, k, v)
    stats = run(cfg).stats
    clusters = defaultdict(list)
    for r in pq.read_table(os.path.join(cfg.output, "dedup", "clusters.parquet")).to_pylist():
        clusters[r["cluster_id"]].append(r["id"])
    return {tuple(sorted(p)) for m in clusters.values() for p in itertools.combinations(m, 2)}, \
        stats["stages"]["dedup_minhash"]


def score(predicted: set, jaccard: dict, threshold: float, gray: float = 0.2) -> dict:
    """Pair precision / recall against exact Jaccard. Positives: pairs at or above `threshold`;
    negatives: different pages and versions below `threshold - gray`; pairs in between (two edits
    of one page, each a duplicate of the original but not quite of each other) are neither."""
    truth = {p for p, j in jaccard.items() if j >= threshold}
    grey = {p for p, j in jaccard.items() if threshold - gray <= j < threshold}
    tp = len(predicted & truth)
    fp = len(predicted - truth - grey)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"pairs": len(truth), "tp": tp, "fp": fp, "fn": len(truth) - tp,
            "precision": precision, "recall": recall, "f1": f1}


def misses(docs: list[dict], jaccard: dict, bands: int, rows: int, threshold: float = 0.8) -> dict:
    """Where true pairs (exact Jaccard >= threshold) are lost, before any clustering: never in one
    LSH bucket, or in one but estimated below the threshold by the 8-bit signature, by the full
    64-bit one, or by both."""
    from thresher.transforms.dedup import MinHasher, band_keys, compact_signature, estimated_jaccard, shingle_hashes

    hasher = MinHasher(bands * rows, 1)
    full = {d["id"]: hasher.signature(shingle_hashes(d["text"])) for d in docs}
    keys = {i: set(band_keys(sig, bands, rows)) for i, sig in full.items()}
    out = {"pairs": 0, "never candidates": 0, "estimate below (8-bit)": 0, "estimate below (64-bit)": 0}
    for (a, b), j in jaccard.items():
        if j < threshold:
            continue
        out["pairs"] += 1
        if not keys[a] & keys[b]:
            out["never candidates"] += 1
            continue
        out["estimate below (8-bit)"] += estimated_jaccard(compact_signature(full[a]), compact_signature(full[b])) < threshold
        out["estimate below (64-bit)"] += estimated_jaccard(full[a], full[b]) < threshold
    return out


SETTINGS = [  # (label, dedup_minhash settings)
    ("14x8, estimate decides (previous settings)", {"bands": 14, "rows": 8, "exact_margin": 0.0}),
    ("14x8, exact within 0.15", {"bands": 14, "rows": 8}),
    ("18x6, estimate decides", {"exact_margin": 0.0}),
    ("18x6, exact within 0.15 (default)", {}),
]


def quality(docs: list[dict], tmp: str) -> None:
    from thresher.transforms.dedup import candidate_probability, optimal_bands

    sets = {"crawl": docs, "versions": versions(docs)}
    truth = {name: exact_jaccard_pairs(d) for name, d in sets.items()}
    print(f"\nQuality: pair precision / recall of the near-dedup clusters against exact Jaccard >= 0.8 (word "
          f"5-gram shingles), dedup_minhash alone. 'crawl': {len(docs):,} curated crawl documents; 'versions': "
          f"{len(sets['versions']):,} documents, crawl pages and edited versions of them (0-7% of words replaced). "
          "Negatives: pairs below 0.6 (pairs at 0.6-0.8, two versions of one page, count neither way).")
    print("\n  Where true pairs are lost (before clustering, which recovers some through other members):")
    for name, d in sets.items():
        for bands, rows in ((14, 8), (18, 6)):
            m = misses(d, truth[name], bands, rows)
            print(f"  {name:<9} {bands}x{rows}: " + ", ".join(f"{k} {v:,}" for k, v in m.items()))
    print()
    print(f"  {'set':<9} {'setting':<42} {'pairs':>6} {'FP':>4} {'FN':>4} {'precision':>9} {'recall':>7} "
          f"{'F1':>7} {'exact checks':>12}")
    for name, d in sets.items():
        for label, settings in SETTINGS:
            predicted, st = cluster_run(d, tmp, name, **settings)
            r = score(predicted, truth[name], 0.8)
            print(f"  {name:<9} {label:<42} {r['pairs']:>6,} {r['fp']:>4} {r['fn']:>4} {r['precision']:>9.4f} "
                  f"{r['recall']:>7.4f} {r['f1']:>7.4f} {st.get('exact_checks', 0):>12,}")

    print("\n  The threshold, on 'versions': the default bands 18x6, and auto_bands (bands x rows for the threshold)")
    print(f"  {'threshold':>9} {'bands':>7} {'pairs':>6} {'FP':>4} {'FN':>4} {'precision':>9} {'recall':>7} {'F1':>7}")
    for t in (0.6, 0.7, 0.8, 0.9):
        for auto in (False, True):
            predicted, st = cluster_run(sets["versions"], tmp, "versions", threshold=t, auto_bands=auto, num_perm=108)
            r = score(predicted, truth["versions"], t)
            b, rows = optimal_bands(t, 108) if auto else (18, 6)
            print(f"  {t:>9.1f} {f'{b}x{rows}':>7} {r['pairs']:>6,} {r['fp']:>4} {r['fn']:>4} {r['precision']:>9.4f} "
                  f"{r['recall']:>7.4f} {r['f1']:>7.4f}")

    print("\n  Jaccard   P(candidate) 14x8   18x6")
    for j in (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9):
        print(f"  {j:.2f}      {candidate_probability(j, 14, 8):.4f}        {candidate_probability(j, 18, 6):.4f}")


SCALE_SCRIPT = r"""
import json, resource, sys, time
try:  # this tree, installed: the thresher.* namespace (the python given runs the tree's own install)
    from thresher.pipeline.config import Config
    from thresher.pipeline.engines.run import run
except ImportError:  # an older checkout compared against, with bare package names
    sys.path.insert(0, sys.argv[3])
    from pipeline.config import Config
    from pipeline.run import run
cfg = Config()
cfg.input = [sys.argv[1]]
cfg.output = sys.argv[2]
cfg.stages.tokenize.enabled = False
cfg.runner.workers = 2
t0 = time.perf_counter()
stats = run(cfg).stats
print(json.dumps({"wall": time.perf_counter() - t0, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "worker_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                  "exact": stats["stages"]["dedup_exact"]["dropped"], "near": stats["stages"]["dedup_minhash"]["dropped"],
                  "sig_seconds": stats["stages"]["dedup_minhash"]["seconds"],
                  "clusters": stats["stages"]["dedup_minhash"].get("clusters", 0),
                  "largest": max(map(int, stats["stages"]["dedup_minhash"].get("cluster_sizes", {"0": 0}))),
                  "rounds_used": stats["stages"]["dedup_minhash"]["rounds_used"]}))
"""


def scale(docs: list[dict], tmp: str, factors=(1, 2, 4)) -> None:
    rng = random.Random(0)
    print("\nScale: the whole run (JSONL in, dedup stages, 2 worker processes) on N copies of the crawl's documents,"
          " each copy lightly edited; a fresh process each. Peak RSS of the largest worker, and of the local"
          " runner, which holds every shuffle in memory (on Dataflow or Spark the shuffle is the service's)")
    print(f"  {'input':>6} {'docs':>8} {'wall s':>8} {'per 1x':>7} {'worker MB':>10} {'runner MB':>10} {'clusters':>9} "
          f"{'largest':>8} {'rounds':>6}")
    base = None
    root = str(Path(__file__).resolve().parents[1])
    for f in factors:
        src = os.path.join(tmp, f"scale{f}.jsonl")
        n = 0
        with open(src, "w", encoding="utf-8") as fh:
            for c in range(f):
                for d in docs:
                    words = d["text"].split(" ")
                    if c and len(words) > 20:
                        for i in rng.sample(range(len(words)), 2):
                            words[i] = "edit"
                    fh.write(json.dumps({"id": f"{d['id']}-{c}", "text": " ".join(words)}, ensure_ascii=False) + "\n")
                    n += 1
        script = os.path.join(tmp, "scale.py")
        Path(script).write_text(SCALE_SCRIPT)
        proc = subprocess.run([sys.executable, script, src, os.path.join(tmp, f"out{f}"), root],
                              capture_output=True, text=True)
        if proc.returncode:
            print(proc.stderr[-3000:])
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        base = base or r["wall"] / f
        print(f"  {f:>5}x {n:>8,} {r['wall']:>8.1f} {r['wall'] / f / base:>6.2f}x {r['worker_rss_mb']:>10.0f} "
              f"{r['rss_mb']:>10.0f} {r['clusters']:>9,} {r['largest']:>8,} {r['rounds_used']:>6}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", help="a run directory whose documents/ hold extracted texts")
    ap.add_argument("--crawl", default=str(DEFAULT_CRAWL))
    ap.add_argument("--datatrove-python", help="python of a virtualenv with datatrove[processing] and spacy")
    ap.add_argument("--skip", nargs="*", default=[], choices=["signatures", "quality", "scale"])
    ap.add_argument("--factors", nargs="*", type=int, default=[1, 2, 4, 8, 16],
                    help="input sizes of the scale runs, in copies of the documents (16x: ~8 minutes)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        docs = load_docs(args.docs or curated(args.crawl, os.path.join(tmp, "curated")))
        texts = [d["text"] for d in docs]
        mb = sum(len(t.encode()) for t in texts) / 1e6
        if "signatures" not in args.skip:
            rows = bench_signatures(texts, args.datatrove_python)
            ours = rows[0][1]
            print(f"\nSignatures: {len(texts):,} documents, {mb:.1f} MB of text, 1 core "
                  "(datasketch and datatrove: 112 permutations)")
            print(f"  {'implementation':<44} {'seconds':>8} {'docs/s':>8} {'MB/s':>7} {'thresher is':>12}")
            for name, secs in rows:
                print(f"  {name:<44} {secs:>8.2f} {len(texts) / secs:>8.0f} {mb / secs:>7.2f} {secs / ours:>11.2f}x")
        if "quality" not in args.skip:
            quality(docs, tmp)
        if "scale" not in args.skip:
            scale(docs, tmp, args.factors)


if __name__ == "__main__":
    main()
