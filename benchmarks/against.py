"""The cost of curating a dump against an earlier run: a new dump of N documents deduplicated on
its own and against the index of an earlier run of M documents, side by side; the index's bytes.

    python benchmarks/against.py --crawl CRAWL.warc.gz [--earlier 1000000] [--new 100000]
        [--only dedup_exact,dedup_minhash] [--workers 2] [--work scale-work]

The corpora are benchmarks/scale.py's: the earlier dump is its corpus of M documents (kept in
--work between calls), the new dump the same generator with another seed (new documents made of
the same pages). The jobs run the dedup stages only (`--only`). Each job runs in a fresh process
tree, sampled every 0.2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from memory import measure  # benchmarks/memory.py: the process-tree sampler
from scale import generate, source_texts


def corpus(texts: list[str], folder: Path, n: int, seed: int) -> Path:
    marker = folder / "DONE"
    if not marker.exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        marker.write_text(str(generate(texts, n, folder, seed=seed)))
    return folder


def job(inputs: Path, out: Path, workers: int, only: str, *extra: str) -> dict:
    cmd = [sys.executable, "-m", "thresher.pipeline", "run", "--input", str(inputs), "--output", str(out), "--workers",
           str(workers), "--only", only, "--overwrite", "--no-progress", "-q", *extra]
    t0 = time.perf_counter()
    proc, peak = measure(cmd, dict(os.environ), interval=0.2)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"job failed:\n{proc.stderr[-3000:]}")
    stats = json.loads((out / "stats.json").read_text())
    return {"wall": wall, "stats": stats, **peak}


def dropped(stages: dict, reason: str) -> int:
    return sum(s["dropped"].get(reason, 0) for s in stages.values())


def index_bytes(run_dir: Path, part: str) -> int:
    return sum(p.stat().st_size for p in (run_dir / "dedup" / "index" / part).rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crawl", required=True, help="a WARC crawl: the source of the texts")
    ap.add_argument("--earlier", type=int, default=1_000_000, help="documents of the earlier dump")
    ap.add_argument("--new", type=int, default=100_000, help="documents of the new dump")
    ap.add_argument("--only", default="dedup_exact,dedup_minhash", help="the stages the jobs run")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work", default="scale-work", help="corpora and the earlier run go here (kept between calls)")
    args = ap.parse_args()
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    texts = source_texts(os.path.abspath(args.crawl), work)
    earlier_corpus = corpus(texts, work / f"corpus-{args.earlier}", args.earlier, seed=0)
    new_corpus = corpus(texts, work / f"next-{args.new}", args.new, seed=1)

    earlier = work / f"earlier-{args.earlier}-{args.only.replace(',', '+')}"
    if not (earlier / "stats.json").exists():
        r = job(earlier_corpus, earlier, args.workers, args.only)
        print(f"earlier run: {r['stats']['totals']['read']:,} documents in {r['wall']:.1f} s")
    stats = json.loads((earlier / "stats.json").read_text())
    rows = 0
    for part in ("exact", "minhash"):
        part_rows, size = stats["output"][f"index_{part}_rows"], index_bytes(earlier, part)
        if part_rows:
            rows = max(rows, part_rows)
            print(f"earlier run's {part} index: {part_rows:,} rows, {size / 1e6:,.1f} MB: {size / part_rows:,.1f} bytes "
                  f"a row, {size / part_rows:,.0f} MB per million documents")

    print(f"  {'job':<22} {'docs':>8} {'wall s':>7} {'docs/s':>7} {'runner MB':>10} {'tree MB':>8} "
          f"{'exact dup':>9} {'near dup':>8} {'earlier dup':>11} {'kept':>8}")
    walls = {}
    for name, extra in (("alone", ()), (f"against {rows // 1000:,}k index", ("--dedup-against", str(earlier)))):
        out = work / "against-out"
        r = job(new_corpus, out, args.workers, args.only, *extra)
        st = r["stats"]["stages"]
        first, last = st[args.only.split(",")[0]], st[args.only.split(",")[-1]]
        walls[name] = r["wall"]
        print(f"  {name:<22} {first['in']:>8,} {r['wall']:>7.1f} {first['in'] / r['wall']:>7.0f} {r['runner']:>10.0f} "
              f"{r['tree']:>8.0f} {dropped(st, 'exact_duplicate'):>9,} {dropped(st, 'near_duplicate'):>8,} "
              f"{dropped(st, 'earlier_duplicate'):>11,} {last['kept']:>8,}", flush=True)
        shutil.rmtree(out, ignore_errors=True)
    alone, against = walls.values()
    print(f"the lookup costs {against - alone:.1f} s ({against / alone:.2f}x the job alone)")


if __name__ == "__main__":
    main()
