"""The quality classifier's pieces with real fastText models: training (floret), the model written in
fastText's format and read by fastText's reader, scoring and the held-out metrics."""

import itertools
import random

import numpy as np
import pytest

from thresher.transforms.classifier import (FastTextScorer, QualityClassifierParams, TrainParams, metrics, one_line,
                                            roc_auc, to_fasttext_format, train)
from thresher.transforms.stage import ConfigError

pytest.importorskip("floret")

GOOD = ["the function returns the sorted list of values and raises an error when the argument is not valid",
        "this module provides classes for reading and writing files in the archive format",
        "each call waits for the lock to be released before it opens a new connection"]
BAD = ["buy cheap watches now best price click here free shipping today only",
       "hot deals casino bonus win big jackpot spin now register free",
       "cheap pills online no prescription discount order now"]


def corpus(seed: int, n: int = 200):
    rng = random.Random(seed)

    def make(base):
        words = " ".join(rng.choice(base) for _ in range(3)).split()
        rng.shuffle(words)
        return " ".join(words)

    return [make(GOOD) for _ in range(n)], [make(BAD) for _ in range(n)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("clf") / "model.bin"
    pos, neg = corpus(0)
    return out, train(pos, neg, str(out), TrainParams(dim=16, epoch=5))


def test_one_line_joins_lines_and_runs_of_space():
    assert one_line("A  line\nand\tanother\r\n\n") == "A line and another"
    assert one_line("Mixed Case", lowercase=True) == "mixed case"


def test_the_trained_model_is_fasttext_format_and_separates_held_out_texts(trained):
    path, result = trained
    with open(path, "rb") as fh:
        assert fh.read(8) == (793712314).to_bytes(4, "little") + (12).to_bytes(4, "little")
    scorer = FastTextScorer(str(path), "__label__hq")  # fasttext-predict's reader
    assert set(scorer.labels) == {"__label__hq", "__label__cc"}
    m = result["held_out_metrics"]
    assert m["auc"] > 0.95 and m["precision"] > 0.9 and m["recall"] > 0.9
    assert result["counts"]["held_out"]["positives"] > 10
    pos, neg = corpus(1, 50)  # texts it never saw
    assert np.mean([scorer(t) for t in pos]) > 0.8 > 0.2 > np.mean([scorer(t) for t in neg])
    other = FastTextScorer(str(path), "__label__cc")
    assert scorer(pos[0]) + other(pos[0]) == pytest.approx(1.0, abs=1e-4)


def test_training_is_deterministic(tmp_path):
    pos, neg = corpus(2, 80)
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    train(pos, neg, str(a), TrainParams(dim=8, epoch=3, seed=7))
    train(pos, neg, str(b), TrainParams(dim=8, epoch=3, seed=7))
    assert a.read_bytes() == b.read_bytes()


def test_a_model_without_the_label_or_not_a_model_is_a_clear_error(trained, tmp_path):
    path, _ = trained
    with pytest.raises(ValueError, match="not one of the model's labels"):
        FastTextScorer(str(path), "__label__nope")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(ValueError, match="not a fastText model"):
        FastTextScorer(str(junk), "__label__hq")
    with pytest.raises(ValueError, match="not a floret/fastText model"):
        to_fasttext_format(b"\x00" * 64)


def test_roc_auc_is_the_share_of_correctly_ordered_pairs_ties_half():
    rng = np.random.default_rng(0)
    pos, neg = rng.integers(0, 5, 40).astype(float), rng.integers(0, 5, 30).astype(float)
    pairs = [(p > n) + 0.5 * (p == n) for p, n in itertools.product(pos, neg)]
    assert roc_auc(pos, neg) == pytest.approx(np.mean(pairs))
    m = metrics([0.9, 0.8, 0.2], [0.1, 0.6])
    assert (m["precision"], m["recall"], m["accuracy"]) == pytest.approx((2 / 3, 2 / 3, 3 / 5))


def test_params_are_validated():
    with pytest.raises(ConfigError, match="quality_classifier.model"):
        QualityClassifierParams(enabled=True).validate("stages.quality_classifier")
    with pytest.raises(ConfigError, match="keep_top"):
        QualityClassifierParams(keep_top=1.5).validate("stages.quality_classifier")


def test_a_worker_process_loads_a_model_once(trained):
    from thresher.transforms.classifier import scorer

    path, _ = trained
    a, b = scorer(str(path), "__label__hq", False), scorer(str(path), "__label__hq", False)
    assert a is b and scorer(str(path), "__label__cc", False) is not a
