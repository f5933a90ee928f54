"""A Llama-style decoder small enough to hold in your head.

RMSNorm before attention and MLP, rotary position embeddings, SwiGLU, optional grouped-query
attention (fewer key/value heads than query heads), and PyTorch's fused causal
``scaled_dot_product_attention``. With ``positions`` and ``doc_ids`` a packed window becomes
document-aware: positions restart at each document and a token attends only to earlier tokens of
its own document.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint


@dataclass(frozen=True)
class ModelConfig:
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    ffn_dim: int
    vocab_size: int = 8192
    max_seq_len: int = 2048
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5

    def __post_init__(self):
        if self.dim % self.n_heads:
            raise ValueError(f"dim {self.dim} is not a multiple of n_heads {self.n_heads}")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads {self.n_heads} is not a multiple of n_kv_heads {self.n_kv_heads}")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    def with_vocab(self, vocab_size: int, max_seq_len: int | None = None) -> "ModelConfig":
        return replace(self, vocab_size=vocab_size, max_seq_len=max_seq_len or self.max_seq_len)

    def to_dict(self) -> dict:
        return asdict(self)

    def flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs per token: 6 x (non-embedding matmul params + LM head) plus attention
        scores and values (PaLM appendix B), counted for a full causal window as is usual for MFU."""
        n = self.n_params(include_embedding=False)
        return 6 * n + 12 * self.n_layers * self.dim * seq_len

    def n_params(self, include_embedding: bool = True, kind: str = "decoder") -> int:
        """Parameters of a `kind` model: "decoder" (clm, fim), "encoder" (mlm: the head is tied to
        the embedding) or "encoder-decoder" (span: n_layers in each stack, cross-attention in the
        decoder's, one shared embedding, an untied head)."""
        kv = self.n_kv_heads * self.head_dim
        attn = self.dim * self.dim * 2 + self.dim * kv * 2
        mlp = 3 * self.dim * self.ffn_dim
        block = attn + mlp + 2 * self.dim
        table = self.vocab_size * self.dim
        if kind == "encoder":
            return self.n_layers * block + self.dim + (table if include_embedding else 0)
        if kind == "encoder-decoder":
            body = self.n_layers * block + self.dim + self.n_layers * (block + attn + self.dim) + self.dim
            return body + table + (table if include_embedding else 0)
        body = self.n_layers * block + self.dim
        return body + table + (table if include_embedding else 0)


def _ffn(dim: int, multiple: int = 256) -> int:
    """Llama's SwiGLU width: 8/3 of dim, rounded up to a multiple."""
    return multiple * math.ceil(int(8 * dim / 3) / multiple)


# Named sizes. Parameter counts depend on the vocabulary (the data's tokenizer decides it);
# the names give the size with a 32k vocabulary. "1b" is Llama-3.2-1B's body.
MODELS: dict[str, ModelConfig] = {
    "tiny": ModelConfig(dim=64, n_layers=2, n_heads=4, n_kv_heads=2, ffn_dim=192),
    "small": ModelConfig(dim=256, n_layers=4, n_heads=8, n_kv_heads=4, ffn_dim=_ffn(256)),
    "125m": ModelConfig(dim=768, n_layers=12, n_heads=12, n_kv_heads=12, ffn_dim=2048),
    "350m": ModelConfig(dim=1024, n_layers=24, n_heads=16, n_kv_heads=8, ffn_dim=2816),
    "1b": ModelConfig(dim=2048, n_layers=16, n_heads=32, n_kv_heads=8, ffn_dim=8192),
}


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalise in fp32: bf16's 8-bit mantissa loses the mean of squares.
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return h.type_as(x) * self.weight


