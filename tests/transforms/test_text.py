"""Script-aware words and sentences."""

from hypothesis import given, settings, strategies as st

from thresher.transforms.text import analyse, is_char_words, sentences, tokenize


def test_english_words_split_like_spacy():
    assert tokenize("I don't think it's well-known.") == ["I", "do", "n't", "think", "it", "'s", "well", "-", "known", "."]
    assert tokenize("Pi is 3.14, see https://example.org/a.") == ["Pi", "is", "3.14", ",", "see",
                                                                  "https://example.org/a", "."]
    assert tokenize("Wait... what") == ["Wait", "...", "what"]


def test_scripts_without_spaces_are_split_into_characters():
    assert tokenize("東京は大きい") == ["東", "京", "は", "大", "き", "い"]
    assert tokenize("ภาษาไทย") == list("ภาษาไทย")
    assert is_char_words("这是中文。") and not is_char_words("This is English.")
    assert tokenize("한국어 문장") == ["한국어", "문장"]  # Korean is written with spaces


def test_sentences_across_scripts():
    assert sentences("One. Two! Three? \"Four.\" Five") == ["One.", "Two!", "Three?", "\"Four.\"", "Five"]
    assert sentences("今天下雨。明天晴天！") == ["今天下雨。", "明天晴天！"]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=500))
def test_tokenizer_never_raises_and_loses_no_visible_character(text):
    words = analyse(text).words
    assert "".join(words) == "".join(text.split())
    sentences(text)


# --- the fast tokenizer against the rules applied plainly ----------------------------------------

def _plain_chunk(chunk: str) -> list[str]:
    """spaCy's affix rules as first written here: every pattern tried on every chunk, no cache."""
    from thresher.transforms import text as t

    out: list[str] = []
    if chunk in t._SPECIAL:
        return list(t._SPECIAL[chunk])
    if t._ABBREVIATION.match(chunk):
        return [chunk]
    suffixes: list[str] = []
    while chunk:
        if chunk in t._WHOLE or t._ABBREVIATION.match(chunk):
            break
        m = t._PREFIX.match(chunk)
        if m and m.end() < len(chunk) or (m and len(chunk) == 1):
            out.append(m.group())
            chunk = chunk[m.end():]
            continue
        m = t._SUFFIX.search(chunk)
        if m and m.start() > 0:
            suffixes.append(m.group())
            chunk = chunk[:m.start()]
            continue
        if len(chunk) > 1 and chunk[-1] == "." and t._stop_splits(chunk):
            suffixes.append(".")
            chunk = chunk[:-1]
            continue
        break
    if chunk:
        m = t._CLITIC.match(chunk)
        if m:
            out.extend(t._split_chars(m.group(1)))
            out.append(m.group(2))
        elif chunk in t._WHOLE or t._URL.match(chunk) or t._ABBREVIATION.match(chunk):
            out.append(chunk)
        else:
            start = 0
            for m in t._INFIX.finditer(chunk):
                if m.start() > start:
                    out.extend(t._split_chars(chunk[start:m.start()]))
                if m.end() > m.start():
                    out.append(m.group())
                start = m.end()
            if start < len(chunk):
                out.extend(t._split_chars(chunk[start:]))
    out.extend(reversed(suffixes))
    i = 0
    while i < len(out) - 1:
        if out[i] + out[i + 1] in t._WHOLE:
            out[i:i + 2] = [out[i] + out[i + 1]]
        i += 1
    return out


def _plain_tokenize(text: str) -> list[str]:
    return [tok for chunk in text.split() for tok in _plain_chunk(chunk)]


TRICKY = ("I don't think it's well-known. Mr. Smith's U.S. e.g. ABC. B. dont cannot Im 3.14, "
          "https://example.org/a. www.x.org foo.txt/a :) 8) (: :-P a,b end.Next 10-20 $5 5$ 5+ +5 "
          "US$10 «quoted» 「東京」は大きい。 ภาษา... (see: [1]) x--y x—y a/b/c <tag> #hash ... …wait "
          "‘single’ “double” 'tis rock'n'roll ¿qué? ¡sí! l'homme d’Arc و،  ۔ ٪ 1,000.50 A.B.C.")


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(TRICKY.split() + [" ", "\n", "a", "Z", "9", ".", "'", "’", "-", ",", "東", "s", "S",
                                                  "n't", "http://", ":", "/"]), max_size=40).map("".join))
def test_fast_tokenizer_equals_the_plain_rules(text):
    assert tokenize(text) == _plain_tokenize(text)


_MARKS = ["", "", "(", ")", ",", ".", ":", ";", "!", "?", '"', "'", "“", "”", "「", "」", "…", "_", "#", "*", "<", ">",
          "[", "]", "«", "¿", "。", "，"]
_CORES = ["word", "8", "D", "P", "p", "o", "s", "S", "US", "C", "A", "cannot", "Cannot", "id", "im", "e", "B", "ABC",
          "aB", "Mr", "No", "Fig", "x1", "1999", "10km", "東京", "東", "ภาษา", "日本abc", "é", "Ωμέγα", "٣٤", "ß"]


def test_words_with_one_mark_take_the_plain_rules():
    """The shortcut for a word with a punctuation mark before or after it (the commonest chunks
    that are not plain words) against the plain rules, every combination: emoticons ("8)", "(8"),
    abbreviations, specials, no-space scripts, periods that stay."""
    from thresher.transforms import text as t

    shortcuts = 0
    for before in _MARKS:
        for core in _CORES:
            for after in _MARKS:
                chunk = before + core + after
                short = t._one_mark(chunk)
                assert short is None or list(short) == _plain_chunk(chunk), chunk
                shortcuts += short is not None
    assert shortcuts > 5000  # (the shortcut is taken, not only declined)
    text = " ".join(b + c + a for b in _MARKS for c in _CORES for a in _MARKS)
    assert tokenize(text) == _plain_tokenize(text)


