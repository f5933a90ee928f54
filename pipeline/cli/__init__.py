"""`thresher`: one command for running jobs and looking at their results.

One module per command (``*_cmd.py``): ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``main(args, rest) -> exit code``; optionally ``split_args(argv, parser) -> (args, rest)`` when the
command takes flags that are not its own (``run``: Beam's options; ``train``: the trainer's). This module builds
the parser from them and turns errors into one line and an exit code. Commands import what they
need when they run, so ``thresher inspect`` never loads Beam and only ``train``, ``export`` and
``ablate`` load torch (through ``trainer_bridge``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from thresher.pipeline import __version__, interrupts
from thresher.pipeline.config import ConfigError
from thresher.pipeline.logs import configure

INTERRUPTED = "thresher: interrupted; the previous output is intact (rerun the command to do the job)"
COMMANDS = ("run", "config", "stages", "jobserver", "tokenizer", "classifier", "calibrate", "inspect", "sample",
            "train", "ablate", "export", "export-shards", "serve")


def _module(name: str):
    return importlib.import_module(f"thresher.pipeline.cli.{name.replace('-', '_')}_cmd")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The `thresher` parser and each command's own parser, by name."""
    parser = argparse.ArgumentParser(prog="thresher", description="Curate web crawls into LLM pre-training corpora.")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error (anywhere on the line)")
    parser.add_argument("--verbose", action="store_true",
                        help="show Beam's and gRPC's own log messages (anywhere on the line; hidden otherwise)")
    parser.add_argument("--version", action="version", version=f"thresher {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    commands = {}
    for name in COMMANDS:
        mod = _module(name)
        p = sub.add_parser(name, help=mod.HELP, **getattr(mod, "PARSER", {}))
        mod.add_arguments(p)
        p.set_defaults(func=mod.main, command=name)
        commands[name] = p
    return parser, commands


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """(Thresher's arguments, the rest: Beam's flags for `run`, the trainer's for `train`)."""
    parser, commands = build_parser()
    mod = _module(argv[0]) if argv and argv[0] in commands else None
    if mod is not None and hasattr(mod, "split_args"):
        args, rest = mod.split_args(argv[1:], commands[argv[0]])
        if args is not None:
            return args, rest
    return parser.parse_args(argv), []


def entry() -> None:
    """The `thresher` console script."""
    sys.exit(main())


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug, verbose = "--debug" in argv, "--verbose" in argv
    argv = [a for a in argv if a not in ("--debug", "--verbose")]
    configure(verbose=verbose)
    from thresher.pipeline.engines.jobserver import JobServerError  # no Beam import: cheap

    try:
        args, rest = parse(argv)
        return args.func(args, rest)
    except ConfigError as e:
        print(f"thresher: error: {e}", file=sys.stderr)
        return 2
    except JobServerError as e:  # its message ends with the job server's last log lines
        print(f"thresher: error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `thresher sample ... | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python flushes stdout again at exit
        return 0
    except KeyboardInterrupt:
        if debug:
            raise
        print(INTERRUPTED, file=sys.stderr)
        return 130
    except Exception as e:  # a failure we did not foresee, or the runner's: one line, the traceback on request
        if debug:
            raise
        if interrupts.interrupted():  # Ctrl-C, re-raised by Beam inside its own exception
            print(INTERRUPTED, file=sys.stderr)
            return 130
        lines = [line for line in str(e).strip().splitlines() if line.strip()]
        print(f"thresher: error: {type(e).__name__}: {lines[-1] if lines else ''} (--debug shows the traceback)",
              file=sys.stderr)
        return 1
