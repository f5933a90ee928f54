"""`thresher export`: a training checkpoint as a Hugging Face Llama model folder (safetensors)."""

from __future__ import annotations

import sys

from thresher.pipeline.config import ConfigError

NAME = "export"
HELP = "write a training checkpoint as a Hugging Face Llama model (safetensors)"


def add_arguments(p) -> None:
    p.add_argument("checkpoint", help="a checkpoint (step-NNNNNNN) or a `thresher train --output` (its newest)")
    p.add_argument("--output", required=True, help="the model folder to write")
    p.add_argument("--tokenizer", metavar="tokenizer.json",
                   help="the data's tokenizer, when it is neither the default nor at the path the run recorded")


def main(args, rest) -> int:
    from thresher.pipeline.tools import training

    try:
        training.require(("torch", "safetensors"))
        done = training.export(args.checkpoint, args.output, args.tokenizer)
    except ConfigError as e:
        print(f"thresher export: {e}", file=sys.stderr)
        return 2
    tok = "tokenizer.json included" if done["tokenizer"] else "no tokenizer found (pass --tokenizer)"
    print(f"exported {done['checkpoint']} (step {done['step']}, {done['params']:,} parameters) to {done['output']}: "
          f"model.safetensors, config.json (Llama), {tok}")
    return 0