def test_fast_tokenizer_equals_the_plain_rules_on_tricky_text_and_when_its_cache_is_emptied(monkeypatch):
    from thresher.transforms import text as t

    assert tokenize(TRICKY) == _plain_tokenize(TRICKY)
    monkeypatch.setattr(t, "CHUNK_MEMO_LIMIT", 3)
    assert tokenize(TRICKY * 3) == _plain_tokenize(TRICKY * 3)  # more distinct chunks than the memo holds
    assert len(t._CHUNKS) <= 3
    monkeypatch.setattr(t, "CHUNK_MEMO_LIMIT", 12)  # emptied between texts, again and again
    for i in range(0, len(TRICKY.split()), 5):
        piece = " ".join(TRICKY.split()[i:i + 7])
        assert tokenize(piece) == _plain_tokenize(piece)
        assert len(t._CHUNKS) <= 12


def test_the_chunk_memo_is_safe_when_worker_threads_share_it(monkeypatch):
    """Beam runs bundles on several threads of one worker process: texts tokenized at once, with a
    memo small enough to be evicted all the time, still get exactly their tokens."""
    from concurrent.futures import ThreadPoolExecutor

    from thresher.transforms import text as t

    monkeypatch.setattr(t, "CHUNK_MEMO_LIMIT", 16)
    monkeypatch.setattr(t, "_CHUNKS", {})
    words = TRICKY.split()
    pieces = [" ".join(words[i:i + 9]) for i in range(len(words))] * 20

    def check(piece):
        return tokenize(piece) == _plain_tokenize(piece)

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(check, pieces))


def test_one_analysis_per_text_shared_by_the_filters():
    from thresher.transforms.filters.fineweb import FineWebQuality
    from thresher.transforms.filters.gopher import GopherQuality, GopherRepetition
    from thresher.transforms.text import analyse

    text = "The cat sat on the mat. " * 30 + "\nAnother line here, with words.\n" * 3
    view = analyse(text)
    for flt in (GopherRepetition(), GopherQuality(), FineWebQuality()):
        flt.score(text, "en")
    assert analyse(text) is view  # the same object every filter asked for
    assert "counts" in view.__dict__  # computed once, kept on the view
    from thresher.transforms.filters import gopher

    # the numpy repetition measures keep the n-gram hashes on the view; the compiled ones need none
    assert ("ngrams" in view.__dict__) == (gopher._compiled_repetition is None)


# --- the compiled lookups (transforms/native/_words.c) --------------------------------------------------

def _python_tokenize(text: str) -> list[str]:
    """tokenize's Python path (an install without a C compiler), on a memo of its own."""
    from thresher.transforms import text as t

    saved = t._compiled_tokens, t._CHUNKS
    t._compiled_tokens, t._CHUNKS = None, {}
    try:
        return tokenize(text)
    finally:
        t._compiled_tokens, t._CHUNKS = saved


def _compiled():
    import pytest

    from thresher.transforms import text as t

    if t._compiled_tokens is None:
        pytest.skip("the _words extension is not built here: the word split runs in Python")
    return t


# every character str.split() splits at, and some that look like spaces but are not
_SPACES = [" ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\xa0", "\u1680", "\u2000",
           "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\u200b", "\ufeff", "\u180e"]
_ODD = ["東京", "ภาษา", "٣٤", "ß", "cannot", "Cannot", "Im", "im", "and/or", "x²", "Ⅻ", "½", "𠀀", "a\u0301", "ǅ", "ﬁ",
        "ᾈ", "ﾃｽﾄ", "한국어", "𝟘", "Ⓐ", "_", "dont", "cant"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(TRICKY.split() + _SPACES + _ODD) | st.text(max_size=5), max_size=40).map("".join))
def test_compiled_split_gives_the_python_tokens(text):
    """Chunks at Unicode whitespace as str.split() cuts them; a plain word (str.isalnum, no
    no-space script, not a special case) is its own token; the rest from the memo."""
    t = _compiled()
    assert tokenize(text) == _python_tokenize(text) == _plain_tokenize(text)
    assert type(t._compiled_tokens(text, {c: t._tokenize_chunk(c) for c in set(text.split())})) is list


def test_compiled_split_knows_every_letter_digit_and_space(monkeypatch):
    """Every code point that str.isalnum() or str.isspace() says yes to, inside a word and alone."""
    t = _compiled()
    monkeypatch.setattr(t, "_CHUNKS", {})
    points = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF and (chr(c).isalnum() or chr(c).isspace())]
    assert len(points) > 100_000
    for i in range(0, len(points), 20_000):
        block = points[i:i + 20_000]
        text = " ".join(f"a{c}b {c} {c}." for c in block)
        assert tokenize(text) == _python_tokenize(text)
        t._CHUNKS.clear()


def test_compiled_split_asks_for_the_chunks_it_lacks():
    t = _compiled()
    memo = {"well-known": ("well", "-", "known")}
    assert t._compiled_tokens("a well-known (b) cannot x", memo) == {"(b)", "cannot"}
    memo.update({"(b)": ("(", "b", ")"), "cannot": ("can", "not")})
    assert t._compiled_tokens("a well-known (b) cannot x", memo) == \
        ["a", "well", "-", "known", "(", "b", ")", "can", "not", "x"]


def test_compiled_split_is_built_where_a_c_compiler_is():
    import pytest

    from tests.compiled import has_c_compiler

    if not has_c_compiler():
        pytest.skip("no C compiler here: the word split runs in Python")
    from thresher.transforms import _words, text

    assert text._compiled_tokens is _words.tokens
