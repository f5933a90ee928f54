"""The one door from `pipeline/` to the trainer (`thresher.trainer`, which needs torch): the
commands that train or read checkpoints (`train`, `export`, `ablate`) come through here, so the
rest of `pipeline/` never imports torch, and a missing `[train]` extra is one clear line."""

from __future__ import annotations

import importlib.util
import sys

from thresher.pipeline.config import ConfigError


def require(modules: tuple[str, ...] = ("torch",)) -> None:
    """ConfigError naming the extra when the trainer's libraries are not installed."""
    if any(importlib.util.find_spec(m) is None for m in modules):
        raise ConfigError(f"{' and '.join(modules)} {'is' if len(modules) == 1 else 'are'} "
                          "not installed: pip install 'thresher[train]'")


def launcher(nproc: int) -> list[str]:
    """The command line that starts the trainer: one process, or torchrun with `nproc` ranks
    (each rank reads its share of every global batch; FSDP shards the model over them)."""
    if nproc == 1:
        return [sys.executable, "-m", "thresher.trainer"]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", "thresher.trainer"]


def preflight(trainer_args: list[str], nproc: int) -> None:
    """What the trainer can check before any process starts (its flags, --data, --resume); a
    problem is a ConfigError of one line."""
    from thresher.trainer.data import DataError
    from thresher.trainer.train import parse_args, preflight as check

    try:
        check(parse_args(trainer_args), nproc)
    except DataError as e:
        raise ConfigError(str(e)) from None


def trained_steps(folder: str) -> int | None:
    """The step of the newest checkpoint in a `thresher train --output` folder (None: none yet)."""
    from thresher.trainer import checkpoint

    latest = checkpoint.latest(folder)
    return checkpoint.read_state(latest)["step"] if latest else None


def export(checkpoint: str, output: str, tokenizer: str | None) -> dict:
    """`thresher export`: a checkpoint as a Hugging Face Llama folder."""
    from thresher.trainer.data import DataError
    from thresher.trainer.export import export as write

    try:
        return write(checkpoint, output, tokenizer)
    except DataError as e:
        raise ConfigError(str(e)) from None
