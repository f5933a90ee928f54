"""The published quality heuristics: Gopher repetition, Gopher quality, C4 and FineWeb.

Each filter splits *scoring* from *keeping* (as NeMo Curator does): ``score(text, lang)`` returns
a dict of signals, ``keep(signals)`` returns ``None`` or the reason the document goes. A pipeline
stage either drops on the reason or, in annotate mode, records the signals and the reason as
columns and keeps everything, so thresholds can be chosen afterwards.

Defaults are the published ones (Gopher: Rae et al. 2021, table A1; C4: Raffel et al. 2020 and the
TFDS implementation; FineWeb: Penedo et al. 2024), with datatrove's reason names. Words come from
``transforms.text`` (script-aware); stop words and word-length bounds are per language, and a
rule a language has no data for is switched off rather than misapplied.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
from dataclasses import dataclass, field

from transforms.text import LANGUAGES, TERMINAL, analyse, is_char_words, is_punctuation, rules_for, sentences, tokenize

# --- Gopher repetition -----------------------------------------------------------------------


def _duplicates(items: list[str]) -> tuple[int, int]:
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


@dataclass
class GopherRepetition:
    name = "gopher_repetition"
    dup_line_frac: float = 0.3
    dup_para_frac: float = 0.3
    dup_line_char_frac: float = 0.2
    dup_para_char_frac: float = 0.2
    top_ngrams: dict = field(default_factory=lambda: {2: 0.20, 3: 0.18, 4: 0.16})
    dup_ngrams: dict = field(default_factory=lambda: {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10})

    def score(self, text: str, lang: str | None = None) -> dict:
        if not text:
            return {"chars": 0}
        n = len(text)
        paras = _PARAGRAPHS.split(text.strip())
        para_dups, para_chars = _duplicates(paras)
        lines = _LINES.split(text)
        line_dups, line_chars = _duplicates(lines)
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
                return key
        for k, limit in self.top_ngrams.items():
            if s[f"top_{k}_gram"] > limit:
                return f"top_{k}_gram"
        for k, limit in self.dup_ngrams.items():
            if s[f"duplicated_{k}_n_grams"] > limit:
                return f"duplicated_{k}_n_grams"
        return None


# --- Gopher quality --------------------------------------------------------------------------


@dataclass
class GopherQuality:
    name = "gopher_quality"
    min_doc_words: int = 50
    max_doc_words: int = 100_000
    min_avg_word_length: float = 3
    max_avg_word_length: float = 10
    max_symbol_word_ratio: float = 0.1
    max_bullet_lines_ratio: float = 0.9
    max_ellipsis_lines_ratio: float = 0.3
    min_alpha_words_ratio: float = 0.8
    min_stop_words: int = 2
    stop_words: list[str] | None = None  # override the language's list
    fallback_lang: str = "en"

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
            return "gopher_short_doc"
        if self.max_doc_words and s["words"] > self.max_doc_words * scale:
            return "gopher_long_doc"
        if rules.word_length is not None and not s["char_words"]:
            lo, hi = self.min_avg_word_length, self.max_avg_word_length
            if rules.word_length != (3, 10):  # the language has its own bounds (Korean, Vietnamese)
                lo, hi = rules.word_length
            if lo and s["mean_word_length"] < lo:
                return "gopher_below_avg_threshold"
            if hi and s["mean_word_length"] > hi:
                return "gopher_above_avg_threshold"
        if self.max_symbol_word_ratio and s["hash_ratio"] > self.max_symbol_word_ratio:
            return "gopher_too_many_hashes"
        if self.max_symbol_word_ratio and s["ellipsis_ratio"] > self.max_symbol_word_ratio:
            return "gopher_too_many_ellipsis"
        if self.max_bullet_lines_ratio and s["bullet_lines"] > self.max_bullet_lines_ratio:
            return "gopher_too_many_bullets"
        if self.max_ellipsis_lines_ratio and s["ellipsis_lines"] > self.max_ellipsis_lines_ratio:
            return "gopher_too_many_end_ellipsis"
        if self.min_alpha_words_ratio and s["alpha_words"] < self.min_alpha_words_ratio:
            return "gopher_below_alpha_threshold"
        if self.min_stop_words and s["stop_words"] is not None and s["stop_words"] < self.min_stop_words:
            return "gopher_enough_stop_words"
        return None


# --- C4 --------------------------------------------------------------------------------------

CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
C4_END = (".", "?", "!", '"', "'", "。", "！", "？", "｡", "؟", "۔", "।", "॥", "։", "።")
POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")


@dataclass
class C4Quality:
    """Line filter and document filter: ``score`` also returns the text of the kept lines."""

    name = "c4"
    remove_citations: bool = True
    filter_no_terminal_punct: bool = True
    min_num_sentences: int = 5  # -1: off
    min_words_per_line: int = 3  # -1: off
    max_word_length: int = 1000  # -1: off
    filter_lorem_ipsum: bool = True
    filter_javascript: bool = True
    filter_curly_bracket: bool = True
    filter_policy: bool = True
    bad_words: list[str] = field(default_factory=list)  # drop the document if any appears (whole words)

    def __post_init__(self):
        self._bad = (re.compile(r"\b(?:" + "|".join(map(re.escape, self.bad_words)) + r")\b", re.I)
                     if self.bad_words else None)

    def score(self, text: str, lang: str | None = None) -> dict:
        kept, sentences_n, doc_reason = [], 0, None
        removed = Counter()
        for line in text.splitlines():
            line = line.strip()
            chars = is_char_words(line)
            tokens = tokenize(line) if chars else line.split()
            if self.max_word_length != -1 and any(len(w) > self.max_word_length for w in tokens):
                removed["too_long_word"] += 1
                continue
            if self.remove_citations:
                line = CITATION.sub("", line)
            if self.filter_no_terminal_punct and (not line.endswith(C4_END) or line.endswith("...")):
                removed["no_terminal_punct"] += 1
                continue
            n_words = sum(not is_punctuation(t) for t in tokens) if chars else len(tokens)
            if n_words < self.min_words_per_line:
                removed["too_few_words"] += 1
                continue
            low = line.lower()
            if self.filter_lorem_ipsum and "lorem ipsum" in low:
                doc_reason = "lorem_ipsum"
                break
            if self.filter_javascript and "javascript" in low:
                removed["javascript"] += 1
                continue
            if self.filter_curly_bracket and "{" in line:
                doc_reason = "curly_bracket"
                break
            if self.filter_policy and any(p in low for p in POLICY):
                removed["policy"] += 1
                continue
            if self.min_num_sentences != -1:
                sentences_n += len(sentences(line))
            kept.append(line)
        if doc_reason is None and self._bad is not None and self._bad.search(text):
            doc_reason = "bad_words"
        return {"sentences": sentences_n, "lines_kept": len(kept), "lines_removed": sum(removed.values()),
                "doc_reason": doc_reason, "text": "\n".join(kept).strip()}

    def keep(self, s: dict, lang: str | None = None) -> str | None:
        if s["doc_reason"]:
            return s["doc_reason"]
        if s["sentences"] < self.min_num_sentences:
            return "too_few_sentences"
        return None


# --- FineWeb ---------------------------------------------------------------------------------


@dataclass
class FineWebQuality:
    name = "fineweb"
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
            "line_punct_ratio": sum(line.endswith(tuple(TERMINAL)) for line in lines) / len(lines),
            "short_line_ratio": sum(len(line) <= short for line in lines) / len(lines),
            "char_dup_ratio": _duplicates(lines)[1] / body if body else 0.0,
            "list_ratio": text.count("\n") / max(1, len(view.words)),
        }

    def keep(self, s: dict, lang: str | None = None) -> str | None:
        if not s["lines"]:
            return "empty"
        r = s["line_punct_ratio"]
        if r < self.line_punct_thr and not (r == 0 and self.line_punct_exclude_zero):
            return "line_punct_ratio"
        if s["short_line_ratio"] > self.short_line_thr:
            return "short_line_ratio"
        if s["char_dup_ratio"] > self.char_duplicates_ratio:
            return "char_dup_ratio"
        if s["list_ratio"] > self.new_line_ratio:
            return "list_ratio"
        return None
