"""Language-aware text units for the quality filters: words, lines, paragraphs, sentences.

The published heuristics (Gopher, C4, FineWeb) count space-separated English words. Here a *word*
is what a Unicode-aware tokenizer gives in any script:

- whitespace-separated chunks split by the rules of spaCy's English tokenizer (prefix and suffix
  punctuation peeled off, "do" + "n't", "well" + "-" + "known", URLs and "e.g." kept whole), so
  the English numbers agree with datatrove's, which tokenizes with spaCy;
- in scripts written without spaces (Han, Hiragana, Katakana, Thai, Lao, Khmer, Myanmar, Tibetan)
  each character as a word: a Chinese or Japanese page then has about 1.5 "words" per real word,
  and the rules that measure word length are switched off for those languages
  (see ``LANGUAGES``).

Everything is computed once per text (``analyse`` is cached), however many filters ask.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from collections import Counter
from functools import cached_property, lru_cache
from itertools import chain, islice

import numpy as np

# Characters that are words by themselves: scripts without spaces between words (the one table:
# word splitting here and dedup's shingles both use it).
CHAR_SCRIPTS = (
    "\u0e00-\u0e7f"  # Thai
    "\u0e80-\u0eff"  # Lao
    "\u0f00-\u0fff"  # Tibetan
    "\u1000-\u109f"  # Myanmar
    "\u1780-\u17ff"  # Khmer
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # Han
    "\U00020000-\U0002fa1f"
)
# The word splitting rules of spaCy's English tokenizer (what datatrove counts words with), written
# out here: whitespace first, then prefixes and suffixes (punctuation, quotes, currency) peeled off
# each chunk, then infixes (hyphens and slashes between letters, "a,b", "end.Next") split inside.
_QUOTES = "'\"”“`‘´’‚„»«「」『』（）〔〕【】《》〈〉⟦⟧"
_PUNCT = "…,:;!?¿؟¡()[]{}<>_#*&。？！，、；：～·।،۔؛٪"
_CURRENCY = "$£€¥฿₽₹₩₪₫₭₮₱₲₴₵₸₺₼₾₿"
_PREFIX = re.compile("^(?:\\.\\.+|…|[§%=—–]|\\+(?![0-9])|US\\$|C\\$|A\\$|[" + re.escape(_PUNCT + _QUOTES + _CURRENCY) + "])")
_SUFFIX = re.compile("(?:\\.\\.+|…|'s|'S|’s|’S|—|–|(?<=[0-9])\\+|(?<=[0-9])[" + re.escape(_CURRENCY)
                     + "]|[" + re.escape(_PUNCT + _QUOTES) + "])$")
# The last characters a suffix can end with (the suffix pattern is tried only on those).
_SUFFIX_LAST = frozenset(".…sS—–+" + _CURRENCY + _PUNCT + _QUOTES)
_AFTER_STOP = set("%²-+" + _PUNCT + _QUOTES)
_ALPHA = "[^\\W\\d_]"
_INFIX = re.compile(
    "\\.\\.+|…"
    "|(?<=[0-9])[+\\-*^](?=[0-9-])"
    "|(?<=[a-zß-öø-ÿ'\"])\\.(?=[A-ZÀ-ÖØ-Þ'\"])"
    f"|(?<={_ALPHA}),(?={_ALPHA})"
    f"|(?<=[^\\W_])(?:---|--|——|-|–|—|~)(?={_ALPHA})"
    f"|(?<=[^\\W_])[:<>=/](?={_ALPHA})")
_URL = re.compile(r"^(?:(?:https?|ftp)://\S+|www\.\S+|[^\W_][\w.-]*\.[a-z]{2,63}/\S*)$", re.I)
_CLITIC = re.compile(r"^([^\W_]+?)(n't|N'T|n’t|'ll|'re|'ve|'d|'m|’ll|’re|’ve|’d|’m)$")
_ABBREVIATION = re.compile(r"^(?:[A-Za-z]\.)+$|^(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|Inc|Ltd|Co|vs|Jan|Feb|Mar|Apr|Jun|"
                           r"Jul|Aug|Sep|Sept|Oct|Nov|Dec|No|Vol|pp|approx|dept|est|fig|Fig)\.$")
_SPECIAL = {"cannot": ["can", "not"], "Cannot": ["Can", "not"], "gonna": ["gon", "na"], "wanna": ["wan", "na"],
            "dont": ["do", "nt"], "Dont": ["Do", "nt"], "cant": ["ca", "nt"], "wont": ["wo", "nt"],
            "didnt": ["did", "nt"], "doesnt": ["does", "nt"], "isnt": ["is", "nt"], "arent": ["are", "nt"],
            "and/or": ["and/or"], "im": ["i", "m"], "Im": ["I", "m"], "id": ["i", "d"], "ive": ["i", "ve"], "youre": ["you", "re"]}
# Emoticons and the like that spaCy keeps whole.
_WHOLE = frozenset("): :) (: :( :* (= =) <3 8) (8 '' :-) :-( ;) ;-) :P :p :D :o :O :/ :| =( ^_^ -_- ._. :-P".split())
_NO_SPACE = re.compile(rf"[{CHAR_SCRIPTS}]")
_CHAR_RUN = re.compile(rf"[{CHAR_SCRIPTS}]|[^{CHAR_SCRIPTS}]+")

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
    return not (token.isalnum() or any(c.isalnum() for c in token))


class NGrams:
    """A document's word n-grams as 64-bit hashes (numpy), for the repetition measures.

    A word's id is its Python hash (64 bits, cached on the string: no table of the distinct words
    to build); the n-gram at i hashes ids[i..i+n) polynomially (wrapping uint64 arithmetic). With
    64 bits a collision in one document is practically impossible, and the hashes let the counts
    run in numpy instead of over Python tuples. Only equality of hashes is used (which n-grams
    repeat, and where first), so the results do not depend on the process's hash seed. Each size
    is computed once, from the size below it.
    """

    _P = np.uint64(1_000_003)

    def __init__(self, words: list[str]):
        self.ids = np.fromiter(map(hash, words), dtype=np.int64, count=len(words)).view(np.uint64)
        self.cum = np.zeros(len(words) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, words), dtype=np.int64, count=len(words)), out=self.cum[1:])
        self._hashes = {1: self.ids}

    def __len__(self) -> int:
        return len(self.ids)

    def hashes(self, n: int) -> np.ndarray:
        if n not in self._hashes:
            prev = self.hashes(n - 1)
            with np.errstate(over="ignore"):
                self._hashes[n] = prev[:-1] * self._P + self.ids[n - 1:]
        return self._hashes[n]

    def chars(self, i, n: int):
        """Characters of the n-gram(s) at i, without separators."""
        return self.cum[i + n] - self.cum[i]


@dataclass(eq=False)
class TextView:
    """One document's analysis, shared by every filter that reads the same text: computed once
    (``analyse``), the rest on first use."""

    text: str
    words: list[str]
    lines: list[str]  # str.splitlines()
    char_words: bool  # most words are single characters of a no-space script

    @cached_property
    def counts(self) -> Counter:
        """How often each distinct word occurs (rules over words run once per distinct word)."""
        return Counter(self.words)

    @cached_property
    def ngrams(self) -> NGrams:
        return NGrams(self.words)


def _chunk_tokens(chunk: str, out: list[str]) -> None:
    # Each pattern is tried only where it can match (its required characters are present): the
    # same tokens as trying them all, in a third of the time.
    if chunk in _SPECIAL:
        out.extend(_SPECIAL[chunk])
        return
    if chunk[-1] == "." and _ABBREVIATION.match(chunk):
        out.append(chunk)
        return
    suffixes: list[str] = []
    while chunk:
        if chunk in _WHOLE or (chunk[-1] == "." and _ABBREVIATION.match(chunk)):
            break
        m = _PREFIX.match(chunk)
        if m and m.end() < len(chunk) or (m and len(chunk) == 1):
            out.append(m.group())
            chunk = chunk[m.end():]
            continue
        m = _SUFFIX.search(chunk) if chunk[-1] in _SUFFIX_LAST else None
        if m and m.start() > 0:
            suffixes.append(m.group())
            chunk = chunk[:m.start()]
            continue
        if len(chunk) > 1 and chunk[-1] == "." and _stop_splits(chunk):
            suffixes.append(".")
            chunk = chunk[:-1]
            continue
        break
    if chunk:
        m = _CLITIC.match(chunk) if ("'" in chunk or "’" in chunk) else None
        if m:
            out.extend(_split_chars(m.group(1)))
            out.append(m.group(2))
        elif chunk.isalnum():  # no infix without punctuation
            out.extend(_split_chars(chunk))
        elif chunk in _WHOLE or (("." in chunk or ":" in chunk) and _URL.match(chunk)) or (
                chunk[-1] == "." and _ABBREVIATION.match(chunk)):
            out.append(chunk)
        else:
            start = 0
            for m in _INFIX.finditer(chunk):
                if m.start() > start:
                    out.extend(_split_chars(chunk[start:m.start()]))
                if m.end() > m.start():
                    out.append(m.group())
                start = m.end()
            if start < len(chunk):
                out.extend(_split_chars(chunk[start:]))
    out.extend(reversed(suffixes))


def _stop_splits(chunk: str) -> bool:
    """A final period is its own token after a lower-case or uncased letter, a digit, some symbols,
    or two capitals ("ABC." but not "B.")."""
    prev = chunk[-2]
    if prev.isdigit() or prev in _AFTER_STOP or prev.islower() or (prev.isalpha() and not prev.isupper()):
        return True
    return len(chunk) > 2 and prev.isupper() and chunk[-3].isupper()


def _split_chars(piece: str) -> list[str]:
    """A piece with characters of a no-space script: each such character is a word."""
    if piece.isascii() or not _NO_SPACE.search(piece):
        return [piece]
    return _CHAR_RUN.findall(piece)


def _tokenize_chunk(chunk: str) -> tuple[str, ...]:
    """The tokens of one whitespace-separated chunk (they depend on the chunk alone)."""
    out: list[str] = []
    _chunk_tokens(chunk, out)
    # like spaCy's special cases, an emoticon split by the affix rules is one token again
    i = 0
    while i < len(out) - 1:
        if out[i] + out[i + 1] in _WHOLE:
            out[i:i + 2] = [out[i] + out[i + 1]]
        i += 1
    return tuple(out)


_SPECIAL_KEYS = frozenset(_SPECIAL)
_EDGE = frozenset(_PUNCT + _QUOTES)  # a one-character prefix or suffix by itself


def _one_mark(chunk: str) -> tuple[str, ...] | None:
    """The tokens of a word with one punctuation mark before it, after it, or both ("word,",
    "(word", "(word)", "word."): about a third of the crawl's distinct chunks that are not plain
    words (95k of 262k). What the affix
    rules give them, decided from the characters alone: a letters-and-digits core outside the
    no-space scripts is never split, the mark is its own token unless the whole chunk, or core and
    mark, are an emoticon kept whole ("8)", "(8"), and a final period goes only where the rules
    split it off (not abbreviations). None: the rules decide."""
    lead = chunk[0] in _EDGE
    last = chunk[-1]
    trail = last in _EDGE or last == "."
    core = chunk[lead:len(chunk) - trail]
    if not core or not (lead or trail) or not core.isalnum() or chunk in _SPECIAL or chunk in _WHOLE:
        return None
    if not core.isascii() and _NO_SPACE.search(core):
        return None
    if last == ".":
        if lead or _ABBREVIATION.match(chunk) or not _stop_splits(chunk):
            return None
        return core, "."
    if lead and trail:
        if chunk[:-1] in _WHOLE or chunk[1:] in _WHOLE:
            return None
        return chunk[0], core, last
    return (chunk[0], core) if lead else (core, last)


def _classify(chunks: set[str]) -> dict[str, tuple[str, ...]]:
    """chunk -> its tokens, for distinct chunks: plain words (letters and digits only, outside the
    no-space scripts) are themselves, sorted out by C-level filters; the affix rules run on the rest."""
    plain = set(filter(str.isalnum, chunks))
    other_scripts = plain.difference(filter(str.isascii, plain))
    if other_scripts:
        plain.difference_update([c for c in other_scripts if _NO_SPACE.search(c)])
    plain -= _SPECIAL_KEYS
    tokens = dict(zip(plain, zip(plain)))  # chunk -> (chunk,)
    if len(plain) < len(chunks):
        for chunk in chunks - plain:
            tokens[chunk] = _one_mark(chunk) or _tokenize_chunk(chunk)
    return tokens


# chunk -> its tokens, across texts: pages share most of their chunks (and a text a filter rewrote,
# like C4's kept lines, shares nearly all of its source's), so each distinct chunk is classified
# once. Bounded: when full the older half goes, so a worker's memory stays flat whatever it reads.
# (A plain dict: set.difference takes its fast path, a lookup per chunk of the text, only with
# exact dicts.)
_CHUNKS: dict[str, tuple[str, ...]] = {}
CHUNK_MEMO_LIMIT = 200_000
_MEMO_LOCK = threading.Lock()


# CHAR_SCRIPTS as (first, last) code points, for the compiled split.
_SCRIPT_RANGES = tuple((ord(CHAR_SCRIPTS[i]), ord(CHAR_SCRIPTS[i + 2])) for i in range(0, len(CHAR_SCRIPTS), 3))
assert all(CHAR_SCRIPTS[i + 1] == "-" for i in range(0, len(CHAR_SCRIPTS), 3))

try:  # built with the package where a C compiler was found (transforms/native/_words.c)
    from thresher.transforms import _words

    _words.configure(_SCRIPT_RANGES, _SPECIAL_KEYS)
    _compiled_tokens = _words.tokens
except ImportError:
    _compiled_tokens = None


def tokenize(text: str) -> list[str]:
    """Words and punctuation tokens, as spaCy's English rules split them (any script).

    The tokens of a text are those of its whitespace-separated chunks, one after another, and a
    chunk's tokens depend on the chunk alone: only the chunks not yet in the memo are classified,
    then the output is one lookup per chunk (compiled where ``_words`` was built: a plain word is
    its own token without a lookup, and the chunks the memo lacks come back as a set to classify)."""
    with _MEMO_LOCK:  # Beam runs bundles on several threads of a worker process: they share the memo
        if _compiled_tokens is not None:
            out = _compiled_tokens(text, _CHUNKS)
            if type(out) is list:
                return out
            if len(_CHUNKS) + len(out) <= CHUNK_MEMO_LIMIT:  # `out`: the chunks to classify first
                _CHUNKS.update(_classify(out))
                return _compiled_tokens(text, _CHUNKS)  # every chunk is there now
        # (the memo is full: the older half goes below, as where the extension was not built)
        chunks = text.split()
        memo = _CHUNKS
        missing = set(chunks).difference(memo)
        if missing:
            if len(memo) + len(missing) > CHUNK_MEMO_LIMIT:
                for chunk in list(islice(memo, len(memo) // 2)):  # the older half goes (dicts keep order)
                    del memo[chunk]
                missing = set(chunks).difference(memo)
                if len(memo) + len(missing) > CHUNK_MEMO_LIMIT:  # a text with more distinct chunks than half the memo
                    memo.clear()
                    missing = set(chunks)
                    if len(missing) > CHUNK_MEMO_LIMIT:
                        return list(chain.from_iterable(map(_classify(missing).__getitem__, chunks)))
            memo.update(_classify(missing))
        return list(chain.from_iterable(map(memo.__getitem__, chunks)))


def has_no_space_script(text: str) -> bool:
    """The text has a character of a script written without spaces."""
    return _NO_SPACE.search(text) is not None


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
