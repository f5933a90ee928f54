"""Learning-rate schedules: linear warmup, then cosine decay or WSD (warmup-stable-decay)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class LRSchedule:
    peak: float
    warmup: int
    total: int
    kind: str = "cosine"  # cosine | wsd | constant
    min_ratio: float = 0.1  # final lr as a fraction of peak
    decay_fraction: float = 0.2  # wsd: the last fraction of steps decays linearly
    step: int = 0

    def __post_init__(self):
        if self.kind not in ("cosine", "wsd", "constant"):
            raise ValueError(f"unknown lr schedule {self.kind!r} (cosine, wsd or constant)")

    def lr(self, step: int | None = None) -> float:
        s = self.step if step is None else step
        if self.warmup and s < self.warmup:
            return self.peak * (s + 1) / self.warmup
        if self.kind == "constant":
            return self.peak
        floor = self.peak * self.min_ratio
        if self.kind == "cosine":
            span = max(1, self.total - self.warmup)
            t = min(1.0, (s - self.warmup) / span)
            return floor + (self.peak - floor) * 0.5 * (1 + math.cos(math.pi * t))
        decay_start = self.total - int(self.decay_fraction * self.total)
        if s < decay_start:
            return self.peak
        t = min(1.0, (s - decay_start) / max(1, self.total - decay_start))
        return self.peak - (self.peak - floor) * t

    def apply(self, optimizer) -> float:
        """Set this step's lr on every parameter group, then advance."""
        lr = self.lr()
        for group in optimizer.param_groups:
            group["lr"] = lr
        self.step += 1
        return lr

    def state_dict(self) -> dict:
        return {"step": self.step, "peak": self.peak, "warmup": self.warmup, "total": self.total, "kind": self.kind,
                "min_ratio": self.min_ratio, "decay_fraction": self.decay_fraction}

    def load_state_dict(self, state: dict) -> None:
        """The step, and the span the checkpoint's schedule was drawn over (a resume with
        --extend trains past it at its final lr instead of re-stretching it)."""
        self.step = int(state["step"])
        self.total = int(state.get("total", self.total))
