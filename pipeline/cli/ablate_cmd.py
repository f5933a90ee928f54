"""`thresher ablate`: curate each recipe, train the same model on each, compare eval loss."""

from __future__ import annotations

import os
import sys

from thresher.pipeline.config import ConfigError

NAME = "ablate"
HELP = "curate each recipe, train the same model on each, compare eval loss on one held-out set"


def add_arguments(p) -> None:
    p.add_argument("recipes", nargs="*", metavar="RECIPE.yaml", help="the recipes to compare")
    p.add_argument("--input", action="append", help="input for every recipe (default: each recipe's own)")
    p.add_argument("--runs", nargs="+", metavar="DIR", help="compare existing run directories instead of recipes")
    p.add_argument("--eval-data", metavar="DIR",
                   help="a run directory to evaluate on (default: a held-out share of the input, extracted, not filtered)")
    p.add_argument("--output", required=True, help="the ablation's folder (runs/, eval/, train/, ablation.html)")
    p.add_argument("--tokens", type=int, required=True, help="training tokens per recipe (the same for all)")
    p.add_argument("--model", default="tiny", help="model size (default: %(default)s)")
    p.add_argument("--objective", default="clm", choices=("clm", "mlm", "span", "fim"),
                   help="pre-training objective (default: %(default)s)")
    p.add_argument("--nproc", type=int, default=1, help="training processes (default: %(default)s)")
    p.add_argument("--seq-len", type=int, default=256, help="default: %(default)s")
    p.add_argument("--batch-size", type=int, default=8, help="per process (default: %(default)s)")
    p.add_argument("--lr", type=float, help="peak learning rate (default: the trainer's for the model size)")
    p.add_argument("--evals", type=int, default=4, help="evaluations (and checkpoints) per training (default: %(default)s)")
    p.add_argument("--eval-batches", type=int, default=8, help="batches per evaluation (default: %(default)s)")
    p.add_argument("--holdout", type=float, default=0.05, help="share of the input held out (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="model init, data order and holdout (default: %(default)s)")


def main(args, rest) -> int:
    from thresher.pipeline.tools import training

    try:
        training.require()
    except ConfigError as e:
        print(f"thresher ablate: {e}", file=sys.stderr)
        return 2
    from thresher.pipeline.tools.ablate import ablate, render_table

    if args.tokens < 1 or args.nproc < 1 or args.evals < 1 or not 0 < args.holdout < 1:
        raise ConfigError("--tokens, --nproc and --evals must be positive, --holdout between 0 and 1")
    res = ablate(args)
    print(render_table(res))
    print(f"ablation page: {os.path.join(os.path.abspath(args.output), 'ablation.html')}")
    return 0
