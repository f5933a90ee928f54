"""`thresher train`: the FSDP trainer on run directories' shards, launched with torchrun."""

from __future__ import annotations

import subprocess
import sys

from thresher.pipeline.config import ConfigError

NAME = "train"
HELP = "pre-train a model on run directories' shards (FSDP, launched with torchrun)"
PARSER = {"add_help": False}


def add_arguments(p) -> None:
    p.add_argument("--nproc", type=int, default=1, help="processes (GPUs, or CPU ranks with gloo)")
    p.add_argument("-h", "--help", action="store_true")


def split_args(argv: list[str], parser):
    """(--nproc and --help, the trainer's own flags, passed through)."""
    return parser.parse_known_args(argv)


def main(args, trainer_args: list[str]) -> int:
    """Launch ``torchrun --nproc_per_node P -m thresher.trainer ARGS``."""
    from thresher.pipeline.tools import training

    try:
        training.require()
        if args.help:
            print("thresher train [--nproc P] TRAINER OPTIONS (launched with torchrun)\n", file=sys.stderr)
            return subprocess.call([*training.launcher(1), "--help"])
        if args.nproc < 1:
            raise ConfigError("--nproc must be >= 1")
        training.preflight(trainer_args, args.nproc)  # a bad flag, --data or --resume: one line, before torchrun
    except ConfigError as e:
        print(f"thresher train: {e}", file=sys.stderr)
        return 2
    return subprocess.call([*training.launcher(args.nproc), *trainer_args])
