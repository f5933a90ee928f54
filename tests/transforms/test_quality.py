"""Every reason of every quality filter, on short realistic documents; CJK and German pass."""

import pytest
from hypothesis import given, settings, strategies as st

from thresher.transforms.filters.c4 import C4Quality
from thresher.transforms.filters.fineweb import FineWebQuality
from thresher.transforms.filters.gopher import GopherQuality, GopherRepetition

PROSE = (
    "The committee met on Tuesday to discuss the budget for the coming year. Members agreed that the "
    "library needs a new roof, and that the work should start before the winter rains arrive. "
    "Several residents asked whether the park could have more benches and better lighting along the "
    "river path. The chair promised to bring a costed plan to the next meeting, with options for "
    "each of the proposals that had been raised during the evening.\n"
    "After a short break the discussion turned to the school buses, which have been running late "
    "since the road works began. A parent described how her children wait in the cold for half an "
    "hour. The transport officer said that a temporary timetable will be published next week.\n"
    "Finally, the treasurer reported that donations to the community fund have doubled this year, "
    "thanks to the summer fair and to a generous gift from a local bakery."
)

# Well-formed pages in three languages, written for these tests.
ZH = (
    "今年春天，我们的城市图书馆完成了扩建工程，新馆面积比原来增加了一倍。\n"
    "新馆一楼是儿童阅读区，孩子们可以在这里安静地看书，也可以参加每周末举办的故事会。\n"
    "二楼设有自习室和电脑室，开放时间延长到晚上十点，方便下班以后来学习的读者。\n"
    "馆长介绍说，今年还将增加五万册新书，其中一半是科学和历史方面的读物。\n"
    "许多市民表示，新图书馆环境舒适，交通也很方便，希望以后能有更多这样的公共文化设施。\n"
    "图书馆还计划和附近的学校合作，定期组织读书活动，鼓励学生养成每天阅读的好习惯。"
)
JA = (
    "この春、町の図書館が新しい建物に移転し、閲覧席の数が以前の二倍になりました。\n"
    "一階には子ども向けの読書コーナーがあり、毎週土曜日にはボランティアによる読み聞かせの会が開かれています。\n"
    "二階の学習室は夜九時まで利用でき、仕事帰りに勉強する人たちにも好評です。\n"
    "館長によると、今年度は新たに三万冊の本を購入する予定で、その多くは科学や歴史の本だそうです。\n"
    "利用者からは、駅から近くて便利になったという声や、静かで集中できるという感想が寄せられています。\n"
    "図書館では今後、近くの小学校と協力して、子どもたちが本に親しむための催しを増やしていく考えです。"
)
DE = (
    "Die Stadtbibliothek hat in diesem Frühjahr ihren Neubau bezogen und bietet nun doppelt so viele "
    "Leseplätze wie zuvor. Im Erdgeschoss gibt es eine Kinderecke, in der jeden Samstag Ehrenamtliche "
    "Geschichten vorlesen.\n"
    "Der Lernraum im ersten Stock ist bis zweiundzwanzig Uhr geöffnet, was vor allem Berufstätige "
    "schätzen, die nach der Arbeit noch lernen möchten. Die Leiterin der Bibliothek kündigte an, dass "
    "in diesem Jahr dreißigtausend neue Bücher angeschafft werden.\n"
    "Viele Besucher loben die ruhige Atmosphäre und die gute Anbindung an den Bahnhof. Außerdem will "
    "die Bibliothek mit den Schulen der Umgebung zusammenarbeiten, um Kinder für das Lesen zu "
    "begeistern und ihnen den Umgang mit dem Katalog zu zeigen."
)


def verdict(flt, text, lang="en"):
    return flt.keep(flt.score(text, lang), lang)


@pytest.mark.parametrize("text,lang", [(PROSE, "en"), (ZH, "zh"), (JA, "ja"), (DE, "de")])
@pytest.mark.parametrize("flt", [GopherRepetition(), GopherQuality(), C4Quality(), FineWebQuality()],
                         ids=lambda f: f.name)
def test_well_formed_pages_pass_every_filter_with_defaults(flt, text, lang):
    assert verdict(flt, text, lang) is None


