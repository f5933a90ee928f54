"""Pre-training objectives: how a window of the token stream becomes a training example.

- ``clm``: next-token prediction (GPT): inputs are the window, targets the window shifted by one.
- ``fim``: fill-in-the-middle (code models): a share of the window's documents is cut into
  prefix, middle and suffix and rearranged as ``<|fim_prefix|> prefix <|fim_suffix|> suffix
  <|fim_middle|> middle`` (PSM) or, for a share of those, ``<|fim_prefix|> <|fim_suffix|> suffix
  <|fim_middle|> prefix middle`` (SPM); then next-token prediction on the result.
- ``mlm``: masked language modelling (BERT): exactly round(rate x L) positions of each window are
  chosen, of which 80% become ``<|mask|>``, 10% a random token and 10% stay (configurable); the
  loss is on the chosen positions only.
- ``span``: span corruption (T5): round(density x L) tokens in spans of mean length 3 are
  replaced by sentinels in the encoder's input; the decoder writes each sentinel and its span,
  then EOS.

Every choice is drawn from a generator seeded by (seed, global sample index), so an example is
the same on every rank, DataLoader worker and restart: resume stays exact. Counts are fixed per
window (masked positions, noise tokens, spans), so every example weighs the same in the loss and
ranks that average their losses get the single-process loss.

Pure numpy, no torch: the examples are built (and tested) in the loader's worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from thresher.transforms.tokenization import FIM_MIDDLE, FIM_PREFIX, FIM_SUFFIX, MASK, PAD, sentinel

IGNORE = -100  # a target position without loss (torch's cross_entropy ignore_index)
OBJECTIVES = ("clm", "mlm", "span", "fim")
_SALT = {"mlm": 1, "span": 2, "fim": 3}


@dataclass
class ObjectiveParams:
    mlm_rate: float = 0.15
    mlm_split: tuple[float, float, float] = (0.8, 0.1, 0.1)  # mask / random token / keep
    noise_density: float = 0.15
    mean_span: float = 3.0
    fim_rate: float = 0.5
    fim_spm_rate: float = 0.5


def needed_tokens(objective: str, seq_len: int = 0, params: ObjectiveParams | None = None) -> list[str]:
    if objective == "mlm":
        return [MASK]
    if objective == "fim":
        return [FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX]
    if objective == "span":
        _, spans = span_counts(seq_len, params or ObjectiveParams())
        return [PAD] + [sentinel(i) for i in range(spans)]
    return []


def span_counts(length: int, p: ObjectiveParams) -> tuple[int, int]:
    """(noise tokens, spans) of a window of `length` tokens."""
    noise = min(max(1, round(length * p.noise_density)), length - 1)
    spans = min(max(1, round(noise / p.mean_span)), length - noise)
    return noise, spans


def _segments(rng: np.random.Generator, total: int, parts: int) -> np.ndarray:
    """`total` split into `parts` positive lengths, uniformly at random."""
    cuts = np.sort(rng.choice(np.arange(1, total), size=parts - 1, replace=False)) if parts > 1 else np.empty(0, int)
    return np.diff(np.concatenate([[0], cuts, [total]]))


class Objective:
    """Turns window g (seq_len + 1 tokens) into the arrays one example of this objective needs."""

    def __init__(self, name: str, tokenizer: dict, vocab: dict[str, int], seq_len: int, seed: int,
                 params: ObjectiveParams | None = None):
        if name not in OBJECTIVES:
            raise ValueError(f"unknown objective {name!r} ({', '.join(OBJECTIVES)})")
        self.name, self.seq_len, self.seed = name, seq_len, seed
        self.p = params or ObjectiveParams()
        self.vocab_size = int(tokenizer["vocab_size"])
        self.eos = int(tokenizer["eos_id"])
        missing = [t for t in needed_tokens(name, seq_len, self.p) if t not in vocab]
        if missing:
            raise ValueError(f"the data's tokenizer lacks the special tokens --objective {name} needs "
                             f"({', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''}): tokenize with a "
                             "tokenizer that has them (`thresher tokenizer train` reserves them; the default has them)")
        self.ids = {t: vocab[t] for t in needed_tokens(name, seq_len, self.p)}
        if name == "mlm" and (abs(sum(self.p.mlm_split) - 1) > 1e-9 or min(self.p.mlm_split) < 0):
            raise ValueError(f"mlm split {self.p.mlm_split} must be three shares summing to 1")

    def rng(self, g: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, g, _SALT[self.name]])

    def example(self, window: np.ndarray, g: int) -> dict[str, np.ndarray]:
        if self.name == "clm":
            return {"inputs": window[:-1], "targets": window[1:]}
        if self.name == "fim":
            w = self.fim(window, self.rng(g))
            return {"inputs": w[:-1], "targets": w[1:]}
        if self.name == "mlm":
            return self.mlm(window[:-1], self.rng(g))
        return self.span(window[:-1], self.rng(g))

    def mlm(self, x: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n = len(x)
        k = max(1, round(n * self.p.mlm_rate))
        chosen = rng.choice(n, size=k, replace=False)
        targets = np.full(n, IGNORE, dtype=np.int64)
        targets[chosen] = x[chosen]
        inputs = x.astype(np.int64, copy=True)
        action = rng.random(k)
        mask_share, random_share, _ = self.p.mlm_split
        to_mask = chosen[action < mask_share]
        to_random = chosen[(action >= mask_share) & (action < mask_share + random_share)]
        inputs[to_mask] = self.ids[MASK]
        inputs[to_random] = rng.integers(0, self.vocab_size, size=len(to_random))
        return {"inputs": inputs, "targets": targets}

    def span(self, x: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        n = len(x)
        noise, spans = span_counts(n, self.p)
        noise_lens = _segments(rng, noise, spans)
        keep_lens = _segments(rng, n - noise, spans)  # the text starts with kept tokens, as in T5
        enc, dec = [], []
        pos = 0
        for i in range(spans):
            enc.append(x[pos:pos + keep_lens[i]])
            pos += keep_lens[i]
            s = self.ids[sentinel(i)]
            enc.append([s])
            dec.append([s])
            dec.append(x[pos:pos + noise_lens[i]])
            pos += noise_lens[i]
        dec.append([self.eos])
        inputs = np.concatenate(enc).astype(np.int64)
        targets = np.concatenate(dec).astype(np.int64)
        decoder_inputs = np.concatenate([[self.ids[PAD]], targets[:-1]]).astype(np.int64)
        return {"inputs": inputs, "decoder_inputs": decoder_inputs, "targets": targets}

    def fim(self, w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The window's documents (cut at EOS), a share of them rearranged; as long as the window."""
        ends = np.flatnonzero(w == self.eos) + 1
        pieces = np.split(w, ends)
        out = []
        pre, mid, suf = self.ids[FIM_PREFIX], self.ids[FIM_MIDDLE], self.ids[FIM_SUFFIX]
        for piece in pieces:
            if not len(piece):
                continue
            has_eos = piece[-1] == self.eos
            doc = piece[:-1] if has_eos else piece
            draw, spm, cuts = rng.random(), rng.random(), np.sort(rng.integers(0, len(doc) + 1, size=2))
            if len(doc) < 2 or draw >= self.p.fim_rate:
                out.append(piece)
                continue
            prefix, middle, suffix = doc[:cuts[0]], doc[cuts[0]:cuts[1]], doc[cuts[1]:]
            if spm < self.p.fim_spm_rate:
                parts = [[pre, suf], suffix, [mid], prefix, middle]
            else:
                parts = [[pre], prefix, [suf], suffix, [mid], middle]
            out.extend(np.asarray(p, dtype=w.dtype) for p in parts)
            if has_eos:
                out.append(np.asarray([self.eos], dtype=w.dtype))
        return np.concatenate(out)[:len(w)].astype(np.int64)
