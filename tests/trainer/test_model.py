"""The Llama-style model: causality, document-aware attention, sizes, schedules."""

import math

import pytest
import torch

from thresher.trainer.model import MODELS, ModelConfig, Transformer, document_layout
from thresher.trainer.schedule import LRSchedule

TINY = MODELS["tiny"].with_vocab(300, max_seq_len=64)


def model(cfg=TINY):
    m = Transformer(cfg)
    m.init_weights(0)
    return m.eval()


def test_logits_depend_only_on_earlier_tokens():
    m = model()
    x = torch.randint(0, 300, (2, 32))
    y = x.clone()
    y[:, 20:] = torch.randint(0, 300, (2, 12))
    with torch.no_grad():
        a, b = m(x), m(y)
    torch.testing.assert_close(a[:, :20], b[:, :20])
    assert not torch.allclose(a[:, 20:], b[:, 20:])


def test_document_aware_attention_equals_running_each_document_alone():
    eos = 0
    m = model()
    d1 = torch.randint(1, 300, (10,))
    d2 = torch.randint(1, 300, (15,))
    packed = torch.cat([d1, torch.tensor([eos]), d2]).unsqueeze(0)
    positions, doc_ids = document_layout(packed, eos)
    assert positions[0, 11].item() == 0 and doc_ids[0, 11].item() == 1
    assert positions[0, 10].item() == 10  # the EOS closes the first document
    with torch.no_grad():
        together = m(packed, positions, doc_ids)
        alone = m(d2.unsqueeze(0))
        plain = m(packed)
    torch.testing.assert_close(together[:, 11:], alone, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(plain[:, 11:], alone, atol=1e-3)  # without the mask it would leak


def test_grouped_query_attention_has_fewer_key_value_weights():
    cfg = ModelConfig(dim=64, n_layers=1, n_heads=8, n_kv_heads=2, ffn_dim=128, vocab_size=100)
    m = Transformer(cfg)
    assert m.layers[0].attn.wk.weight.shape == (16, 64)
    assert m(torch.randint(0, 100, (1, 8))).shape == (1, 8, 100)
    with pytest.raises(ValueError, match="multiple of n_kv_heads"):
        ModelConfig(dim=64, n_layers=1, n_heads=8, n_kv_heads=3, ffn_dim=128)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_parameter_count_formula_matches_the_module(name):
    cfg = MODELS[name].with_vocab(32000)
    with torch.device("meta"):
        m = Transformer(cfg)
    assert sum(p.numel() for p in m.parameters()) == cfg.n_params()


def test_named_sizes_are_what_they_say():
    assert 1.0e9 < MODELS["1b"].with_vocab(32000).n_params() < 1.3e9
    assert 110e6 < MODELS["125m"].with_vocab(32000).n_params() < 140e6


def test_init_is_deterministic_and_sequence_length_is_checked():
    a, b = model(), model()
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    with pytest.raises(ValueError, match="max_seq_len"):
        a(torch.zeros(1, 65, dtype=torch.long))


def test_schedules():
    cos = LRSchedule(1.0, warmup=10, total=110, kind="cosine", min_ratio=0.1)
    assert cos.lr(0) == pytest.approx(0.1) and cos.lr(9) == pytest.approx(1.0)
    assert cos.lr(60) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert cos.lr(110) == pytest.approx(0.1)
    wsd = LRSchedule(1.0, warmup=10, total=100, kind="wsd", min_ratio=0.0, decay_fraction=0.2)
    assert wsd.lr(50) == 1.0 and wsd.lr(79) == 1.0 and wsd.lr(90) == pytest.approx(0.5)
    assert wsd.lr(100) == 0.0
    with pytest.raises(ValueError):
        LRSchedule(1.0, 0, 10, kind="linear")


def test_learning_rate_defaults_by_model_size_and_help_gives_every_default(capsys):
    from thresher.trainer.train import DEFAULT_LR, parse_args

    assert parse_args(["--data", "x"]).lr == 3e-3  # tiny
    assert parse_args(["--data", "x", "--model", "1b"]).lr == DEFAULT_LR["1b"] == 2e-4
    assert parse_args(["--data", "x", "--model", "1b", "--lr", "1e-4"]).lr == 1e-4
    with pytest.raises(SystemExit):
        parse_args(["--data", "x", "--extend"])  # --extend without --resume
    assert "--extend changes a resumed run's --steps: it needs --resume" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--steps", "--batch-size", "--warmup", "--ckpt-every", "--num-workers", "--schedule", "--output"):
        assert f"{flag} " in text
    assert text.count("(default: ") >= 20 and "tiny 0.003" in text



def test_the_encoder_attends_both_ways_and_ties_its_head():
    m = Transformer(TINY, causal=False)
    m.init_weights(0)
    m.eval()
    assert m.output.weight is m.embed.weight
    x = torch.randint(0, 300, (1, 32))
    y = x.clone()
    y[:, 30] = (y[:, 30] + 1) % 300
    with torch.no_grad():
        assert not torch.allclose(m(x)[:, :20], m(y)[:, :20])  # a later token changes earlier outputs


def test_the_encoder_decoder_decodes_causally_over_the_whole_input():
    from thresher.trainer.model import EncoderDecoder

    m = EncoderDecoder(TINY)
    m.init_weights(0)
    m.eval()
    enc, dec = torch.randint(0, 300, (2, 24)), torch.randint(0, 300, (2, 12))
    dec2 = dec.clone()
    dec2[:, 8:] = (dec2[:, 8:] + 1) % 300
    enc2 = enc.clone()
    enc2[:, -1] = (enc2[:, -1] + 1) % 300
    with torch.no_grad():
        a = m(enc, dec)
        assert a.shape == (2, 12, 300)
        torch.testing.assert_close(a[:, :8], m(enc, dec2)[:, :8])  # the decoder is causal
        assert not torch.allclose(a[:, :4], m(enc2, dec)[:, :4])  # and reads all of the input


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("kind", ["encoder", "encoder-decoder"])
def test_parameter_counts_of_the_other_kinds(name, kind):
    from thresher.trainer.model import EncoderDecoder

    cfg = MODELS[name].with_vocab(32000)
    with torch.device("meta"):
        m = Transformer(cfg, causal=False) if kind == "encoder" else EncoderDecoder(cfg)
    assert sum(p.numel() for p in m.parameters()) == cfg.n_params(kind=kind)