def test_cjk_pages_pass_even_without_a_language_label():
    # langid skipped: the script decides that words are characters
    for text in (ZH, JA):
        assert verdict(GopherQuality(), text, None) is None


# --- Gopher quality: one document per reason -------------------------------------------------

GQ = [
    ("gopher_short_doc", "The library is open on Sunday and the park is closed for the winter."),
    ("gopher_long_doc", ("The cat sat on the mat and looked at the bird with great interest. " * 8000)),
    ("gopher_below_avg_threshold", " ".join(["a to of it is be an my we go do"] * 12) + " the and with that have"),
    ("gopher_above_avg_threshold", " ".join(["internationalisation telecommunications characteristically"] * 20)
     + " the and with that"),
    ("gopher_too_many_hashes", PROSE + " #tag" * 40),
    ("gopher_too_many_ellipsis", PROSE + " and so on..." * 30),
    ("gopher_too_many_bullets", "\n".join(f"- remember the umbrella and the warm coat for trip {i}"
                                          for i in range(60))),
    ("gopher_too_many_end_ellipsis", "\n".join(
        f"The story of the town and the river continues {i} ..." for i in range(20))),
    ("gopher_below_alpha_threshold", PROSE + " " + " ".join(str(i) for i in range(400))),
    ("gopher_enough_stop_words", " ".join(["Bright yellow flowers bloom beside quiet mountain lakes"] * 10)),
]


@pytest.mark.parametrize("reason,text", GQ, ids=[r for r, _ in GQ])
def test_gopher_quality_reasons(reason, text):
    assert verdict(GopherQuality(), text) == reason


def test_gopher_quality_stop_words_are_per_language():
    flt = GopherQuality()
    assert verdict(flt, DE, "de") is None
    # German prose judged with English stop words fails: the rule is per language
    assert verdict(flt, DE, "en") == "gopher_enough_stop_words"
    # a language with no stop-word list runs without that rule
    assert flt.score(DE, "xx")["stop_words"] is None and verdict(flt, DE, "xx") is None


# --- Gopher repetition -----------------------------------------------------------------------

