"""Is the loader ever the bottleneck? Loader tokens/s beside what the model consumes per step.

1. ``TokenLoader`` throughput (batches of B x (seq_len + 1) int64 windows from memory-mapped
   shards through a torch DataLoader) with 0, 1 and 2 worker processes.
2. The model's consumption: tokens/s of full training steps (forward, backward, AdamW) of the named
   models on this machine's CPU, and the H100 figures of ``benchmarks/gpu_train.sh``
   (pass them with --gpu-tps, e.g. ``--gpu-tps 125m=445883 1b=67392``).
The loader keeps up when its tokens/s per rank exceeds the model's by a wide margin.

    python benchmarks/train_loader.py [--data RUN_DIR] [--crawl ../shared/data/crawl-sample.warc.gz]

Without --data the crawl is curated and tokenized first.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


DEFAULT_CRAWL = Path(__file__).resolve().parents[2] / "shared" / "data" / "crawl-sample.warc.gz"


def make_data(crawl: str, out: str) -> str:
    from thresher.pipeline.config import Config
    from thresher.pipeline.engines.run import run

    cfg = Config()
    cfg.input = [crawl]
    cfg.output = out
    cfg.stages.tokenize.shard_tokens = 1_000_000
    return run(cfg).output


def loader_tps(data: str, seq_len: int, batch: int, workers: int, seconds: float) -> float:
    from thresher.trainer.data import Mixture, TokenLoader, TokenSource

    loader = TokenLoader(Mixture([TokenSource(data, seq_len)], seed=0), batch, num_workers=workers)
    it = iter(loader)
    for _ in range(4 * max(workers, 1)):  # start the workers and fill their prefetch queues
        next(it)
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        x = next(it)["inputs"]
        n += x.numel()
    return n / (time.perf_counter() - t0)


def model_tps(name: str, vocab: int, seq_len: int, batch: int, steps: int) -> float:
    import torch
    import torch.nn.functional as F

    from thresher.trainer.model import MODELS, Transformer

    m = Transformer(MODELS[name].with_vocab(vocab, seq_len))
    m.init_weights(0)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
    x = torch.randint(0, vocab, (batch, seq_len))

    def step():
        loss = F.cross_entropy(m(x).flatten(0, 1), x.flatten())
        loss.backward()
        opt.step()
        opt.zero_grad()

    step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch * seq_len / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data")
    ap.add_argument("--crawl", default=str(DEFAULT_CRAWL))
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--gpu-tps", nargs="*", default=[], metavar="MODEL=TOKENS_PER_S")
    args = ap.parse_args()
    import torch

    from thresher.trainer.data import TokenSource

    data = args.data or make_data(args.crawl, os.path.join(tempfile.mkdtemp(), "run"))
    src = TokenSource(data, args.seq_len)
    print(f"data: {data}: {src.tokens:,} tokens in {len(src.files)} shards, {src.n_windows:,} windows "
          f"of {args.seq_len}; batch {args.batch} x {args.seq_len}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads\n")
    print("| loader workers | tokens/s (one rank) |")
    print("| -------------- | ------------------- |")
    best = 0.0
    for w in (0, 1, 2):
        tps = loader_tps(data, args.seq_len, args.batch, w, args.seconds)
        best = max(best, tps)
        print(f"| {w:14} | {tps:19,.0f} |")
    vocab = int(src.tokenizer["vocab_size"])
    print("\n| model consumer              |   tokens/s | loader / model |")
    print("| --------------------------- | ---------- | -------------- |")
    for name, seq, batch in (("tiny", args.seq_len, args.batch), ("small", 512, 8)):
        tps = model_tps(name, vocab, seq, batch, steps=3)
        print(f"| {name + ' (CPU, fp32)':27} | {tps:10,.0f} | {best / tps:13.1f}x |")
    for spec in args.gpu_tps:
        name, tps = spec.split("=")
        print(f"| {name + ' (H100 bf16, measured)':27} | {float(tps):10,.0f} | {best / float(tps):13.1f}x |")


if __name__ == "__main__":
    main()
