"""Training metrics to the console and a JSONL file (rank 0 only), with MFU on CUDA."""

from __future__ import annotations

import json
import sys
import time

# Dense bf16 peak FLOP/s per device, for MFU. Unknown devices report no MFU rather than a guess.
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12}


def peak_flops(device_name: str) -> float | None:
    for key, peak in PEAK_BF16.items():
        if key in device_name:
            return peak
    return None


class MetricsLogger:
    def __init__(self, path: str | None, enabled: bool, flops_per_token: float, peak: float | None):
        self.enabled = enabled
        self.fh = open(path, "a", encoding="utf-8") if (path and enabled) else None
        self.flops_per_token, self.peak = flops_per_token, peak
        self.last_time, self.last_tokens = time.perf_counter(), 0

    def reset_clock(self, tokens: int) -> None:
        self.last_time, self.last_tokens = time.perf_counter(), tokens

    def log(self, record: dict, tokens: int | None = None, world: int = 1) -> dict:
        if tokens is not None:
            now = time.perf_counter()
            dt = max(now - self.last_time, 1e-9)
            tps = (tokens - self.last_tokens) / dt
            record["tokens_per_s"] = round(tps, 1)
            if self.peak:
                record["mfu"] = round(tps * self.flops_per_token / (self.peak * world), 4)
            self.last_time, self.last_tokens = now, tokens
        if self.enabled:
            parts = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()]
            print(" ".join(parts), file=sys.stderr, flush=True)
            if self.fh:
                self.fh.write(json.dumps(record) + "\n")
                self.fh.flush()
        return record

    def close(self) -> None:
        if self.fh:
            self.fh.close()
