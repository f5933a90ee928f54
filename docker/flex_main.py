"""Entry point of the Dataflow Flex Template: the template's parameters are ``thresher run`` flags.

Dataflow passes parameters as ``--name=value``; ``--config`` names the YAML config (a local path in
the image, or gs://) and everything else goes to ``thresher run`` unchanged (Beam options included).
"""

import sys

from thresher.pipeline.cli import main


def to_run_args(argv: list[str]) -> list[str]:
    args, config = [], None
    for a in argv:
        if a.startswith("--config="):
            config = a.split("=", 1)[1]
        else:
            args.append(a)
    return ["run", *([config] if config else []), "--runner", "DataflowRunner", "--no-progress", *args]


if __name__ == "__main__":
    sys.exit(main(to_run_args(sys.argv[1:])))
