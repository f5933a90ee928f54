"""Ingest + extraction throughput: the Beam pipeline beside a plain Python loop (the practical limit).

Both sides use the same WARC reader, HTTP parser, charset decoder and resiliparse extractor, and
both write the kept documents to Parquet. The loop is what one core can do with no framework at
all; the pipeline on 1 worker should reach at least 0.8x of it, and 2 workers at least 1.6x of 1.

    python benchmarks/ingest.py [../shared/data/crawl-sample.warc.gz] [--workers 1 2] [--repeat 1]
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path


DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "crawl-sample.warc.gz"


def plain_loop(paths: list[str]) -> tuple[int, float]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from thresher.pipeline.config import Config
    from thresher.transforms.document import DOCUMENT_SCHEMA
    from thresher.transforms.extract import ExtractText
    from thresher.transforms.ingest import WarcOptions, decode_payload, read_warc

    cfg = Config()
    extract = ExtractText(cfg.stages.extract.backend, cfg.stages.extract.main_content, cfg.stages.extract.timeout_s)
    t0 = time.perf_counter()
    kept = []
    for path in paths:
        with open(path, "rb") as fh:
            for item in read_warc(fh, os.path.basename(path), WarcOptions()):
                if not isinstance(item, dict):
                    continue
                doc = decode_payload(item)
                if isinstance(doc, dict):
                    doc = extract(doc)
                    if isinstance(doc, dict):
                        kept.append(doc)
    pq.write_table(pa.Table.from_pylist(kept, schema=DOCUMENT_SCHEMA), io.BytesIO(), compression="zstd")
    return len(kept), time.perf_counter() - t0


def pipeline_run(paths: list[str], workers: int) -> tuple[int, float]:
    from thresher.pipeline.config import Config
    from thresher.pipeline.engines.run import run

    cfg = Config()
    cfg.input = list(paths)
    cfg.runner.workers = workers
    for later in ("dedup_exact", "dedup_minhash", "tokenize"):  # the loop does ingest + extract only
        getattr(cfg.stages, later).enabled = False
    with tempfile.TemporaryDirectory() as out:
        cfg.output = out
        t0 = time.perf_counter()
        result = run(cfg)
        return result.stats["totals"]["kept"], time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", nargs="?", default=str(DEFAULT))
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--copies", type=int, nargs="+", default=[1],
                    help="also run on N copies of the input (links under other names), to amortise start-up")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each; the best is reported")
    args = ap.parse_args()
    print(f"input: {args.path} ({os.path.getsize(args.path) / 1e6:.1f} MB compressed), {os.cpu_count()} CPUs")
    for copies in args.copies:
        with tempfile.TemporaryDirectory() as tmp:
            paths = []
            for i in range(copies):
                link = os.path.join(tmp, f"copy{i}-{os.path.basename(args.path)}")
                os.symlink(os.path.abspath(args.path), link)
                paths.append(link)
            table(paths, args.workers, args.repeat, f"{copies} cop{'ies' if copies > 1 else 'y'}")


def table(paths: list[str], workers: list[int], repeat: int, label: str) -> None:
    mb = sum(os.path.getsize(p) for p in paths) / 1e6
    rows = []
    best = min((plain_loop(paths) for _ in range(repeat)), key=lambda r: r[1])
    rows.append(("plain loop (1 core)", *best))
    for w in workers:
        res = min((pipeline_run(paths, w) for _ in range(repeat)), key=lambda r: r[1])
        rows.append((f"pipeline, {w} worker{'s' if w > 1 else ''}", *res))

    base = rows[0][2]
    one = next((r[2] for r in rows if r[0] == "pipeline, 1 worker"), None)
    print(f"\n{label}: {mb:.1f} MB compressed")
    print(f"{'run':<22} {'docs kept':>9} {'seconds':>8} {'docs/s':>8} {'MB/s':>7} {'vs loop':>8} {'vs 1 worker':>11}")
    for name, kept, secs in rows:
        vs1 = f"{one / secs:.2f}x" if one and name.startswith("pipeline") else ""
        print(f"{name:<22} {kept:>9,} {secs:>8.2f} {kept / secs:>8.0f} {mb / secs:>7.2f} {base / secs:>7.2f}x {vs1:>11}")


if __name__ == "__main__":
    main()
