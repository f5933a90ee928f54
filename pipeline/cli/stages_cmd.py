"""`thresher stages`: the stages in recipe order, or the README's table of them."""

from __future__ import annotations

from thresher.transforms import stage as stage_registry

NAME = "stages"
HELP = "list the stages in recipe order"


def add_arguments(p) -> None:
    p.add_argument("--markdown", action="store_true", help="the README's table: what each does, its drop reasons")


def stage_table() -> str:
    """The stages as a Markdown table (the README's), from the registry."""
    def codes(names) -> str:
        return ", ".join(f"`{n}`" for n in names)

    lines = ["| stage | what it does | drop reasons |", "| --- | --- | --- |"]
    for s in stage_registry.stages():
        reasons = codes(s.reasons) or "(none)"
        if s.errors:
            reasons += f"; errors: {codes(s.errors)}"
        lines.append(f"| `{s.name}` | {s.details or s.description} | {reasons} |")
    return "\n".join(lines)


def main(args, rest) -> int:
    if args.markdown:
        print(stage_table())
        return 0
    stages = stage_registry.stages()
    width = max(len(s.name) for s in stages)
    for s in stages:
        flag = "" if s.optional else "  (always runs)"
        print(f"{s.name:<{width}}  {s.description}{flag}")
    return 0
