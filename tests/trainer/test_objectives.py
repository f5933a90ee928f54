"""The objectives' examples (trainer/objectives.py): what each one masks, corrupts or rearranges,
and that an example depends only on (seed, global sample index)."""

import numpy as np
import pytest

from thresher.trainer.objectives import IGNORE, Objective, ObjectiveParams, span_counts
from thresher.transforms.tokenization import FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX, MASK, PAD, RESERVED_TOKENS, sentinel

EOS = 0
VOCAB = {t: 1000 + i for i, t in enumerate(RESERVED_TOKENS)}
TOK = {"vocab_size": 1000 + len(RESERVED_TOKENS), "eos_id": EOS}


def objective(name, seq_len=128, seed=0, **params):
    return Objective(name, TOK, VOCAB, seq_len, seed, ObjectiveParams(**params))


def window(n=129, seed=1):
    return np.random.default_rng(seed).integers(1, 1000, size=n).astype(np.uint16)


def test_mlm_predicts_a_fixed_number_of_positions_shown_80_10_10():
    obj, w = objective("mlm"), window()
    shown = {"mask": 0, "random": 0, "kept": 0}
    for g in range(200):
        e = obj.example(w, g)
        chosen = e["targets"] != IGNORE
        assert chosen.sum() == round(128 * 0.15)  # the same in every example
        assert (e["targets"][chosen] == w[:-1][chosen]).all()
        assert (e["inputs"][~chosen] == w[:-1][~chosen]).all()
        shown["mask"] += int((e["inputs"][chosen] == VOCAB[MASK]).sum())
        shown["kept"] += int((e["inputs"][chosen] == w[:-1][chosen]).sum())
    total = 200 * 19
    shown["random"] = total - shown["mask"] - shown["kept"]
    assert 0.76 < shown["mask"] / total < 0.84 and 0.07 < shown["random"] / total < 0.13
    assert 0.07 < shown["kept"] / total < 0.14  # (a random token can equal the original too)


def test_span_corruption_round_trips_and_has_fixed_lengths():
    obj, w = objective("span"), window()
    noise, spans = span_counts(128, ObjectiveParams())
    assert (noise, spans) == (19, 6)
    for g in range(50):
        e = obj.example(w, g)
        assert len(e["inputs"]) == 128 - noise + spans and len(e["targets"]) == noise + spans + 1
        assert e["decoder_inputs"][0] == VOCAB[PAD] and (e["decoder_inputs"][1:] == e["targets"][:-1]).all()
        assert e["targets"][-1] == EOS
        # put the spans back where the sentinels are: the original window
        spans_of, current = {}, None
        for t in e["targets"][:-1]:
            if t >= 1005:
                current = t
                spans_of[t] = []
            else:
                spans_of[current].append(t)
        rebuilt = [t for s in e["inputs"] for t in (spans_of[s] if s in spans_of else [s])]
        assert rebuilt == w[:-1].tolist()
        assert all(len(v) >= 1 for v in spans_of.values()) and len(spans_of) == spans


def test_fim_rearranges_documents_and_keeps_the_window_length():
    doc1, doc2 = list(range(1, 51)), list(range(101, 131))
    w = np.array(doc1 + [EOS] + doc2 + [EOS] + [7] * 10, dtype=np.uint16)
    pre, mid, suf = VOCAB[FIM_PREFIX], VOCAB[FIM_MIDDLE], VOCAB[FIM_SUFFIX]
    assert (objective("fim", fim_rate=0.0).example(w, 3)["inputs"] == w[:-1]).all()
    orders = set()
    for g in range(40):
        out = objective("fim", fim_rate=1.0).fim(w, objective("fim").rng(g)).tolist()
        assert len(out) == len(w) and out[0] == pre
        first = out[:out.index(EOS)]
        if first[1] == suf:  # SPM: <pre><suf> suffix <mid> prefix middle
            i = first.index(mid)
            rebuilt, orders = first[i + 1:] + first[2:i], orders | {"spm"}
        else:  # PSM: <pre> prefix <suf> suffix <mid> middle
            i, j = first.index(suf), first.index(mid)
            rebuilt, orders = first[1:i] + first[j + 1:] + first[i + 1:j], orders | {"psm"}
        assert rebuilt == doc1
    assert orders == {"psm", "spm"}


@pytest.mark.parametrize("name", ["mlm", "span", "fim"])
def test_an_example_depends_only_on_seed_and_index(name):
    w = window()
    a, b = objective(name).example(w, 17), objective(name).example(w, 17)
    for k in a:
        assert (a[k] == b[k]).all()
    assert any((objective(name).example(w, 18)[k] != a[k]).any() for k in a)
    assert any((objective(name, seed=1).example(w, 17)[k] != a[k]).any() for k in a)


def test_an_objective_whose_tokens_the_tokenizer_lacks_is_refused():
    with pytest.raises(ValueError, match="lacks the special tokens --objective mlm needs"):
        Objective("mlm", TOK, {}, 128, 0)
    few = {t: i for t, i in VOCAB.items() if t in (PAD, sentinel(0), sentinel(1))}
    with pytest.raises(ValueError, match="sentinel_2"):
        Objective("span", TOK, few, 128, 0)
    Objective("clm", TOK, {}, 128, 0)  # next-token prediction needs none
