"""`thresher export-shards`: an existing run's token shards in other trainers' formats."""

from __future__ import annotations

import os
import sys

NAME = "export-shards"
HELP = "write a run's token shards as Megatron's indexed dataset or llm.c/nanoGPT token files"
FORMATS = ("megatron", "flat")


def add_arguments(p) -> None:
    p.add_argument("run", help="a run directory (or its shards/ folder)")
    p.add_argument("--format", action="append", choices=FORMATS, required=True,
                   help="megatron: .bin/.idx pairs (Megatron-LM, NeMo); flat: llm.c's token files (nanoGPT's "
                        "after their 1,024-byte header); repeat for both")
    p.add_argument("--output", required=True, help="a new folder: OUTPUT/megatron/, OUTPUT/flat/, OUTPUT/manifest.json")


def main(args, rest) -> int:
    from thresher.transforms.shards import convert

    try:
        m = convert(args.run, args.output, args.format)
    except (OSError, ValueError, KeyError) as e:
        print(f"thresher export-shards: {e}", file=sys.stderr)
        return 2
    sizes = ", ".join(f"{f} {b:,} bytes" for f, b in m.bytes_by_format().items())
    print(f"exported {len(m.shards)} shards ({m.rows:,} documents, {m.tokens:,} tokens) to {args.output}: {sizes}")
    if "megatron" in m.formats:
        print(f"Megatron-LM: --data-path {m.blend(os.path.abspath(args.output))}")
    return 0