def rope_tables(head_dim: int, max_len: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(max_len, dtype=torch.float32), inv)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x[2i], x[2i+1]); x is (B, T, H, D), cos/sin are (B or 1, T, D/2)."""
    xf = x.float().unflatten(-1, (-1, 2))
    a, b = xf[..., 0], xf[..., 1]
    cos, sin = cos.unsqueeze(2), sin.unsqueeze(2)
    out = torch.stack((a * cos - b * sin, a * sin + b * cos), dim=-1).flatten(-2)
    return out.type_as(x)


class Attention(nn.Module):
    """Self-attention (rotary positions; causal or bidirectional), or cross-attention when given
    `memory` (the encoder's output: no rotation, every position visible)."""

    def __init__(self, cfg: ModelConfig, causal: bool = True):
        super().__init__()
        self.n_heads, self.n_kv, self.head_dim = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.causal = causal
        self.wq = nn.Linear(cfg.dim, cfg.n_heads * cfg.head_dim, bias=False)
        self.wk = nn.Linear(cfg.dim, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.wv = nn.Linear(cfg.dim, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.wo = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.dim, bias=False)

    def forward(self, x, cos, sin, mask, memory=None):
        B, T, _ = x.shape
        src = x if memory is None else memory
        S = src.shape[1]
        q = self.wq(x).view(B, T, self.n_heads, self.head_dim)
        k = self.wk(src).view(B, S, self.n_kv, self.head_dim)
        if memory is None:
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        v = self.wv(src).view(B, S, self.n_kv, self.head_dim)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        if self.n_kv != self.n_heads:
            k = k.repeat_interleave(self.n_heads // self.n_kv, dim=1)
            v = v.repeat_interleave(self.n_heads // self.n_kv, dim=1)
        if mask is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal and memory is None)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.wo(y.transpose(1, 2).reshape(B, T, -1))


class FeedForward(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.w1 = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.w3 = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)
        self.w2 = nn.Linear(cfg.ffn_dim, cfg.dim, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    """Pre-norm block: self-attention, cross-attention to `memory` (decoder blocks of an
    encoder-decoder only), feed-forward."""

    def __init__(self, cfg: ModelConfig, causal: bool = True, cross: bool = False):
        super().__init__()
        self.attn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attn = Attention(cfg, causal)
        if cross:
            self.cross_norm = RMSNorm(cfg.dim, cfg.norm_eps)
            self.cross = Attention(cfg, causal=False)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.ffn = FeedForward(cfg)
        self.checkpointed = False  # activation checkpointing: recompute this block in backward

    def _forward(self, x, cos, sin, mask, memory=None):
        x = x + self.attn(self.attn_norm(x), cos, sin, mask)
        if memory is not None:
            x = x + self.cross(self.cross_norm(x), None, None, None, memory=memory)
        return x + self.ffn(self.ffn_norm(x))

    def forward(self, x, cos, sin, mask, memory=None):
        if self.checkpointed and self.training:
            return checkpoint(self._forward, x, cos, sin, mask, memory, use_reentrant=False)
        return self._forward(x, cos, sin, mask, memory)


class Transformer(nn.Module):
    """A decoder (causal, for clm and fim) or, with ``causal=False``, an encoder whose head is
    tied to the embedding (BERT-style, for mlm)."""

    kind = "decoder"

    def __init__(self, cfg: ModelConfig, causal: bool = True):
        super().__init__()
        self.cfg = cfg
        self.causal = causal
        self.embed = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(Block(cfg, causal) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.output = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        if not causal:
            self.kind = "encoder"
            self.output.weight = self.embed.weight  # the MLM head reads the embedding table
        cos, sin = rope_tables(cfg.head_dim, cfg.max_seq_len, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    @property
    def blocks(self):
        return list(self.layers)

    @torch.no_grad()
    def init_weights(self, seed: int = 0) -> None:
        """GPT-2 style: N(0, 0.02), residual projections scaled by 1/sqrt(2 * n_layers)."""
        g = torch.Generator().manual_seed(seed)
        scaled = 0.02 / math.sqrt(2 * self.cfg.n_layers)
        for name, p in self.named_parameters():  # a tied head is listed once, as the embedding
            if p.ndim == 1:
                p.fill_(1.0)
            else:
                std = scaled if name.endswith(("wo.weight", "w2.weight")) else 0.02
                p.copy_(torch.randn(p.shape, generator=g) * std)
        cos, sin = rope_tables(self.cfg.head_dim, self.cfg.max_seq_len, self.cfg.rope_theta)
        self.rope_cos.copy_(cos)
        self.rope_sin.copy_(sin)

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor | None = None,
                doc_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B, T, vocab). ``positions``/``doc_ids`` (B, T) make attention document-aware."""
        B, T = tokens.shape
        if T > self.cfg.max_seq_len:
            raise ValueError(f"sequence of {T} tokens exceeds max_seq_len {self.cfg.max_seq_len}")
        if positions is None:
            cos, sin = self.rope_cos[:T].unsqueeze(0), self.rope_sin[:T].unsqueeze(0)
        else:
            cos, sin = self.rope_cos[positions], self.rope_sin[positions]
        mask = None
        if doc_ids is not None:
            mask = doc_ids.unsqueeze(2) == doc_ids.unsqueeze(1)
            if self.causal:
                mask = mask & torch.ones(T, T, dtype=torch.bool, device=tokens.device).tril()
            mask = mask.unsqueeze(1)  # (B, 1, T, T), broadcast over heads
        h = self.embed(tokens)
        for layer in self.layers:
            h = layer(h, cos, sin, mask)
        return self.output(self.norm(h))


class EncoderDecoder(nn.Module):
    """T5-style (for span corruption): a bidirectional encoder reads the corrupted text, a causal
    decoder with cross-attention writes the spans. One embedding for both stacks, rotary positions
    in self-attention, an untied head; n_layers blocks in each stack."""

    kind = "encoder-decoder"

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.encoder = nn.ModuleList(Block(cfg, causal=False) for _ in range(cfg.n_layers))
        self.encoder_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.decoder = nn.ModuleList(Block(cfg, causal=True, cross=True) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.output = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        cos, sin = rope_tables(cfg.head_dim, cfg.max_seq_len, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    @property
    def blocks(self):
        return list(self.encoder) + list(self.decoder)

    init_weights = Transformer.init_weights

    def forward(self, inputs: torch.Tensor, decoder_inputs: torch.Tensor) -> torch.Tensor:
        """Logits (B, T_dec, vocab) of the decoder reading `decoder_inputs` over the encoded `inputs`."""
        S, T = inputs.shape[1], decoder_inputs.shape[1]
        if max(S, T) > self.cfg.max_seq_len:
            raise ValueError(f"sequence of {max(S, T)} tokens exceeds max_seq_len {self.cfg.max_seq_len}")
        h = self.embed(inputs)
        cos, sin = self.rope_cos[:S].unsqueeze(0), self.rope_sin[:S].unsqueeze(0)
        for layer in self.encoder:
            h = layer(h, cos, sin, None)
        memory = self.encoder_norm(h)
        y = self.embed(decoder_inputs)
        cos, sin = self.rope_cos[:T].unsqueeze(0), self.rope_sin[:T].unsqueeze(0)
        for layer in self.decoder:
            y = layer(y, cos, sin, None, memory=memory)
        return self.output(self.norm(y))


def document_layout(tokens: torch.Tensor, eos_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(positions, doc_ids) for packed windows: a document starts at 0 and after each EOS."""
    starts = torch.zeros_like(tokens, dtype=torch.bool)
    starts[:, 1:] = tokens[:, :-1] == eos_id
    doc_ids = starts.long().cumsum(1)
    idx = torch.arange(tokens.shape[1], device=tokens.device).expand_as(tokens)
    start_idx = torch.where(starts, idx, torch.zeros_like(idx)).cummax(1).values
    return idx - start_idx, doc_ids
