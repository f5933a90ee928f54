"""`thresher config`: the full configuration, the defaults or config files resolved."""

from __future__ import annotations

from thresher.pipeline.config import load

NAME = "config"
HELP = "print the full configuration: the defaults, or a config file resolved"


def add_arguments(p) -> None:
    p.add_argument("config", nargs="*", metavar="CONFIG.yaml",
                   help="YAML configs, laid on each other in order (default: the built-in defaults)")


def main(args, rest) -> int:
    print(load(args.config).to_yaml(), end="")
    return 0
