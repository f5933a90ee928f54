"""The `long_lines` stage: drop documents with a line longer than `max_line_chars` (minified code,
data blobs, tables flattened into one line)."""

from __future__ import annotations

from dataclasses import dataclass

from thresher.transforms.filters.base import Filter, register_filter
from thresher.transforms.stage import check


@register_filter(name="long_lines", order=75, reasons=("line_too_long",),
                 description="drop documents with a line longer than max_line_chars")
@dataclass
class LongLines(Filter):
    max_line_chars: int = 5000

    def validate(self, path: str) -> None:
        check(self.max_line_chars >= 1, f"{path}.max_line_chars", "must be >= 1")

    def score(self, text: str, lang: str | None = None) -> dict:
        return {"longest_line": max((len(line) for line in text.split("\n")), default=0)}

    def keep(self, signals: dict, lang: str | None = None) -> str | None:
        return "line_too_long" if signals["longest_line"] > self.max_line_chars else None
