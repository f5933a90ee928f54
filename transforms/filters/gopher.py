"""Gopher's repetition and quality rules (Rae et al. 2021, table A1), with datatrove's reason names.

Words come from ``transforms.text`` (script-aware); stop words and word-length bounds are per
language, and a rule a language has no data for is switched off rather than misapplied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from thresher.transforms.filters.base import Filter, fired, register_filter
from thresher.transforms.text import LANGUAGES, analyse, is_punctuation, rules_for

# --- Gopher repetition -----------------------------------------------------------------------


def duplicates(items: list[str]) -> tuple[int, int]:
    """(elements that repeat an earlier one, their characters)."""
    seen: set[str] = set()
    n = chars = 0
    for x in items:
        if x in seen:
            n += 1
            chars += len(x)
        else:
            seen.add(x)
    return n, chars


class _NGrams:
    """A document's word n-grams as 64-bit hashes (numpy), for the repetition measures.

    Words become integer ids; the n-gram at i hashes ids[i..i+n) polynomially (wrapping uint64
    arithmetic). With 64 bits a collision in one document is practically impossible, and the
    hashes let the counts run in numpy instead of over Python tuples.
    """

    _P = np.uint64(1_000_003)

    def __init__(self, words: list[str]):
        index: dict[str, int] = {}
        ids = [index.setdefault(w, len(index) + 1) for w in words]
        self.ids = np.array(ids, dtype=np.uint64)
        self.cum = np.concatenate([[0], np.cumsum([len(w) for w in words], dtype=np.int64)])
        self._hashes = {1: self.ids}

    def hashes(self, n: int) -> np.ndarray:
        if n not in self._hashes:
            prev = self.hashes(n - 1)
            with np.errstate(over="ignore"):
                self._hashes[n] = prev[:-1] * self._P + self.ids[n - 1:]
        return self._hashes[n]

    def chars(self, i, n: int):
        """Characters of the n-gram(s) at i, without separators."""
        return self.cum[i + n] - self.cum[i]

    def top_chars(self, n: int) -> int:
        """Characters covered by the most frequent n-gram: (its length with spaces) x its count.
        Ties go to the n-gram seen first, as ``Counter.most_common`` does."""
        if len(self.ids) < n:
            return 0
        _, first, counts = np.unique(self.hashes(n), return_index=True, return_counts=True)
        best = counts.max()
        i = int(first[counts == best].min())
        return int((self.chars(i, n) + n - 1) * best)

    def duplicate_chars(self, n: int) -> int:
        """Characters in n-grams that repeat an earlier n-gram; after a repeat the scan jumps past
        it, so overlapping repeats count once (Gopher's definition, as datatrove implements it)."""
        if len(self.ids) < n:
            return 0
        h = self.hashes(n)
        _, first = np.unique(h, return_index=True)
        if len(first) == len(h):
            return 0  # no n-gram repeats
        seen_before = np.ones(len(h), dtype=bool)
        seen_before[first] = False
        start = int(np.argmax(seen_before))  # every position before the first repeat is visited
        seen = set(h[:start].tolist())
        hl = h.tolist()
        chars, i, end = 0, start, len(hl)
        while i < end:
            x = hl[i]
            if x in seen:
                chars += int(self.chars(i, n))
                i += n
            else:
                seen.add(x)
                i += 1
        return chars


_PARAGRAPHS = re.compile(r"\n{2,}")
_LINES = re.compile(r"\n+")


@register_filter(name="gopher_repetition", order=40,
                 description="Gopher repetition: duplicate lines/paragraphs/n-grams",
                 details=("Gopher's repetition rules (Rae et al. 2021, table A1): duplicate lines "
                          "/ paragraphs and their characters, top 2/3/4-gram character share, "
                          "duplicated 5..10-gram character share"),
                 reasons=("dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac",
                          "top_2_gram", "top_3_gram", "top_4_gram", *(f"duplicated_{n}_n_grams" for n in range(5, 11)),
                          "empty"))
@dataclass
class GopherRepetition(Filter):
    """Every published threshold (Rae et al. 2021, table A1), named like the reason it gives."""

    dup_line_frac: float = 0.3
    dup_para_frac: float = 0.3
    dup_line_char_frac: float = 0.2
    dup_para_char_frac: float = 0.2
    top_2_gram: float = 0.20
    top_3_gram: float = 0.18
    top_4_gram: float = 0.16
    duplicated_5_n_grams: float = 0.15
    duplicated_6_n_grams: float = 0.14
    duplicated_7_n_grams: float = 0.13
    duplicated_8_n_grams: float = 0.12
    duplicated_9_n_grams: float = 0.11
    duplicated_10_n_grams: float = 0.10

    @property
    def top_ngrams(self) -> dict[int, float]:
        return {n: getattr(self, f"top_{n}_gram") for n in (2, 3, 4)}

    @property
    def dup_ngrams(self) -> dict[int, float]:
        return {n: getattr(self, f"duplicated_{n}_n_grams") for n in range(5, 11)}

    def score(self, text: str, lang: str | None = None) -> dict:
        if not text:
            return {"chars": 0}
        n = len(text)
        paras = _PARAGRAPHS.split(text.strip())
        para_dups, para_chars = duplicates(paras)
        lines = _LINES.split(text)
        line_dups, line_chars = duplicates(lines)
        s = {"chars": n, "dup_para_frac": para_dups / len(paras), "dup_para_char_frac": para_chars / n,
             "dup_line_frac": line_dups / len(lines), "dup_line_char_frac": line_chars / n}
        grams = _NGrams(analyse(text).words)
        for k in self.top_ngrams:
            s[f"top_{k}_gram"] = grams.top_chars(k) / n
        for k in self.dup_ngrams:
            s[f"duplicated_{k}_n_grams"] = grams.duplicate_chars(k) / n
        return s

    def keep(self, s: dict, lang: str | None = None) -> str | None:
        if not s["chars"]:
            return "empty"
        for key in ("dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac"):
            if s[key] > getattr(self, key):
                return fired(key, key, s[key], ">", getattr(self, key))
        for k, limit in self.top_ngrams.items():
            if s[f"top_{k}_gram"] > limit:
                return fired(f"top_{k}_gram", f"top_{k}_gram", s[f"top_{k}_gram"], ">", limit)
        for k, limit in self.dup_ngrams.items():
            key = f"duplicated_{k}_n_grams"
            if s[key] > limit:
                return fired(key, key, s[key], ">", limit)
        return None


# --- Gopher quality --------------------------------------------------------------------------


@register_filter(name="gopher_quality", order=50,
                 description="Gopher quality: length, word length, symbols, bullets, stop words",
                 details=("Gopher's quality rules: 50..100,000 words, mean word length 3..10, `#` "
                          "and ellipsis per word <= 0.1, bullet lines <= 90%, ellipsis-ending "
                          "lines <= 30%, >= 80% of words with a letter, >= 2 stop words"),
                 reasons=("gopher_short_doc", "gopher_long_doc", "gopher_below_avg_threshold",
                          "gopher_above_avg_threshold", "gopher_too_many_hashes", "gopher_too_many_ellipsis",
                          "gopher_too_many_bullets", "gopher_too_many_end_ellipsis", "gopher_below_alpha_threshold",
                          "gopher_enough_stop_words"))
@dataclass
class GopherQuality(Filter):
    min_doc_words: int = 50
    max_doc_words: int = 100_000
    min_avg_word_length: float = 3.0
    max_avg_word_length: float = 10.0
    max_symbol_word_ratio: float = 0.1
    max_bullet_lines_ratio: float = 0.9
    max_ellipsis_lines_ratio: float = 0.3
    min_alpha_words_ratio: float = 0.8
    min_stop_words: int = 2
    stop_words: list[str] | None = None  # override the language's list
    fallback_lang: str = "en"  # rules for documents without a language (langid off)

    def score(self, text: str, lang: str | None = None) -> dict:
        view = analyse(text)
        words = view.words
        n = len(words)
        content = [w for w in words if not is_punctuation(w)]
        rules = rules_for(lang, self.fallback_lang)
        lines = view.lines or [""]
        stops = frozenset(self.stop_words) if self.stop_words is not None else rules.stop_words
        if lang is None and view.char_words and self.stop_words is None:  # no label: the script decides
            stops = LANGUAGES["zh"].stop_words | LANGUAGES["ja"].stop_words
        return {
            "words": len(content),
            "mean_word_length": (sum(map(len, content)) / len(content)) if content else 0.0,
            "char_words": view.char_words,
            "hash_ratio": text.count("#") / n if n else 0.0,
            "ellipsis_ratio": (text.count("...") + text.count("…")) / n if n else 0.0,
            "bullet_lines": sum(s.lstrip().startswith(("•", "-")) for s in lines) / len(lines),
            "ellipsis_lines": sum(s.rstrip().endswith(("...", "…")) for s in lines) / len(lines),
            "alpha_words": (sum(any(c.isalpha() for c in w) for w in words) / n) if n else 0.0,
            "stop_words": len(stops.intersection(words)) if stops is not None else None,
        }

    def keep(self, s: dict, lang: str | None = None) -> str | None:
        rules = rules_for(lang, self.fallback_lang)
        scale = 1.5 if s["char_words"] else rules.word_scale  # words are characters: 1.5 per word
        if self.min_doc_words and s["words"] < self.min_doc_words * scale:
            return fired("gopher_short_doc", "words", s["words"], "<", self.min_doc_words * scale)
        if self.max_doc_words and s["words"] > self.max_doc_words * scale:
            return fired("gopher_long_doc", "words", s["words"], ">", self.max_doc_words * scale)
        if rules.word_length is not None and not s["char_words"]:
            lo, hi = self.min_avg_word_length, self.max_avg_word_length
            if rules.word_length != (3, 10):  # the language has its own bounds (Korean, Vietnamese)
                lo, hi = rules.word_length
            if lo and s["mean_word_length"] < lo:
                return fired("gopher_below_avg_threshold", "mean_word_length", s["mean_word_length"], "<", lo)
            if hi and s["mean_word_length"] > hi:
                return fired("gopher_above_avg_threshold", "mean_word_length", s["mean_word_length"], ">", hi)
        if self.max_symbol_word_ratio and s["hash_ratio"] > self.max_symbol_word_ratio:
            return fired("gopher_too_many_hashes", "hash_ratio", s["hash_ratio"], ">", self.max_symbol_word_ratio)
        if self.max_symbol_word_ratio and s["ellipsis_ratio"] > self.max_symbol_word_ratio:
            return fired("gopher_too_many_ellipsis", "ellipsis_ratio", s["ellipsis_ratio"], ">",
                         self.max_symbol_word_ratio)
        if self.max_bullet_lines_ratio and s["bullet_lines"] > self.max_bullet_lines_ratio:
            return fired("gopher_too_many_bullets", "bullet_lines", s["bullet_lines"], ">", self.max_bullet_lines_ratio)
        if self.max_ellipsis_lines_ratio and s["ellipsis_lines"] > self.max_ellipsis_lines_ratio:
            return fired("gopher_too_many_end_ellipsis", "ellipsis_lines", s["ellipsis_lines"], ">",
                         self.max_ellipsis_lines_ratio)
        if self.min_alpha_words_ratio and s["alpha_words"] < self.min_alpha_words_ratio:
            return fired("gopher_below_alpha_threshold", "alpha_words", s["alpha_words"], "<",
                         self.min_alpha_words_ratio)
        if self.min_stop_words and s["stop_words"] is not None and s["stop_words"] < self.min_stop_words:
            return fired("gopher_enough_stop_words", "stop_words", s["stop_words"], "<", self.min_stop_words)
        return None
