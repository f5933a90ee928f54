"""`thresher calibrate`: per-language thresholds from an annotate-mode run."""

from __future__ import annotations

from thresher.pipeline.config import ConfigError

NAME = "calibrate"
HELP = ("per-language thresholds from an annotate-mode run: each rule removes the share of every language it "
        "removes of the reference's")
PARSER = {"description": "Reads a run whose filters ran with annotate: true, picks for every language "
                         "with enough documents and every calibratable rule the threshold that removes the same "
                         "share of that language's documents as the rule removes of the reference language's, "
                         "prints old and new thresholds and kept shares, and writes a config fragment "
                         "(thresher run RECIPE.yaml THRESHOLDS.yaml)."}


def add_arguments(p) -> None:
    p.add_argument("dir", help="an annotate-mode run directory")
    p.add_argument("--reference", default="en", help="the language whose shares the others match (default: %(default)s)")
    p.add_argument("--output", required=True, metavar="THRESHOLDS.yaml")
    p.add_argument("--min-docs", type=int, default=50,
                   help="languages with fewer documents keep their thresholds (default: %(default)s)")
    p.add_argument("--method", choices=("sequential", "marginal"), default="sequential",
                   help="sequential (default): each rule matches the reference's share among the documents the "
                        "rules before it kept; marginal: among all documents")
    p.add_argument("--min-z", type=float, default=2.0,
                   help="move a threshold only where the language's share differs from the reference's by this "
                        "many standard errors (default: %(default)s; 0: always)")
    p.add_argument("--url-contains", metavar="TEXT",
                   help="calibrate on the documents whose URL contains TEXT (e.g. a site translated into "
                        "every language)")


def main(args, rest) -> int:
    from thresher.pipeline.tools.calibrate import calibrate, read_rows, render, thresholds_yaml

    if args.min_docs < 1:
        raise ConfigError("--min-docs must be at least 1")
    rows, cfg = read_rows(args.dir, args.url_contains)
    changes, report, _ = calibrate(rows, cfg, args.reference, args.min_docs, args.method, args.min_z)
    print(render(changes, report, args.reference))
    with open(args.output, "w", encoding="utf-8") as fh:
        fh.write(thresholds_yaml(changes, args.dir, args.reference))
    print(f"\nthresholds for {len(report) - 1} language(s), {len(changes)} moved -> {args.output}")
    return 0
