"""Language-aware text units for the quality filters: words, lines, paragraphs, sentences.

The published heuristics (Gopher, C4, FineWeb) count space-separated English words. Here a *word*
is what a Unicode-aware tokenizer gives in any script:

- runs of letters/digits (with inner apostrophes, periods and commas as in "don't", "3.14",
  "U.S"), split like spaCy's English tokenizer splits them ("do", "n't"; "well", "-", "known"),
  so the English numbers agree with datatrove's, which tokenizes with spaCy;
- every other non-space character (punctuation, symbols) as a token of its own;
- in scripts written without spaces (Han, Hiragana, Katakana, Thai, Lao, Khmer, Myanmar, Tibetan)
  each character as a word: a Chinese or Japanese page then has about 1.5 "words" per real word,
  and the rules that measure word length are switched off for those languages
  (see ``LANGUAGES``).

Everything is computed once per text (``analyse`` is cached), however many filters ask.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# Characters that are words by themselves: scripts without spaces between words.
_CHAR_SCRIPTS = (
    "\u0e00-\u0e7f"  # Thai
    "\u0e80-\u0eff"  # Lao
    "\u0f00-\u0fff"  # Tibetan
    "\u1000-\u109f"  # Myanmar
    "\u1780-\u17ff"  # Khmer
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # Han
    "\U00020000-\U0002fa1f"
)
_CONTRACTION = r"(?:n't|N'T|'s|'S|'m|'M|'re|'RE|'ve|'VE|'ll|'LL|'d|'D|’s|’re|’ve|’ll|’d|’m|n’t)"
_WORD = re.compile(
    r"(?:https?://|www\.)\S+?(?=[.,;:!?)\]\"'»]*(?:\s|$))"  # a URL is one token (as in spaCy)
    rf"|[{_CHAR_SCRIPTS}]"  # one character of a no-space script
    rf"|{_CONTRACTION}(?![^\W_])"  # English clitics split off, as spaCy does
    rf"|(?:[^\W_{_CHAR_SCRIPTS}]|_)+?(?={_CONTRACTION}(?![^\W_]))"  # the word before a clitic
    rf"|(?:[^\W{_CHAR_SCRIPTS}])+(?:[.,'’](?:[^\W{_CHAR_SCRIPTS}])+)*"  # words, 3.14, U.S, l'homme
    r"|\.{2,}"  # an ellipsis is one token
    r"|\S",  # any other character: punctuation and symbols are tokens of their own
)
_NO_SPACE = re.compile(rf"[{_CHAR_SCRIPTS}]")

# Terminal punctuation of sentences, across scripts (Latin, CJK full-width, Arabic, Urdu,
# Devanagari, Armenian, Ethiopic, Myanmar, Khmer, Tibetan, Greek question mark).
TERMINAL = frozenset(".!?。！？｡．؟۔।॥։።፧။៕៖༎\u037e‼‽⁇⁈⁉")
# Punctuation and symbols for "is this token only punctuation" (plus every non-word character).
_SENTENCE_END = re.compile(
    r"(?<=[.!?。！？｡؟۔।॥։።])\s+"  # a stop, then space
    r"|(?<=[.!?。！？｡][\"'”’»」』)\]])\s+"  # a stop and a closing quote or bracket, then space
    r"|(?<=[。！？｡])(?=[^\s\"'”’»」』)\]])")  # full-width stops need no space after them


@dataclass(frozen=True)
class LanguageRules:
    stop_words: frozenset | None  # None: the stop-word rule is off for this language
    word_length: tuple[float, float] | None = (3, 10)  # None: mean word length rule off
    word_scale: float = 1.0  # words are characters here: word-count thresholds are scaled by this


def _rules(stop: str, **kw) -> LanguageRules:
    return LanguageRules(frozenset(stop.split()), **kw)


_CHAR = dict(word_length=None, word_scale=1.5)
# Gopher's eight English stop words, and for other languages their most frequent function words
# (a page of real prose has several of them). Languages missing here run without the stop-word rule.
LANGUAGES: dict[str, LanguageRules] = {
    "en": _rules("the be to of and that have with"),
    "de": _rules("der die das und ist nicht zu den von mit sich des"),
    "fr": _rules("le la les de et est un une des du que pour"),
    "es": _rules("el la de que y en los las del se por un"),
    "it": _rules("il la di che e è per un una del non sono"),
    "pt": _rules("o a de que e do da em um para com não"),
    "gl": _rules("o a de que e do da en un para non unha"),
    "ca": _rules("el la de que i a per els les amb"),
    "nl": _rules("de het een en van is dat op te zijn niet met"),
    "sv": _rules("och att det som en är på av för med den till"),
    "da": _rules("og at det er en til på for med de som af"),
    "nb": _rules("og i det er en til på for som at med av"),
    "nn": _rules("og i det er ein til på for som at med av"),
    "pl": _rules("i w na z się że nie do jest to jak"),
    "cs": _rules("a v se na je že to s z do"),
    "sk": _rules("a v sa na je že to s z do"),
    "ru": _rules("и в не на что с по как это для"),
    "uk": _rules("і в не на що з та до як це"),
    "ro": _rules("și de la în a cu că nu pe este"),
    "tr": _rules("ve bir bu da için ile de olarak"),
    "id": _rules("yang dan di dengan untuk dari ini itu"),
    "vi": _rules("và của là các có được cho trong", word_length=(1.5, 10)),
    "el": _rules("και το να της του η την σε είναι"),
    "fa": _rules("و در به از که این را با"),
    "ar": _rules("في من على أن إلى التي عن هذا"),
    "hr": _rules("i je u se na da za od"),
    "bs": _rules("i je u se na da za od"),
    "sr": _rules("и је у се на да за од i je u se na da za od"),
    "fi": _rules("ja on ei se että oli hän"),
    "hu": _rules("a az és hogy nem is egy"),
    "ko": _rules("및 수 있습니다 있다 이 그 것 등 또는 할", word_length=(1.5, 10)),
    "zh": _rules("的 是 了 在 和 有 不 这 中 一", **_CHAR),
    "ja": _rules("の に は を た が で て と し", **_CHAR),
    "th": LanguageRules(None, **_CHAR),
}
DEFAULT_RULES = LanguageRules(None)


def rules_for(lang: str | None, fallback: str = "en") -> LanguageRules:
    """The rules of ``lang``; a text without a language (no langid stage) uses ``fallback``'s."""
    return LANGUAGES.get(lang or fallback, DEFAULT_RULES)


def is_punctuation(token: str) -> bool:
    """A token with no letter or digit in it."""
    return not any(c.isalnum() for c in token)


@dataclass
class TextView:
    text: str
    words: list[str]
    lines: list[str]  # str.splitlines()
    char_words: bool  # most words are single characters of a no-space script


def tokenize(text: str) -> list[str]:
    return _WORD.findall(text)


def is_char_words(text: str, words: list[str] | None = None) -> bool:
    """Most words of the text are single characters of a no-space script."""
    n = len(words) if words is not None else len(text.split())
    return len(_NO_SPACE.findall(text)) > 0.5 * max(1, n)


@lru_cache(maxsize=8)
def analyse(text: str) -> TextView:
    """A whole document's words and lines, computed once for all the filters that ask."""
    words = tokenize(text)
    return TextView(text, words, text.splitlines(), is_char_words(text, words))


def words(text: str) -> list[str]:
    return analyse(text).words


def sentences(text: str) -> list[str]:
    """Sentences: split after terminal punctuation followed by space (or after CJK full stops)."""
    return [s for s in (p.strip() for p in _SENTENCE_END.split(text)) if s]
