"""A checkpoint as a Hugging Face model folder: ``model.safetensors``, a Llama ``config.json``, and
the tokenizer when it can be found.

The model is Llama's architecture (RMSNorm, rotary embeddings, SwiGLU, grouped-query attention,
no biases, untied head), so the folder loads with ``transformers.AutoModelForCausalLM`` and any
tool that reads Llama checkpoints (vLLM, llama.cpp's converter, ...). One difference is in the
weights' layout, not the maths: Thresher rotates the pairs (x[2i], x[2i+1]) of each head, Llama's
code rotates (x[i], x[i + d/2]); the query and key projections' rows are permuted per head to
match, which gives the same attention scores.

The checkpoint is read with ``torch.distributed.checkpoint`` in one process, whatever the number
of ranks that wrote it.
"""

from __future__ import annotations

import json
import os
import shutil

import torch

from thresher.trainer import checkpoint
from thresher.trainer.data import DataError
from thresher.trainer.model import ModelConfig, Transformer

WEIGHTS = "model.safetensors"


def find_checkpoint(path: str) -> str:
    """A checkpoint folder (``step-NNNNNNN``), or the newest one in a training --output."""
    if os.path.exists(os.path.join(path, checkpoint.STATE)):
        return path
    if latest := checkpoint.latest(path):
        return latest
    raise DataError(f"{path}: not a checkpoint, and holds none (is it a `thresher train --output`?)")


def load_model(path: str) -> tuple[Transformer, dict]:
    """The checkpoint's model, unsharded on the CPU, and its trainer state."""
    import torch.distributed as dist
    import torch.distributed.checkpoint as dcp

    state = checkpoint.read_state(path)
    model = Transformer(ModelConfig(**state["model"]))
    weights = model.state_dict()
    dcp.load({"model": weights}, checkpoint_id=path, no_dist=not dist.is_initialized())  # reshards whatever the writers' world size was
    model.load_state_dict(weights)
    return model.eval(), state


def _rope_halves(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Rows of a q/k projection from interleaved rotary pairs to Llama's halves, head by head."""
    out_dim, dim = w.shape
    head_dim = out_dim // n_heads
    return w.view(n_heads, head_dim // 2, 2, dim).transpose(1, 2).reshape(out_dim, dim)


def llama_weights(model: Transformer) -> dict[str, torch.Tensor]:
    cfg = model.cfg
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    out = {"model.embed_tokens.weight": sd["embed.weight"], "model.norm.weight": sd["norm.weight"],
           "lm_head.weight": sd["output.weight"]}
    for i in range(cfg.n_layers):
        src, dst = f"layers.{i}.", f"model.layers.{i}."
        out[dst + "self_attn.q_proj.weight"] = _rope_halves(sd[src + "attn.wq.weight"], cfg.n_heads).contiguous()
        out[dst + "self_attn.k_proj.weight"] = _rope_halves(sd[src + "attn.wk.weight"], cfg.n_kv_heads).contiguous()
        out[dst + "self_attn.v_proj.weight"] = sd[src + "attn.wv.weight"]
        out[dst + "self_attn.o_proj.weight"] = sd[src + "attn.wo.weight"]
        out[dst + "mlp.gate_proj.weight"] = sd[src + "ffn.w1.weight"]
        out[dst + "mlp.up_proj.weight"] = sd[src + "ffn.w3.weight"]
        out[dst + "mlp.down_proj.weight"] = sd[src + "ffn.w2.weight"]
        out[dst + "input_layernorm.weight"] = sd[src + "attn_norm.weight"]
        out[dst + "post_attention_layernorm.weight"] = sd[src + "ffn_norm.weight"]
    return out


def llama_config(cfg: ModelConfig, tokenizer: dict) -> dict:
    eos = tokenizer.get("eos_id")
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": cfg.dim, "intermediate_size": cfg.ffn_dim, "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": cfg.n_heads, "num_key_value_heads": cfg.n_kv_heads, "head_dim": cfg.head_dim,
        "vocab_size": cfg.vocab_size, "max_position_embeddings": cfg.max_seq_len, "rms_norm_eps": cfg.norm_eps,
        "rope_theta": cfg.rope_theta, "rope_parameters": {"rope_type": "default", "rope_theta": cfg.rope_theta},
        "hidden_act": "silu", "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": False,
        "bos_token_id": eos, "eos_token_id": eos, "torch_dtype": "float32",
    }


def _tokenizer_file(tokenizer: dict, given: str | None) -> str | None:
    """The tokenizer.json the checkpoint's data was tokenized with: `given`, the run's own file, or
    the default shipped with Thresher, whichever has the checkpoint's sha256."""
    from thresher.transforms.tokenization import default_tokenizer, tokenizer_from_json

    candidates = [given] if given else []
    candidates += [tokenizer.get("name") or "", default_tokenizer()]
    for path in candidates:
        if path and os.path.isfile(path):
            with open(path, encoding="utf-8") as fh:
                try:
                    _, info = tokenizer_from_json(fh.read(), path, tokenizer.get("eos_token") or "<|endoftext|>")
                except ValueError:
                    continue
            if info.sha256 == tokenizer.get("sha256"):
                return path
            if path == given:
                raise DataError(f"{given} is not the tokenizer the checkpoint's data was tokenized with "
                                f"(sha256 {info.sha256[:12]}…, the checkpoint's {str(tokenizer.get('sha256'))[:12]}…)")
    return None


def export(path: str, output: str, tokenizer_path: str | None = None) -> dict:
    """Write `path`'s checkpoint (or the newest in a training --output) to `output` as a Hugging Face
    Llama model folder; returns a summary."""
    from safetensors.torch import save_file

    ckpt = find_checkpoint(path)
    kind = checkpoint.read_state(ckpt).get("model_kind", "decoder")
    if kind != "decoder":
        raise DataError(f"{ckpt} holds an {kind} (--objective mlm or span): only decoders (clm, fim) export "
                        "as a Llama model")
    model, state = load_model(ckpt)
    tokenizer = state.get("tokenizer") or {"sha256": state.get("tokenizer_sha256")}
    tok_file = _tokenizer_file(tokenizer, tokenizer_path)
    os.makedirs(output, exist_ok=True)
    save_file(llama_weights(model), os.path.join(output, WEIGHTS), metadata={"format": "pt"})
    with open(os.path.join(output, "config.json"), "w", encoding="utf-8") as fh:
        json.dump(llama_config(model.cfg, tokenizer), fh, indent=2)
    with open(os.path.join(output, "thresher.json"), "w", encoding="utf-8") as fh:
        json.dump({"checkpoint": os.path.abspath(ckpt), **state}, fh, indent=2)
    if tok_file:
        shutil.copyfile(tok_file, os.path.join(output, "tokenizer.json"))
        eos = tokenizer.get("eos_token")
        with open(os.path.join(output, "tokenizer_config.json"), "w", encoding="utf-8") as fh:
            json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": eos, "bos_token": eos,
                       "model_max_length": model.cfg.max_seq_len}, fh, indent=2)
    return {"checkpoint": ckpt, "step": state["step"], "params": model.cfg.n_params(), "output": output,
            "tokenizer": tok_file}
