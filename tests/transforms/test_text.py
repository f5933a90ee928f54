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
