"""C4's line and document filters (Raffel et al. 2020 and the TFDS implementation)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from thresher.transforms.filters.base import Filter, fired, register_filter
from thresher.transforms.text import has_no_space_script, is_char_words, is_punctuation, sentences, tokenize

# --- C4 --------------------------------------------------------------------------------------

CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
C4_END = (".", "?", "!", '"', "'", "。", "！", "？", "｡", "؟", "۔", "।", "॥", "։", "።")
POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")


@register_filter(name="c4", order=60,
                 description="C4: drop lines without terminal punctuation, boilerplate; documents with too few sentences",
                 details=("C4's line filters (terminal punctuation, >= 3 words, \"javascript\", "
                          "cookie / terms / privacy boilerplate, citation markers removed; the "
                          "text keeps the surviving lines) and document filters; optional "
                          "bad-words list"),
                 reasons=("lorem_ipsum", "curly_bracket", "too_few_sentences", "bad_words"))
@dataclass
class C4Quality(Filter):
    """Line filter and document filter: ``score`` also returns the text of the kept lines (in
    annotate mode the text keeps all its lines)."""

    RULES = {"min_num_sentences": ("sentences", "<")}  # (the line rules act on lines, not documents)

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
        no_space_script = has_no_space_script(text)  # else no line is written without spaces
        for line in text.splitlines():
            line = line.strip()
            source = line  # words are counted on the line as it came, before citations go
            chars = no_space_script and is_char_words(line)
            # Words are split only where a rule reads them: no word is longer than its line, and
            # most lines end without terminal punctuation.
            if self.max_word_length != -1 and len(line) > self.max_word_length and max(
                    map(len, tokenize(line) if chars else line.split()), default=0) > self.max_word_length:
                removed["too_long_word"] += 1
                continue
            if self.remove_citations and "[" in line:
                line = CITATION.sub("", line)
            if self.filter_no_terminal_punct and (not line.endswith(C4_END) or line.endswith("...")):
                removed["no_terminal_punct"] += 1
                continue
            n_words = sum(not is_punctuation(t) for t in tokenize(source)) if chars else len(source.split())
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
            return fired("too_few_sentences", "sentences", s["sentences"], "<", self.min_num_sentences)
        return None
