"""Cost and memory as the corpus grows: N generated documents of web size, from 10k to 1M.

The corpus is deterministic (a seed) and built from the crawl's extracted texts, so that dedup has
the work it has on a real dump: of every 20 documents, 2 are exact copies of an earlier one, 6 are
near-duplicates of one (0.3, 1 or 2% of words replaced: word 5-gram Jaccard about 0.97, 0.90 and
0.82, above the 0.8 threshold), 3 are related to one (5-15% replaced: Jaccard 0.6-0.3, below it)
and 9 are new (paragraphs of several pages mixed). Texts are
cut to at most 8,000 characters (a few KB, as web pages are after extraction). It is written as
JSONL files of 10,000 documents, so the readers split it over the workers.

Each job runs in a fresh process tree, sampled every 0.2 s: wall, documents a second, the peak RSS
of the runner process, of the largest worker and of the whole tree, and the peak of the run's
staging folder on disk (spill files, staged outputs), against the input's bytes.

    python benchmarks/scale.py --crawl CRAWL.warc.gz --sizes 10000 100000 [--jobs dedup recipe] [--config X.yaml]
        [--workers 1 2] [--work DIR]

Jobs: ``dedup`` (--only dedup_exact,dedup_minhash), ``recipe`` (the default recipe from JSONL:
no extraction), ``chain`` (the whole chain on links to the crawl, N pages rounded to copies of it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from memory import measure  # benchmarks/memory.py: the process-tree sampler

PER_FILE = 10_000
MAX_CHARS = 8_000


def source_texts(crawl: str, work: Path) -> list[str]:
    """The crawl's pages, extracted (cached in WORK/texts.json)."""
    cache = work / "texts.json"
    if cache.exists():
        return json.loads(cache.read_text())
    import pyarrow.dataset as ds

    out = work / "extracted"
    subprocess.run([sys.executable, "-m", "thresher.pipeline", "run", "--input", crawl, "--output", str(out),
                    "--only", "extract", "--workers", "2", "--overwrite", "-q"], check=True)
    texts = [t for t in ds.dataset(str(out / "documents"), format="parquet", partitioning="hive")
             .to_table(columns=["text"]).column("text").to_pylist() if len(t) >= 500]
    texts.sort()  # the dataset's order depends on its files; the corpus must not
    cache.write_text(json.dumps(texts))
    shutil.rmtree(out)
    return texts


def _edit(rng: random.Random, text: str, share: float, vocabulary: list[str]) -> str:
    words = text.split(" ")
    for i in rng.sample(range(len(words)), int(len(words) * share)):
        words[i] = rng.choice(vocabulary)
    return " ".join(words)


