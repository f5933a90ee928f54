"""`thresher sample`: the documents a rule dropped, or kept ones (by language)."""

from __future__ import annotations

import os

from thresher.pipeline.config import ConfigError

NAME = "sample"
HELP = "print dropped documents for a reason, or kept ones (by language)"


def add_arguments(p) -> None:
    p.add_argument("dir")
    p.add_argument("--reason", metavar="REASON", help="a drop reason (stage.reason or reason); none: kept documents")
    p.add_argument("--lang", help="only documents of this language")
    p.add_argument("-n", type=int, default=5, help="how many (default 5)")
    p.add_argument("--seed", type=int, default=0, help="another seed shows other documents")
    p.add_argument("--chars", type=int, default=600, help="characters of text to show")


def main(args, rest) -> int:
    from thresher.pipeline.tools.sample import pick, reasons, render

    if not os.path.exists(os.path.join(args.dir, "stats.json")):
        raise ConfigError(f"{args.dir}: no stats.json (is it a run directory?)")
    known = reasons(args.dir)
    if args.reason and not any(k == args.reason or k.endswith("." + args.reason) for k in known):
        listing = ", ".join(f"{k} ({v})" for k, v in known.items()) or "none"
        raise ConfigError(f"no document was dropped for {args.reason!r} in this run; reasons: {listing}")
    if args.lang:
        from thresher.transforms.lid_models import known_languages, normalise

        known = known_languages()
        if normalise(args.lang) != args.lang and normalise(args.lang) in known:
            raise ConfigError(f"--lang {args.lang}: written {normalise(args.lang)} here (ISO 639-1)")
        if args.lang not in known:
            raise ConfigError(f"--lang {args.lang}: not a language code lid.176 knows "
                              f"(known: {', '.join(sorted(known))})")
    rows = pick(args.dir, args.reason, args.lang, args.n, args.seed)
    if not rows:
        print("no such documents" + (" in rejected/ (rejected_sample may have left them out)" if args.reason else ""))
        return 1
    print(render(rows, args.chars))
    return 0
