from pathlib import Path
import numpy as np
import pytest

from thresher.transforms.tokenization import default_tokenizer
from thresher.transforms.tokenization import (RESERVED_TOKENS, TokenizeDocuments, tokenizer_from_json, tokenizer_sha256,
                                              train_bpe)

TEXTS = [
    "The quick brown fox jumps over the lazy dog. " * 5,
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "敏捷的棕色狐狸跳过了懒狗。日本語のテキストも使えます。",
    "def f(x):\n    return x ** 2  # code, too\n",
] * 20


def test_training_is_deterministic_and_byte_level():
    a = train_bpe(TEXTS, 700)
    b = train_bpe(TEXTS, 700)
    assert tokenizer_sha256(a) == tokenizer_sha256(b)
    assert a.get_vocab_size() <= 700
    # byte-level: text never seen in training encodes and decodes exactly
    unseen = "Ωμέγα ✓ emoji 🙂 and tabs\tand\nnewlines"
    assert a.decode(a.encode(unseen).ids) == unseen


def test_documents_get_tokens_with_eos():
    tok = train_bpe(TEXTS, 700)
    stage = TokenizeDocuments(tok.to_str(), "t.json")
    docs = stage([{"id": "a", "text": TEXTS[0]}, {"id": "b", "text": TEXTS[2]}])
    eos = stage.info.eos_id
    for d, text in zip(docs, (TEXTS[0], TEXTS[2])):
        assert d["tokens"].dtype == np.uint16
        assert d["tokens"][-1] == eos and d["n_tokens"] == len(d["tokens"])
        assert list(d["tokens"][:-1]) == tok.encode(text, add_special_tokens=False).ids


def test_the_stage_gives_the_ids_of_encode_batch_with_the_shipped_tokenizer():
    # the stage calls encode_batch_fast (no character offsets): the ids must be encode_batch's, also on
    # empty texts, special tokens written in the text, odd whitespace and scripts the vocabulary lacks
    texts = [*TEXTS[:4], "", " ", "a<|endoftext|>b <|mask|>", "\u200b\ufeff\r\n\t x", "🙂" * 40,
             "ﬁne ½ Ⅻ ǅ", "x" * 5000]
    stage = TokenizeDocuments(Path(default_tokenizer()).read_text(), "tokenizer.json")
    want = [e.ids + [stage.info.eos_id] for e in stage.tokenizer.encode_batch(texts, add_special_tokens=False)]
    assert [d["tokens"].tolist() for d in stage([{"id": str(i), "text": t} for i, t in enumerate(texts)])] == want
    assert any(len(w) > 2 * len(t) for w, t in zip(want, texts) if t)  # the emoji: several byte tokens each


def test_tokenizer_without_eos_is_refused(tmp_path):
    tok = train_bpe(TEXTS, 700, eos_token="<eos>")
    with pytest.raises(ValueError, match="no EOS token"):
        tokenizer_from_json(tok.to_str(), "x.json", eos_token="<|endoftext|>")
    with pytest.raises(ValueError, match="not a tokenizer.json"):
        tokenizer_from_json("{}", "bad.json")


def test_large_vocabularies_use_uint32():
    tok = train_bpe(TEXTS, 700)
    stage = TokenizeDocuments(tok.to_str(), "t.json")
    assert stage.info.dtype == "uint16"
    info = stage.info.__class__("x", "h", 70_000, "<|endoftext|>", 0)
    assert info.dtype == "uint32"


def test_the_shipped_default_tokenizer_loads():
    tok, info = tokenizer_from_json(Path(default_tokenizer()).read_text(), "tokenizer.json")
    assert info.vocab_size == 8192 + len(RESERVED_TOKENS) and info.dtype == "uint16"
    assert set(info.special_tokens) == set(RESERVED_TOKENS)  # the trainer's objectives need them
    assert tok.decode(tok.encode("Debian package documentation").ids) == "Debian package documentation"


def test_the_tokenizer_is_read_once_and_its_bytes_shipped(tmp_path):
    """The driver reads the tokenizer once (`resolve`); workers build from those bytes, so a file
    replaced or gone in between cannot make the shards disagree with the manifest."""
    from thresher.transforms import stage as registry
    from thresher.transforms.stage import StageContext
    from thresher.transforms.tokenization import TokenizeParams

    path = tmp_path / "tok.json"
    path.write_text(Path(default_tokenizer()).read_text())
    stage = registry.get("tokenize")
    params = TokenizeParams(tokenizer=str(path))
    loaded = stage.resolve(params, lambda p: open(p, "rb"))
    path.unlink()  # e.g. a gs:// object replaced after the job was submitted
    fn = stage.build(params, StageContext(config=None, resource=loaded))
    (doc,) = fn([{"text": "Hello world"}])
    assert fn.info == loaded.info and doc["tokens"][-1] == loaded.info.eos_id


def test_trained_tokenizers_reserve_the_objectives_special_tokens():
    tok = train_bpe(TEXTS, 700)
    _, info = tokenizer_from_json(tok.to_str(), "t.json")
    assert info.special_tokens == {t: i + 1 for i, t in enumerate(RESERVED_TOKENS)}  # after EOS, in order
    assert tok.encode("<|mask|>").ids == [info.special_tokens["<|mask|>"]]


def test_each_local_worker_gets_its_share_of_the_cores_for_encode_batch(monkeypatch):
    import os

    from thresher.pipeline.config import Config
    from thresher.transforms.tokenization import TokenizeParams, use_threads, worker_threads

    cfg = Config()
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    cfg.runner.workers = 2
    assert worker_threads(TokenizeParams(), cfg) == 4
    cfg.runner.workers = 16
    assert worker_threads(TokenizeParams(), cfg) == 1
    assert worker_threads(TokenizeParams(threads=3), cfg) == 3
    cfg.runner.name = "spark"  # a worker process per core already
    assert worker_threads(TokenizeParams(), cfg) == 1

    monkeypatch.delenv("TOKENIZERS_PARALLELISM", raising=False)
    monkeypatch.delenv("RAYON_NUM_THREADS", raising=False)
    use_threads(1, explicit=False)
    assert os.environ["TOKENIZERS_PARALLELISM"] == "false" and os.environ["RAYON_NUM_THREADS"] == "1"
    use_threads(4, explicit=False)  # the user's (here: the first call's) setting stands
    assert os.environ["TOKENIZERS_PARALLELISM"] == "false"
    use_threads(4, explicit=True)  # stages.tokenize.threads set in the recipe
    assert os.environ["TOKENIZERS_PARALLELISM"] == "true" and os.environ["RAYON_NUM_THREADS"] == "4"
