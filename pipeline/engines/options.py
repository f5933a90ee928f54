"""`thresher run`'s command line: Thresher's own flags and Beam's pipeline options, in any order and
in either form, ``--flag value`` or ``--flag=value``.

Which Beam options take a value is read from Beam's own option classes (the parser Beam builds from
every `PipelineOptions` subclass), so ``--num_workers 3`` passes ``--num_workers=3`` through and its
``3`` is never taken for the config file; an option neither Thresher nor Beam knows is an error
that names it (with the closest known option), never a file name.
"""

from __future__ import annotations

import argparse
import difflib
import functools

from thresher.pipeline.config import ConfigError


@functools.cache
def beam_options() -> dict[str, bool]:
    """Every Beam pipeline option -> whether it takes a value."""
    from apache_beam.options.pipeline_options import PipelineOptions

    parser = argparse.ArgumentParser(add_help=False, conflict_handler="resolve")
    todo, seen = list(PipelineOptions.__subclasses__()), set()
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        todo += cls.__subclasses__()
        cls._add_argparse_args(parser)
    return {o: a.nargs != 0 for a in parser._actions for o in a.option_strings}


def split_run_args(argv: list[str], mine: set[str]) -> tuple[list[str], list[str]]:
    """(Thresher's own arguments, whose option strings are `mine`, for its parser to read; Beam's
    flags as ``--name=value``)."""
    beam = beam_options()
    ours, theirs = [], []
    i = 0
    while i < len(argv):
        token = argv[i]
        name, eq, _ = token.partition("=")
        if not token.startswith("-") or token == "-" or name in mine:
            ours.append(token)  # a positional, or one of ours (argparse reads its value)
        elif name in beam:
            if beam[name] and not eq:
                if i + 1 >= len(argv):
                    raise ConfigError(f"option {name} needs a value")
                theirs.append(f"{name}={argv[i + 1]}")
                i += 1
            else:
                theirs.append(token)
        else:
            close = difflib.get_close_matches(name, sorted(mine | set(beam)), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"unknown option {name}{hint}: not a thresher run option nor a Beam pipeline option")
        i += 1
    return ours, theirs
