"""Gopher's repetition and quality rules (Rae et al. 2021, table A1), with datatrove's reason names.

Words come from ``transforms.text`` (script-aware); stop words and word-length bounds are per
language, and a rule a language has no data for is switched off rather than misapplied.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

import numpy as np

from thresher.transforms.filters.base import Filter, fired, register_filter
from thresher.transforms.text import LANGUAGES, NGrams, TextView, analyse, is_punctuation, rules_for

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


try:  # built with the package where a C compiler was found (transforms/native/_repetition.c)
    from thresher.transforms._repetition import repetition as _compiled_repetition
except ImportError:
    _compiled_repetition = None


def repetition(words: list[str] | TextView, tops, dups) -> tuple[dict[int, int], dict[int, int]]:
    """Gopher's two repetition measures of a word list: for each size in ``tops`` the characters
    covered by the most frequent n-gram, for each in ``dups`` the characters in n-grams that repeat
    an earlier one.

    Compiled (one pass with a hash table per size; with the word hashes and lengths, a fifth of the
    numpy version's time on the crawl's pages), or ``repetition_numpy`` over the words' `NGrams`
    where the extension was not built (a document's `TextView` shares the ones it already has).
    Both hash n-grams the same way and give the same answers (tested against each other and against
    the plain definitions)."""
    tops, dups = tuple(tops), tuple(dups)
    if _compiled_repetition is None:
        return repetition_numpy(words.ngrams if isinstance(words, TextView) else NGrams(words), tops, dups)
    top, dup = _compiled_repetition(words.words if isinstance(words, TextView) else words, tops, dups)
    return dict(zip(tops, top)), dict(zip(dups, dup))


def repetition_numpy(grams: NGrams, tops, dups) -> tuple[dict[int, int], dict[int, int]]:
    """``repetition`` in numpy.

    Sizes are visited in increasing order, each looking only at the positions whose smaller n-gram
    occurs more than once: an n-gram that repeats has a repeating (n-1)-gram at the same place.
    After the first size the sorts run on a few positions instead of the whole document.
    """
    top: dict[int, int] = {}
    dup: dict[int, int] = {}
    positions = None  # the positions that can still hold a repeating n-gram (None: all)
    for n in range(min(*tops, *dups), max(*tops, *dups) + 1):
        if len(grams) < n:
            top[n] = dup[n] = 0
            continue
        h = grams.hashes(n)
        if positions is None:
            positions = np.arange(len(h))
        positions = positions[positions < len(h)]
        if len(positions) == 0:  # every n-gram is unique: the first one is the most frequent
            top[n], dup[n] = int(grams.chars(0, n) + n - 1), 0
            continue
        _, first, inverse, counts = np.unique(h[positions], return_index=True, return_inverse=True,
                                              return_counts=True)
        origin = positions[first[inverse]]  # the first position of each position's n-gram
        if n in tops:
            best = int(counts.max())  # ties go to the n-gram seen first, as Counter.most_common does
            i = int(positions[first[counts == best]].min()) if best > 1 else 0
            top[n] = int((grams.chars(i, n) + n - 1) * best)
        multi = counts[inverse] > 1
        positions, origin = positions[multi], origin[multi]
        if n in dups:
            dup[n] = _duplicate_chars(grams, n, positions, origin)
    return {n: top[n] for n in tops}, {n: dup[n] for n in dups}


def _duplicate_chars(grams: NGrams, n: int, positions, origin) -> int:
    """Characters in n-grams that repeat an earlier n-gram; after a repeat the scan jumps past it,
    so overlapping repeats count once (Gopher's definition, as datatrove implements it).

    datatrove scans every position with a set of the n-grams seen. The same answer here, visiting
    only the positions whose n-gram occurred before (usually few): position j is skipped when a
    counted repeat c < j has j < c + n, and only the last counted repeat can cover j, since a
    counted repeat is itself visited. An n-gram "was seen" at a repeat when an earlier occurrence
    was visited: its first occurrence (unless a counted repeat covers it) or an earlier repeat.
    ``positions`` are those of n-grams occurring more than once, ``origin`` their first positions.
    """
    later = origin != positions
    if not later.any():
        return 0
    cum = grams.cum
    repeats, origins = positions[later].tolist(), origin[later].tolist()
    k, end = 0, len(repeats)
    counted: list[int] = []
    seen: dict[int, bool] = {}  # first position of an n-gram -> an occurrence was visited
    while k < end:
        i, g = repeats[k], origins[k]
        was_seen = seen.get(g)
        if was_seen is None:  # its first occurrence: visited unless covered by a counted repeat
            c = bisect_left(counted, g) - 1
            was_seen = not (c >= 0 and g < counted[c] + n)
        seen[g] = True
        if was_seen:
            counted.append(i)
            k = bisect_left(repeats, i + n, k + 1)  # the repeats inside this n-gram are skipped
        else:
            k += 1
    at = np.array(counted, dtype=np.int64)
    return int((cum[at + n] - cum[at]).sum())


def split_runs(text: str, sep: str) -> list[str]:
    """``text`` split at each run of ``len(sep)`` or more of the character ``sep`` repeats (like
    ``re.split(r"\\n{2,}", text)`` for ``"\\n\\n"``): the longer runs squeezed to ``sep`` by
    ``str.replace`` (a pass shortens every run by a third or more), then ``str.split``. A tenth of
    the regular expression's time on long pages."""
    longer = sep + sep[0]
    while longer in text:
        text = text.replace(longer, sep)
    return text.split(sep)


def lines_of(text: str) -> list[str]:
    """Gopher's lines: the text split at runs of newlines (``re.split(r"\\n+", text)``)."""
    return split_runs(text, "\n")


def paragraphs_of(text: str) -> list[str]:
    """Gopher's paragraphs: the stripped text split at runs of two or more newlines
    (``re.split(r"\\n{2,}", text.strip())``)."""
    return split_runs(text.strip(), "\n\n")


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

    RULES = {k: (k, ">") for k in ("dup_line_frac", "dup_para_frac", "dup_line_char_frac", "dup_para_char_frac",
                                   "top_2_gram", "top_3_gram", "top_4_gram",
                                   *(f"duplicated_{n}_n_grams" for n in range(5, 11)))}

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
        paras = paragraphs_of(text)
        para_dups, para_chars = duplicates(paras)
        lines = lines_of(text)
        line_dups, line_chars = duplicates(lines)
        s = {"chars": n, "dup_para_frac": para_dups / len(paras), "dup_para_char_frac": para_chars / n,
             "dup_line_frac": line_dups / len(lines), "dup_line_char_frac": line_chars / n}
        view = analyse(text)
        top, dup = repetition(view, tuple(self.top_ngrams), tuple(self.dup_ngrams))
        for k, chars in top.items():
            s[f"top_{k}_gram"] = chars / n
        for k, chars in dup.items():
            s[f"duplicated_{k}_n_grams"] = chars / n
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
    # (the word-count rules scale with the script and the symbol ratio covers two signals: not calibrated)
    RULES = {"min_avg_word_length": ("mean_word_length", "<", "char_words"),
             "max_avg_word_length": ("mean_word_length", ">", "char_words"),
             "max_bullet_lines_ratio": ("bullet_lines", ">"), "max_ellipsis_lines_ratio": ("ellipsis_lines", ">"),
             "min_alpha_words_ratio": ("alpha_words", "<"), "min_stop_words": ("stop_words", "<")}
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
        n = len(view.words)
        counts = view.counts  # each rule runs once per distinct word, weighted by its count
        # Punctuation tokens (no letter or digit) and tokens without a letter are looked for among
        # the few distinct words that are not all letters / letters and digits (C-level filters);
        # the sums are integers, so the ratios are those of counting every word.
        punct = [w for w in counts.keys() - set(filter(str.isalnum, counts)) if is_punctuation(w)]
        no_alpha = [w for w in counts.keys() - set(filter(str.isalpha, counts)) if not any(map(str.isalpha, w))]
        content_n = n - sum(map(counts.__getitem__, punct))
        content_chars = sum(map(len, view.words)) - sum(len(w) * counts[w] for w in punct)
        rules = rules_for(lang, self.fallback_lang)
        lines = view.lines or [""]
        stops = frozenset(self.stop_words) if self.stop_words is not None else rules.stop_words
        if lang is None and view.char_words and self.stop_words is None:  # no label: the script decides
            stops = LANGUAGES["zh"].stop_words | LANGUAGES["ja"].stop_words
        return {
            "words": content_n,
            "mean_word_length": content_chars / content_n if content_n else 0.0,
            "char_words": view.char_words,
            "hash_ratio": text.count("#") / n if n else 0.0,
            "ellipsis_ratio": (text.count("...") + text.count("…")) / n if n else 0.0,
            "bullet_lines": sum(s.lstrip().startswith(("•", "-")) for s in lines) / len(lines),
            "ellipsis_lines": sum(s.rstrip().endswith(("...", "…")) for s in lines) / len(lines),
            "alpha_words": (n - sum(map(counts.__getitem__, no_alpha))) / n if n else 0.0,
            "stop_words": len(stops.intersection(counts)) if stops is not None else None,
        }

    def decides_with(self, field: str, lang: str | None) -> bool:
        if field in ("min_avg_word_length", "max_avg_word_length"):
            # off for the no-space scripts; Korean and Vietnamese have bounds of their own
            return rules_for(lang, self.fallback_lang).word_length == (3, 10)
        return True

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
