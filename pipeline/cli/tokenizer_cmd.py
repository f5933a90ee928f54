"""`thresher tokenizer train`: a byte-level BPE trained on a run's curated documents."""

from __future__ import annotations

import glob
import os

from thresher.pipeline.config import ConfigError

NAME = "tokenizer"
HELP = "tokenizer tools"


def add_arguments(p) -> None:
    train = p.add_subparsers(dest="tokenizer_command", required=True).add_parser(
        "train", help="train a byte-level BPE on a run's curated documents")
    train.add_argument("dir", help="a run directory (its documents/ are read)")
    train.add_argument("--vocab-size", type=int, required=True)
    train.add_argument("--output", required=True, metavar="tokenizer.json")
    train.add_argument("--eos-token", default="<|endoftext|>")
    train.add_argument("--max-docs", type=int, default=0, help="train on the first N documents (0: all)")


def main(args, rest) -> int:
    import pyarrow.parquet as pq

    from thresher.transforms.tokenization import MIN_VOCAB, train_bpe

    files = sorted(glob.glob(os.path.join(args.dir, "documents", "**", "*.parquet"), recursive=True))
    if not files:
        raise ConfigError(f"{args.dir}: no documents/*.parquet (is it a run directory?)")
    if args.vocab_size < MIN_VOCAB:
        raise ConfigError(f"--vocab-size must be at least {MIN_VOCAB} (256 bytes, EOS and the trainer's "
                          f"{MIN_VOCAB - 257} reserved special tokens)")

    def texts():
        n = 0
        for f in files:
            for t in pq.read_table(f, columns=["text"]).column("text").to_pylist():
                if args.max_docs and n >= args.max_docs:
                    return
                n += 1
                yield t

    tok = train_bpe(texts(), args.vocab_size, args.eos_token)
    tok.save(args.output)
    print(f"trained a {tok.get_vocab_size()}-token byte-level BPE on {args.dir} -> {args.output}")
    return 0
