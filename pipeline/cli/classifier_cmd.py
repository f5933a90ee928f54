"""`thresher classifier train`: a fastText quality classifier (floret) on positive and negative texts."""

from __future__ import annotations

import os

from thresher.pipeline.config import ConfigError

NAME = "classifier"
HELP = "quality classifier tools"


def add_arguments(p) -> None:
    ct = p.add_subparsers(dest="classifier_command", required=True).add_parser(
        "train", help="train a fastText quality classifier (floret) on positive and negative texts",
        description="SRC is a run directory (its kept documents), RUN:lang=LANG, RUN:reason=REASON "
        "(its dropped documents), a JSONL file or a Parquet file or folder. Prints held-out "
        "precision, recall and ROC AUC, and writes a model card (MODEL.card.md) beside the model.")
    ct.add_argument("--positive", required=True, action="append", metavar="SRC", help="texts to score high (repeatable)")
    ct.add_argument("--negative", required=True, action="append", metavar="SRC", help="texts to score low (repeatable)")
    ct.add_argument("--output", required=True, metavar="MODEL.bin")
    ct.add_argument("--field", default="text", help="the text field of JSONL/Parquet sources (default: %(default)s)")
    ct.add_argument("--word-ngrams", type=int, default=2, help="default: %(default)s (DCLM's classifier: bigrams)")
    ct.add_argument("--dim", type=int, default=64, help="default: %(default)s")
    ct.add_argument("--epoch", type=int, default=20, help="default: %(default)s")
    ct.add_argument("--lr", type=float, default=0.5, help="default: %(default)s")
    ct.add_argument("--min-count", type=int, default=1, help="words seen fewer times are left out of the model "
                                                             "(smaller models; default: %(default)s)")
    ct.add_argument("--held-out", type=float, default=0.2, help="share of each class held out for the metrics "
                                                                 "(default: %(default)s)")
    ct.add_argument("--max-docs", type=int, default=0, help="at most N texts of each class, a seeded sample (0: all)")
    ct.add_argument("--lowercase", action="store_true", help="lower-case texts (then score with lowercase: true)")
    ct.add_argument("--seed", type=int, default=0, help="default: %(default)s")


def main(args, rest) -> int:
    from thresher.pipeline.tools.texts import read_texts
    from thresher.transforms.classifier import TrainParams, model_card, train
    from thresher.transforms.hashing import seeded_fraction

    if not 0 < args.held_out < 1:
        raise ConfigError("--held-out must be between 0 and 1")

    def gather(sources: list[str]) -> list[str]:
        texts = [t for src in sources for t in read_texts(src, args.field)]
        if args.max_docs and len(texts) > args.max_docs:  # a seeded sample, the same on every call
            texts = sorted(texts, key=lambda t: seeded_fraction(t, args.seed))[:args.max_docs]
        return texts

    pos, neg = gather(args.positive), gather(args.negative)
    params = TrainParams(word_ngrams=args.word_ngrams, dim=args.dim, epoch=args.epoch, lr=args.lr, min_count=args.min_count,
                         held_out=args.held_out, seed=args.seed, lowercase=args.lowercase)
    try:
        result = train(pos, neg, args.output, params)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    sources = {"positive": ", ".join(args.positive), "negative": ", ".join(args.negative)}
    card = os.path.splitext(args.output)[0] + ".card.md"
    with open(card, "w", encoding="utf-8") as fh:
        fh.write(model_card(args.output, sources, result, params))
    m, c = result["held_out_metrics"], result["counts"]
    print(f"trained on {c['train']['positives']:,} positives and {c['train']['negatives']:,} negatives -> {args.output}")
    print(f"held out ({c['held_out']['positives']:,} + {c['held_out']['negatives']:,}), score >= 0.5: "
          f"precision {m['precision']:.3f}  recall {m['recall']:.3f}  accuracy {m['accuracy']:.3f}  AUC {m['auc']:.3f}")
    print(f"model card: {card}")
    return 0
