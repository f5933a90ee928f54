"""FineWeb's filters (Penedo et al. 2024), with datatrove's reason names."""

from __future__ import annotations

from dataclasses import dataclass

from thresher.transforms.filters.base import Filter, fired, register_filter
from thresher.transforms.filters.gopher import duplicates
from thresher.transforms.text import TERMINAL, analyse

_TERMINAL = tuple(TERMINAL)

# --- FineWeb ---------------------------------------------------------------------------------


@register_filter(name="fineweb", order=70,
                 description="FineWeb: line punctuation, short lines, duplicated lines, list-like documents",
                 details=("FineWeb's rules: lines ending in punctuation >= 12%, lines of <= 30 "
                          "characters <= 67%, duplicated-line characters <= 1%, newlines per word "
                          "<= 0.3"),
                 reasons=("line_punct_ratio", "short_line_ratio", "char_dup_ratio", "list_ratio", "empty"))
@dataclass
class FineWebQuality(Filter):
    RULES = {"line_punct_thr": ("line_punct_ratio", "<"), "short_line_thr": ("short_line_ratio", ">"),
             "char_duplicates_ratio": ("char_dup_ratio", ">"), "new_line_ratio": ("list_ratio", ">")}
    line_punct_thr: float = 0.12
    line_punct_exclude_zero: bool = False
    short_line_thr: float = 0.67
    short_line_length: int = 30
    char_duplicates_ratio: float = 0.01
    new_line_ratio: float = 0.3

    def score(self, text: str, lang: str | None = None) -> dict:
        lines = [line for line in text.split("\n") if line.strip()]
        if not lines:
            return {"lines": 0}
        view = analyse(text)
        # A CJK character carries about as much as three Latin ones: a 10-character line of
        # Chinese is not a "short line" in FineWeb's sense.
        short = self.short_line_length / 3 if view.char_words else self.short_line_length
        body = len(text.replace("\n", ""))
        return {
            "lines": len(lines),
            "line_punct_ratio": sum(line.endswith(_TERMINAL) for line in lines) / len(lines),
            "short_line_ratio": sum(len(line) <= short for line in lines) / len(lines),
            "char_dup_ratio": duplicates(lines)[1] / body if body else 0.0,
            "list_ratio": text.count("\n") / max(1, len(view.words)),
        }

    def keep(self, s: dict, lang: str | None = None) -> str | None:
        if not s["lines"]:
            return "empty"
        r = s["line_punct_ratio"]
        if r < self.line_punct_thr and not (r == 0 and self.line_punct_exclude_zero):
            return fired("line_punct_ratio", "line_punct_ratio", r, "<", self.line_punct_thr)
        if s["short_line_ratio"] > self.short_line_thr:
            return fired("short_line_ratio", "short_line_ratio", s["short_line_ratio"], ">", self.short_line_thr)
        if s["char_dup_ratio"] > self.char_duplicates_ratio:
            return fired("char_dup_ratio", "char_dup_ratio", s["char_dup_ratio"], ">", self.char_duplicates_ratio)
        if s["list_ratio"] > self.new_line_ratio:
            return fired("list_ratio", "list_ratio", s["list_ratio"], ">", self.new_line_ratio)
        return None
