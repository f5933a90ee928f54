"""Distributed checkpoints: model and optimizer through ``torch.distributed.checkpoint`` (each rank
writes its own shards), the small trainer state (step, tokens seen, schedule, data loader, model
config, tokenizer) as JSON. A checkpoint is written to ``step-NNNNNNN.tmp`` and renamed when
complete, so ``latest`` never sees a partial one; only the last ``keep`` are kept."""

from __future__ import annotations

import json
import os
import re
import shutil

import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

STATE = "trainer_state.json"
_NAME = re.compile(r"^step-(\d{7})$")


def _barrier():
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def list_checkpoints(folder: str) -> list[tuple[int, str]]:
    if not os.path.isdir(folder):
        return []
    found = []
    for name in os.listdir(folder):
        m = _NAME.match(name)
        if m and os.path.exists(os.path.join(folder, name, STATE)):
            found.append((int(m.group(1)), os.path.join(folder, name)))
    return sorted(found)


def claim(folder: str, resume: bool, overwrite: bool) -> None:
    """Make `folder` this run's: with `overwrite`, another run's checkpoints and metrics go first;
    without `resume` or `overwrite`, a folder that holds another run's is refused (a new run beside
    them would append to their metrics.jsonl and the next --resume would pick up their checkpoint)."""
    metrics = os.path.join(folder, "metrics.jsonl")
    if overwrite:
        if _rank() == 0:
            for _, path in list_checkpoints(folder):
                shutil.rmtree(path)
            if os.path.exists(metrics):
                os.remove(metrics)
        _barrier()
        return
    found = list_checkpoints(folder)
    if not resume and (found or os.path.exists(metrics)):  # every rank sees the same: all refuse alike
        what = f"checkpoints up to step {found[-1][0]}" if found else "metrics.jsonl"
        raise FileExistsError(f"{folder} holds another run's {what}: --resume continues it, --overwrite replaces it, "
                              "or choose another --output")
    _barrier()  # no rank writes (metrics.jsonl) before every rank has looked


def latest(folder: str) -> str | None:
    found = list_checkpoints(folder)
    return found[-1][1] if found else None


def save(folder: str, step: int, model, optimizer, trainer_state: dict, keep: int) -> str:
    final = os.path.join(folder, f"step-{step:07d}")
    tmp = final + ".tmp"
    if _rank() == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
    _barrier()
    model_sd, optim_sd = get_state_dict(model, optimizer)
    dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=tmp)
    _barrier()
    if _rank() == 0:
        with open(os.path.join(tmp, STATE), "w", encoding="utf-8") as fh:
            json.dump(trainer_state, fh, indent=2)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        for _, old in list_checkpoints(folder)[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    _barrier()
    return final


def read_state(path: str) -> dict:
    """A checkpoint's trainer state (step, schedule, loader, model config, ...), without torch."""
    with open(os.path.join(path, STATE), encoding="utf-8") as fh:
        return json.load(fh)


def load(path: str, model, optimizer) -> dict:
    """Restore model and optimizer in place (resharded to this world); return the trainer state."""
    model_sd, optim_sd = get_state_dict(model, optimizer)
    state = {"model": model_sd, "optim": optim_sd}
    dcp.load(state, checkpoint_id=path)
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
    return read_state(path)
