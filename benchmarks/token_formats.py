"""What each token-shard format costs (stages.tokenize.formats): bytes per token, the time to
encode and write each, and the seeded shuffle's share, on a real run's shards; then the whole job
with every format against Arrow only, side by side.

    python benchmarks/token_formats.py --input CRAWL.warc.gz [--workers 2] [--work formats-work] [--repeat 3]

Part 1 reads the Arrow-only run's shards and, per format, times what the shard writer does for it
(encode, sha256, write the file), best of --repeat. The shuffle's cost is the seeded hash of every
id and the sort by it inside each shard, the only work the shuffle adds to a writer that must
group documents into shards anyway. Part 2 runs the job twice more (Arrow only; every format) and
checks that the Arrow shards are the same bytes in both.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from thresher.transforms.hashing import seeded_hash
from thresher.transforms.shards import FORMATS, encode_formats, open_shard, read_manifest

SALT = "shuffle:"


def run(inputs: list[str], out: Path, workers: int, formats: list[str]) -> float:
    cfg = out.parent / f"{out.name}.yaml"
    cfg.write_text("stages:\n  tokenize:\n    formats: [" + ", ".join(formats) + "]\n")
    cmd = [sys.executable, "-m", "thresher.pipeline", "run", str(cfg), *sum((["--input", i] for i in inputs), []),
           "--output", str(out), "--workers", str(workers), "--no-progress", "-q", "--overwrite"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"job failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def shard_rows(run_dir: Path) -> tuple[list[list[dict]], dict]:
    m = read_manifest(str(run_dir / "shards"))
    shards = []
    for s in m.shards:
        t = open_shard(str(run_dir / "shards" / s.file))
        tokens = t.column("tokens").to_pylist()
        shards.append([{"id": i, "url": u, "lang": la, "source": so, "tokens": np.asarray(tk, dtype=np.uint32)}
                       for i, u, la, so, tk in zip(t.column("id").to_pylist(), t.column("url").to_pylist(),
                                                   t.column("lang").to_pylist(), t.column("source").to_pylist(),
                                                   tokens)])
    return shards, {"dtype": m.dtype, "vocab": int(m.tokenizer["vocab_size"]), "tokens": m.tokens, "rows": m.rows}


def time_format(shards, info, fmt: str, folder: Path, repeat: int) -> tuple[float, int]:
    best, size = float("inf"), 0
    for _ in range(repeat):
        shutil.rmtree(folder, ignore_errors=True)
        t0 = time.perf_counter()
        size = 0
        for index, rows in enumerate(shards):
            for name, data, _ in encode_formats(rows, index, [fmt], info["dtype"], info["vocab"]):
                hashlib.sha256(data).hexdigest()
                path = folder / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                size += len(data)
        best = min(best, time.perf_counter() - t0)
    return best, size


def time_shuffle(shards, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for rows in shards:
            sorted(rows, key=lambda r: seeded_hash(SALT + str(r["id"]), 0))
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", action="append", required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work", default="formats-work")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)

    arrow_wall = run(args.input, work / "arrow", args.workers, ["arrow"])
    shards, info = shard_rows(work / "arrow")
    print(f"{info['rows']:,} documents, {info['tokens']:,} tokens in {len(shards)} shards ({info['dtype']})\n")
    print("| format | bytes | bytes/token | encode + sha256 + write | ms per 1M tokens |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for fmt in FORMATS:
        secs, size = time_format(shards, info, fmt, work / "encoded", args.repeat)
        print(f"| {fmt} | {size:,} | {size / info['tokens']:.3f} | {secs * 1000:.0f} ms | "
              f"{secs * 1000 / info['tokens'] * 1e6:.0f} |")
    shuffle = time_shuffle(shards, args.repeat)
    print(f"| shuffle (seeded hash of each id, sort inside each shard) | | | {shuffle * 1000:.0f} ms | "
          f"{shuffle * 1000 / info['tokens'] * 1e6:.0f} |")

    every_wall = run(args.input, work / "every", args.workers, list(FORMATS))
    again = run(args.input, work / "arrow", args.workers, ["arrow"])
    same = all((work / "arrow" / "shards" / p.name).read_bytes() == p.read_bytes()
               for p in (work / "every" / "shards").glob("*.arrow"))
    print(f"\nwhole job, {args.workers} workers: Arrow only {arrow_wall:.1f} s and {again:.1f} s; every format "
          f"{every_wall:.1f} s (Arrow shards identical: {same})")


if __name__ == "__main__":
    main()