def generate(texts: list[str], n: int, folder: Path, seed: int = 0) -> int:
    """N documents as JSONL under `folder`; returns the bytes written."""
    rng = random.Random(seed)
    vocabulary = sorted({w for t in texts[:200] for w in t.split()[:400] if w.isalpha()})
    paragraphs = [p for t in texts for p in t.split("\n") if len(p) > 80]
    made: list[str] = []  # earlier documents, the ones copies and edits come from (the last 50,000)
    folder.mkdir(parents=True, exist_ok=True)
    written, fh = 0, None
    for i in range(n):
        if i % PER_FILE == 0:
            if fh:
                fh.close()
            fh = open(folder / f"part-{i // PER_FILE:05d}.jsonl", "w", encoding="utf-8")
        kind = i % 20
        if made and kind < 2:
            text = rng.choice(made)
        elif made and kind < 8:
            text = _edit(rng, rng.choice(made), rng.choice((0.003, 0.01, 0.02)), vocabulary)
        elif made and kind < 11:
            text = _edit(rng, rng.choice(made), rng.uniform(0.05, 0.15), vocabulary)
        else:
            text = "\n".join(rng.sample(paragraphs, rng.randint(3, 12)))
            if rng.random() < 0.5:
                text = rng.choice(texts)[:MAX_CHARS // 2] + "\n" + text
        text = text[:MAX_CHARS]
        made.append(text)
        if len(made) > 50_000:
            made = made[-50_000:]
        line = json.dumps({"id": f"doc-{i:08d}", "url": f"https://example.org/{i}", "text": text}) + "\n"
        written += len(line.encode())
        fh.write(line)
    if fh:
        fh.close()
    return written


def _disk(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


def run_job(job: str, inputs: str, out: Path, workers: int, configs: tuple = ()) -> dict:
    cmd = [sys.executable, "-m", "thresher.pipeline", "run", *configs, "--input", inputs, "--output", str(out),
           "--workers", str(workers), "--overwrite", "--no-progress", "-q"]
    if job == "dedup":
        cmd += ["--only", "dedup_exact,dedup_minhash"]
    peak_disk, done = [0], threading.Event()

    def watch():
        while not done.wait(0.5):
            peak_disk[0] = max(peak_disk[0], _disk(out / ".staging"))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    t0 = time.perf_counter()
    proc, peak = measure(cmd, dict(os.environ), interval=0.2)
    wall = time.perf_counter() - t0
    done.set()
    watcher.join()
    if proc.returncode:
        raise SystemExit(f"{job} failed:\n{proc.stderr[-3000:]}")
    stats = json.loads((out / "stats.json").read_text())
    digest = subprocess.run(f"cd {out} && find documents rejected dedup shards -type f 2>/dev/null | sort | "
                            "xargs sha256sum | sha256sum", shell=True, capture_output=True, text=True).stdout[:12]
    mh = stats["stages"].get("dedup_minhash") or {}
    rounds = f"{mh['rounds_used']}/{mh['rounds']}" if "rounds_used" in mh else "-"
    return {"wall": wall, "read": stats["totals"]["read"], "kept": stats["totals"]["kept"], "disk": peak_disk[0],
            "digest": digest, "rounds": rounds, **peak}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crawl", required=True, help="a WARC crawl: the source of the texts (and of `chain`)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--jobs", nargs="+", default=["dedup", "recipe"], choices=["dedup", "recipe", "chain"])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--work", default="scale-work", help="corpora and runs go here (kept between calls)")
    ap.add_argument("--config", action="append", default=[], help="a config file every job reads (e.g. runner.resume: false)")
    args = ap.parse_args()
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    texts = source_texts(os.path.abspath(args.crawl), work)
    print(f"{len(texts):,} source texts from {os.path.basename(args.crawl)}; runs in fresh process trees, "
          "sampled every 0.2 s")
    print(f"  {'job':<7} {'docs':>9} {'wk':>3} {'input MB':>9} {'wall s':>8} {'docs/s':>7} {'runner MB':>10} "
          f"{'worker MB':>10} {'tree MB':>8} {'disk/input':>10} {'kept':>9} {'cc rounds':>9}  output")
    for n in args.sizes:
        corpus = work / f"corpus-{n}"
        marker = corpus / "DONE"
        if not marker.exists():
            shutil.rmtree(corpus, ignore_errors=True)
            marker.parent.mkdir(parents=True, exist_ok=True)
            size = generate(texts, n, corpus)
            marker.write_text(str(size))
        size = int(marker.read_text())
        for job in args.jobs:
            inputs = str(corpus)
            if job == "chain":
                copies = max(1, round(n / 6_500))
                inputs = str(work / f"chain-{copies}")
                os.makedirs(inputs, exist_ok=True)
                for c in range(copies):
                    link = Path(inputs) / f"crawl-{c:04d}.warc.gz"
                    if not link.exists():
                        link.symlink_to(os.path.abspath(args.crawl))
                size = copies * os.path.getsize(args.crawl)
            for w in args.workers:
                out = work / f"out-{job}-{n}-{w}"
                r = run_job(job, inputs, out, w, tuple(os.path.abspath(c) for c in args.config))
                print(f"  {job:<7} {r['read']:>9,} {w:>3} {size / 1e6:>9.0f} {r['wall']:>8.1f} "
                      f"{r['read'] / r['wall']:>7.0f} {r['runner']:>10.0f} {r['worker']:>10.0f} {r['tree']:>8.0f} "
                      f"{r['disk'] / size:>10.2f} {r['kept']:>9,} {r['rounds']:>9}  {r['digest']}", flush=True)
                shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