UNIQUE = [f"Sentence number {w} talks about a different subject entirely." for w in
          ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")]
LONG = "This paragraph is long enough that repeating it once covers a large share of the page text. " * 3
def ngram_limits(top: dict, dup: dict) -> dict:
    """GopherRepetition's keyword arguments for these n-gram limits."""
    return {**{f"top_{n}_gram": v for n, v in top.items()}, **{f"duplicated_{n}_n_grams": v for n, v in dup.items()}}


OFF_TOP = {2: 1, 3: 1, 4: 1}
OFF_DUP = {k: 1 for k in range(5, 11)}
OFF = ngram_limits(OFF_TOP, OFF_DUP)

GR = [
    ("empty", "", {}),
    ("dup_para_frac", "\n\n".join(["Click here.", "Click here.", "Click here.", UNIQUE[0]]), OFF),
    ("dup_para_char_frac", "\n\n".join([LONG, LONG] + UNIQUE[:8]), OFF),
    ("dup_line_frac", "\n".join(["Home", UNIQUE[0], "Home", UNIQUE[1], "Home"]), OFF),
    ("dup_line_char_frac", "\n".join([LONG, LONG] + UNIQUE), OFF),
    ("top_2_gram", " ".join(f"buy now item{i}" for i in range(40)), {}),
    ("top_3_gram", " ".join(f"buy it now item{i}" for i in range(40)),
     ngram_limits({2: 1, 3: 0.18, 4: 1}, OFF_DUP)),
    ("top_4_gram", " ".join(f"buy it right now item{i}" for i in range(40)),
     ngram_limits({2: 1, 3: 1, 4: 0.16}, OFF_DUP)),
]
GR += [(f"duplicated_{k}_n_grams", " ".join(UNIQUE) + " " + " ".join(UNIQUE[:6]),
        ngram_limits(OFF_TOP, {j: (0.15 if j == k else 1) for j in range(5, 11)}))
       for k in range(5, 11)]


@pytest.mark.parametrize("reason,text,kw", GR, ids=[r for r, _, _ in GR])
def test_gopher_repetition_reasons(reason, text, kw):
    assert verdict(GopherRepetition(**kw), text) == reason


def test_gopher_repetition_default_thresholds_catch_a_repeated_block():
    text = PROSE + "\n\n" + "\n\n".join([UNIQUE[0] + " " + UNIQUE[1]] * 6)
    assert verdict(GopherRepetition(), text) == "dup_para_frac"


# --- C4 --------------------------------------------------------------------------------------

def test_c4_line_filters_rewrite_the_text():
    text = ("Home | About | Contact\n"
            "Please enable JavaScript to view this site properly.\n"
            "This site uses cookies to improve your experience.\n"
            "Too short.\n"
            "The river rose three metres overnight.[1] Residents were moved to the school.[citation needed]\n"
            + PROSE)
    flt = C4Quality()
    s = flt.score(text)
    assert flt.keep(s) is None
    assert "JavaScript" not in s["text"] and "cookies" not in s["text"] and "Home |" not in s["text"]
    assert "Too short." not in s["text"]
    assert "overnight. Residents" in s["text"] and "[1]" not in s["text"] and "[citation needed]" not in s["text"]
    assert s["lines_removed"] == 4


def test_c4_line_rules_count_words_on_the_line_as_it_came():
    """A line goes for one over-long word (not for being long); words are counted before citation
    markers are removed, and on no-space-script lines each character is a word."""
    flt = C4Quality(max_word_length=10, min_words_per_line=3)
    long_line = "Short words only here, " * 5 + "and it ends."
    text = "\n".join([
        "A supercalifragilistic word ends this line.",  # 20 letters: too_long_word
        long_line,  # longer than 10 characters, no word is: kept
        "Two words[1] [2] [3].",  # three words with the markers, two without: kept
        "東京は大きい。",  # six characters, six words: kept
    ])
    s = flt.score(text)
    assert s["lines_removed"] == 1
    assert s["text"].split("\n") == [long_line, "Two words  .", "東京は大きい。"]
    assert C4Quality(max_word_length=10, min_words_per_line=7).score("東京は大きい。")["lines_removed"] == 1


@pytest.mark.parametrize("reason,text,kw", [
    ("lorem_ipsum", PROSE + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit.", {}),
    ("curly_bracket", PROSE + "\nThe function returns {a: 1} when it is called.", {}),
    ("too_few_sentences", "The library opens at nine.\nIt closes at six.\nMenu", {}),
    ("bad_words", PROSE + " Some darn words here.", {"bad_words": ["darn"]}),
])
def test_c4_document_reasons(reason, text, kw):
    assert verdict(C4Quality(**kw), text) == reason


def test_c4_bad_words_match_whole_words_only():
    assert verdict(C4Quality(bad_words=["ass"]), PROSE + " We passed the class.") is None


# --- FineWeb ---------------------------------------------------------------------------------

@pytest.mark.parametrize("reason,text", [
    ("empty", "\n  \n"),
    ("line_punct_ratio", "\n".join(f"Menu entry number {i} of the site navigation bar" for i in range(20))),
    ("short_line_ratio", "\n".join(["Home", "News", "Sport", "Weather", "A much longer line that ends with a stop."])),
    ("char_dup_ratio", PROSE + "\n" + "Subscribe to our newsletter for weekly updates.\n" * 3),
    ("list_ratio", "\n".join(f"Incomprehensibilitiesnotwithstanding{i}." for i in range(12))
     + "\nThe market sells fruit from local farms every morning of the week."),
])
def test_fineweb_reasons(reason, text):
    assert verdict(FineWebQuality(), text) == reason


# --- every filter on arbitrary input ---------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400), st.sampled_from([None, "en", "zh", "ja", "de", "xx"]))
def test_no_filter_raises_on_arbitrary_unicode(text, lang):
    for flt in (GopherRepetition(), GopherQuality(), C4Quality(bad_words=["x"]), FineWebQuality()):
        flt.keep(flt.score(text, lang), lang)


# --- the vectorised n-gram measures against a plain reference --------------------------------

def _reference_top(words, n):
    from collections import Counter
    grams = [" ".join(words[i:i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0
    gram, count = Counter(grams).most_common(1)[0]
    return len(gram) * count


def _reference_dup(words, n):
    seen, chars, i = set(), 0, 0
    while i < len(words) - n + 1:
        gram = "".join(words[i:i + n])
        if gram in seen:
            chars += len(gram)
            i += n
        else:
            seen.add(gram)
            i += 1
    return chars


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(["a", "bb", "ccc", "the", "word", "x", "yy"]), max_size=80), st.integers(2, 10),
       st.integers(0, 8))
def test_ngram_measures_equal_the_plain_definitions(words, n, more):
    """Each size, and each size computed after smaller ones (which narrow the positions looked at):
    the compiled measures and the numpy ones."""
    from thresher.transforms.filters import gopher
    from thresher.transforms.text import NGrams

    sizes = tuple(range(n, min(10, n + more) + 1))
    for repetition in (gopher.repetition, lambda w, *a: gopher.repetition_numpy(NGrams(w), *a)):
        top, dup = repetition(words, sizes, sizes)
        assert top == {k: _reference_top(words, k) for k in sizes}
        assert dup == {k: _reference_dup(words, k) for k in sizes}
        top, dup = repetition(words, sizes[:1], sizes[1:] or sizes)  # tops and dups apart
        assert top == {sizes[0]: _reference_top(words, sizes[0])}
        assert dup == {k: _reference_dup(words, k) for k in (sizes[1:] or sizes)}


def test_gopher_repetition_gives_the_same_signals_without_the_extension(monkeypatch):
    """An install without a C compiler runs the numpy measures: same signals, same decision."""
    from thresher.transforms.filters import gopher

    texts = [TRICKY_REPEATS, "word " * 300, "one two three four five six seven. " * 40 + "\n\nend of it",
             "Der Hund bellt. Die Katze schläft. " * 12, "日本語のテキストです。" * 30, "x", ""]
    flt = gopher.GopherRepetition()
    compiled = [flt.score(t, "en") for t in texts]
    monkeypatch.setattr(gopher, "_compiled_repetition", None)
    assert [flt.score(t, "en") for t in texts] == compiled
    assert [flt.keep(s, "en") for s in compiled] == [flt.keep(flt.score(t, "en"), "en") for t in texts]


TRICKY_REPEATS = ("the cat sat on the mat and the cat sat on the hat, " * 5 + "then a dog came by.\n") * 3


def test_the_compiled_ngram_measures_are_built_where_a_c_compiler_is():
    """The extension is optional (an install without a compiler runs numpy): where the machine has
    one, a missing extension is a broken build, not a fallback to keep quiet about."""
    from tests.compiled import has_c_compiler
    from thresher.transforms.filters import gopher

    if not has_c_compiler():
        pytest.skip("no C compiler here: the numpy measures run")
    assert gopher._compiled_repetition is not None
    with pytest.raises(TypeError):
        gopher._compiled_repetition(["a", 1], (2,), ())
    with pytest.raises(ValueError):
        gopher._compiled_repetition(["a"], (0,), ())


def _plain_gopher_quality(flt, text, lang):
    """GopherQuality's signals computed over the word list itself (as first written), not the
    distinct words with their counts."""
    from thresher.transforms.text import LANGUAGES, analyse, rules_for

    view = analyse(text)
    words = view.words
    n = len(words)
    content = [w for w in words if any(c.isalnum() for c in w)]
    rules = rules_for(lang, flt.fallback_lang)
    lines = view.lines or [""]
    stops = rules.stop_words
    if lang is None and view.char_words:
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


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["the", "of", "and", "Word", "x²", "—", "...", "#", "東京", "1,5", "-", "•", "\n",
                                 " ", "é", "٣"]), max_size=120).map(" ".join),
       st.sampled_from([None, "en", "zh", "de", "xx"]))
def test_gopher_quality_over_distinct_words_equals_the_plain_formulas(text, lang):
    flt = GopherQuality()
    assert flt.score(text, lang) == _plain_gopher_quality(flt, text, lang)
