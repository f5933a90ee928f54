"""Dedup benchmark on real documents (texts extracted from ../shared/data/crawl-sample.warc.gz).

1. Signature throughput per core, from text to a 14x8 = 112-value MinHash signature: ours
   (transforms/dedup.py) beside datasketch's fastest bulk path (``MinHash.bulk``, on the same
   shingles) and datatrove's ``MinhashDedupSignature`` (run in its own virtualenv, --datatrove-python).
2. Quality: pair precision / recall / F1 of the near-dedup clusters against exact Jaccard >= 0.8
   (word 5-gram shingles) on the crawl, and the probability-of-candidate curve of the bands x rows.
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
    from thresher.pipeline.run import run

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
    hasher = MinHasher(112)
    t0 = time.perf_counter()
    for t in texts:
        hasher.signature(shingle_hashes(t, 5))
    out.append(("thresher (numpy, 64-bit)", time.perf_counter() - t0))

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


def exact_jaccard_pairs(docs: list[dict], threshold: float) -> dict[tuple[str, str], float]:
    """Every pair with exact Jaccard >= threshold: candidates from a loose LSH (40 bands x 2 rows
    catches pairs at 0.5 with probability 1 - 0.75^40 > 0.9999), then exact set Jaccard."""
    from thresher.transforms.dedup import MinHasher, band_keys, shingle_hashes

    sets = {d["id"]: set(shingle_hashes(d["text"]).tolist()) for d in docs}
    hasher = MinHasher(80, seed=99)
    buckets = defaultdict(list)
    for d in docs:
        sig = hasher.signature(shingle_hashes(d["text"]))
        for key in band_keys(sig, 40, 2):
            buckets[key].append(d["id"])
    pairs = {}
    for members in buckets.values():
        if len(members) > 1:
            for a, b in itertools.combinations(sorted(set(members)), 2):
                if (a, b) not in pairs:
                    sa, sb = sets[a], sets[b]
                    pairs[(a, b)] = len(sa & sb) / len(sa | sb) if (sa or sb) else 1.0
    return {p: j for p, j in pairs.items() if j >= threshold}, pairs


def quality(docs: list[dict], tmp: str) -> None:
    import numpy as np
    import pyarrow.parquet as pq

    from thresher.pipeline.config import Config
    from thresher.pipeline.run import run

    src = os.path.join(tmp, "q.jsonl")
    with open(src, "w", encoding="utf-8") as fh:
        for d in docs:
            fh.write(json.dumps(d, ensure_ascii=False) + "\n")
    cfg = Config()
    cfg.input = [src]
    cfg.output = os.path.join(tmp, "q")
    cfg.stages.dedup_exact.enabled = False  # exact copies are near-duplicate pairs too: keep them visible
    cfg.stages.tokenize.enabled = False
    run(cfg)
    clusters = defaultdict(list)
    for r in pq.read_table(os.path.join(cfg.output, "dedup", "clusters.parquet")).to_pylist():
        clusters[r["cluster_id"]].append(r["id"])
    predicted = {tuple(sorted(p)) for m in clusters.values() for p in itertools.combinations(m, 2)}
    truth, all_pairs = exact_jaccard_pairs(docs, 0.8)
    tp = len(predicted & set(truth))
    precision = tp / len(predicted) if predicted else 1.0
    recall = tp / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    print(f"\nQuality on {len(docs):,} crawl documents (word 5-grams, 14 bands x 8 rows, verified at 0.8):")
    print(f"  true pairs (exact Jaccard >= 0.8): {len(truth):,}; predicted pairs (same cluster): {len(predicted):,}")
    print(f"  precision {precision:.4f}  recall {recall:.4f}  F1 {f1:.4f}")
    print("\n  Jaccard   P(candidate) 14x8   share of pairs clustered")
    for lo in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95):
        hi = lo + 0.1 if lo < 0.9 else (0.95 if lo == 0.9 else 1.0001)
        ps = [p for p, j in all_pairs.items() if lo <= j < hi]
        got = sum(p in predicted for p in ps) / len(ps) if ps else float("nan")
        mid = (lo + min(hi, 1.0)) / 2
        print(f"  {lo:.2f}-{min(hi, 1.0):.2f}   {candidate_probability(np.array([mid]), 14, 8)[0]:.4f}"
              f"              {got:.3f} of {len(ps):,}")


def candidate_probability(jaccard, bands: int, rows: int):
    """P(two documents of similarity s share at least one band) = 1 - (1 - s^r)^b."""
    import numpy as np

    return 1.0 - (1.0 - np.asarray(jaccard, dtype=float) ** rows) ** bands


SCALE_SCRIPT = r"""
import json, resource, sys, time
try:  # this tree, installed: the thresher.* namespace (the python given runs the tree's own install)
    from thresher.pipeline.config import Config
    from thresher.pipeline.run import run
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
            print(f"\nSignatures: {len(texts):,} documents, {mb:.1f} MB of text, 112 permutations, 1 core")
            print(f"  {'implementation':<36} {'seconds':>8} {'docs/s':>8} {'MB/s':>7} {'thresher is':>12}")
            for name, secs in rows:
                print(f"  {name:<36} {secs:>8.2f} {len(texts) / secs:>8.0f} {mb / secs:>7.2f} {secs / ours:>11.2f}x")
        if "quality" not in args.skip:
            quality(docs, tmp)
        if "scale" not in args.skip:
            scale(docs, tmp, args.factors)


if __name__ == "__main__":
    main()
