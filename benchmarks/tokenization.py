"""Tokenization and shard I/O throughput.

(Named tokenization.py, not tokenize.py: a script folder holding tokenize.py shadows the standard
library's `tokenize` for every script in it, and pandas, imported by Beam, then fails to import.)

1. tokens/s per core of the ``tokenize`` stage (its own time inside the pipeline, from
   stats.json) beside a plain ``Tokenizer.encode_batch`` loop over the same texts (the limit),
   and a plain ``encode_batch_fast`` loop (the call the stage makes: no character offsets), all
   single-threaded (TOKENIZERS_PARALLELISM=false), interleaved, median of ``--runs`` (3).
   Target: at least 0.95x the limit.
2. Shard write and memory-mapped read throughput in GB/s (transforms/shards.py).

    python benchmarks/tokenization.py [--docs RUN_DIR] [--crawl ../shared/data/crawl-sample.warc.gz]

Without --docs, the crawl is curated first (tokenize skipped) to get real extracted texts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ["TOKENIZERS_PARALLELISM"] = "false"

DEFAULT_CRAWL = Path(__file__).resolve().parents[2] / "shared" / "data" / "crawl-sample.warc.gz"


def curated_texts(crawl: str, out: str) -> str:
    from thresher.pipeline.config import Config
    from thresher.pipeline.engines.run import run

    cfg = Config()
    cfg.input = [crawl]
    cfg.output = out
    cfg.stages.tokenize.enabled = False
    run(cfg)
    return out


def limit_loop(texts: list[str], batch: int, method: str = "encode_batch") -> tuple[int, float]:
    from thresher.transforms.tokenization import default_tokenizer, tokenizer_from_json

    tok, _ = tokenizer_from_json(Path(default_tokenizer()).read_text(), "tokenizer.json")
    encode = getattr(tok, method)
    t0 = time.perf_counter()
    n = 0
    for i in range(0, len(texts), batch):
        for enc in encode(texts[i : i + batch], add_special_tokens=False):
            n += len(enc.ids) + 1  # + EOS, as the stage counts
    return n, time.perf_counter() - t0


def stage_run(docs_dir: str, out: str) -> tuple[int, float, float]:
    """The pipeline over the curated texts (JSONL in), tokenize stage only."""
    import pyarrow.parquet as pq

    from thresher.pipeline.config import Config
    from thresher.pipeline.engines.run import run

    src = os.path.join(out, "texts.jsonl")
    with open(src, "w", encoding="utf-8") as fh:
        for f in sorted(Path(docs_dir, "documents").glob("*.parquet")):
            for row in pq.read_table(f, columns=["id", "text"]).to_pylist():
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    from thresher.transforms import stage as registry

    cfg = Config()
    cfg.input = [src]
    cfg.output = os.path.join(out, "run")
    for s in registry.stages():  # the texts were curated already: tokenize only
        if s.optional and s.name != "tokenize":
            getattr(cfg.stages, s.name).enabled = False
    t0 = time.perf_counter()
    stats = run(cfg).stats
    wall = time.perf_counter() - t0
    return stats["output"]["shard_tokens"], stats["stages"]["tokenize"]["seconds"], wall


def shard_io(tokens: int = 200_000_000, doc_tokens: int = 2000) -> tuple[float, float, float]:
    import numpy as np

    from thresher.transforms.shards import encode_shard, open_shard, token_arrays

    rng = np.random.default_rng(0)
    flat = rng.integers(0, 50_000, size=tokens, dtype=np.uint16)
    rows = [{"id": str(i), "url": None, "lang": None, "source": "bench", "tokens": flat[a : a + doc_tokens]}
            for i, a in enumerate(range(0, tokens, doc_tokens))]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "shard.arrow")
        t0 = time.perf_counter()
        data = encode_shard(rows, "uint16")
        with open(path, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        write = time.perf_counter() - t0
        size = len(data)
        del data
        t0 = time.perf_counter()
        got, offsets = token_arrays(open_shard(path))
        checksum = int(got.sum(dtype=np.uint64))  # touches every page of the mapping
        read = time.perf_counter() - t0
        assert checksum == int(flat.sum(dtype=np.uint64)) and len(offsets) == len(rows) + 1
    return size / 1e9, size / 1e9 / write, size / 1e9 / read


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", help="a run directory whose documents/ hold the texts")
    ap.add_argument("--crawl", default=str(DEFAULT_CRAWL))
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        docs = args.docs or curated_texts(args.crawl, os.path.join(tmp, "curated"))
        import pyarrow.parquet as pq

        texts = [t for f in sorted(Path(docs, "documents").glob("*.parquet"))
                 for t in pq.read_table(f, columns=["text"]).column("text").to_pylist()]
        limits, fasts, stages, walls = [], [], [], []
        for _ in range(args.runs):  # interleaved, so a slow spell of the machine hits every side
            n_limit, t = limit_loop(texts, args.batch)
            limits.append(t)
            n_fast, t = limit_loop(texts, args.batch, "encode_batch_fast")
            fasts.append(t)
            assert n_fast == n_limit, (n_fast, n_limit)
            n_stage, t, wall = stage_run(docs, tempfile.mkdtemp(dir=tmp))
            stages.append(t)
            walls.append(wall)
            assert n_limit == n_stage, (n_limit, n_stage)
        t_limit, t_fast, t_stage, wall = (statistics.median(x) for x in (limits, fasts, stages, walls))
    mb = sum(len(t.encode()) for t in texts) / 1e6
    print(f"\n{len(texts):,} documents, {mb:.1f} MB of text, {n_limit:,} tokens (default tokenizer), 1 thread, "
          f"median of {args.runs} interleaved runs\n")
    print(f"{'run':<40} {'seconds':>8} {'M tokens/s':>11} {'vs limit':>9}")
    print(f"{'encode_batch loop (the limit)':<40} {t_limit:>8.2f} {n_limit / t_limit / 1e6:>11.3f} {1:>8.2f}x")
    print(f"{'encode_batch_fast loop (no offsets)':<40} {t_fast:>8.2f} {n_limit / t_fast / 1e6:>11.3f} "
          f"{t_limit / t_fast:>8.2f}x")
    print(f"{'tokenize stage (its time in the run)':<40} {t_stage:>8.2f} {n_stage / t_stage / 1e6:>11.3f} "
          f"{t_limit / t_stage:>8.2f}x")
    print(f"{'whole run: JSONL in, shards + docs out':<40} {wall:>8.2f} {n_stage / wall / 1e6:>11.3f} {t_limit / wall:>8.2f}x")
    print("per run, stage vs limit: " + ", ".join(f"{a / b:.2f}x" for a, b in zip(limits, stages))
          + "; stage vs encode_batch_fast loop: " + ", ".join(f"{a / b:.2f}x" for a, b in zip(fasts, stages)))
    size, w, r = shard_io()
    print(f"\nshard I/O ({size:.2f} GB shard, 200M uint16 tokens): write {w:.2f} GB/s (encode + write + fsync), "
          f"memory-mapped read {r:.2f} GB/s (page cache warm)")


if __name__ == "__main__":
    main()
