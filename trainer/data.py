"""Token windows from Thresher's Arrow shards: sources, a weighted mixture, and a resumable loader.

The whole data order is a pure function of (seed, global sample index g):

- a *source* is one run directory's shards, memory-mapped through ``transforms.shards`` and seen
  as one token stream (documents already end in EOS). Window k is tokens
  ``[k * L, k * L + L + 1)`` for ``L = seq_len``: inputs and next-token targets, no token wasted.
- a *mixture* maps g to (source, window): a fixed pattern of source slots drawn in proportion to
  the weights decides the source, the source's own counter decides its epoch and position, and a
  permutation seeded by (seed, source, epoch) shuffles its windows.
- rank r of a world of W takes ``g = (j * B + i) * W + r`` for its local batch j, so ranks are
  disjoint and together consume g = 0, 1, 2, ... in order; DataLoader worker w of N builds the
  batches j with ``(j - start) % N == w``, which is the order the DataLoader hands them back in.

So resuming needs one number, the batches this rank has consumed, and lands exactly on the next
window.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from thresher.transforms.shards import MANIFEST, read_manifest, shard_tokens, shards_folder


class DataError(ValueError):
    """The data cannot be trained on as asked (mismatched tokenizers, too few tokens, ...)."""


def shards_dir(path: str) -> str:
    """A run directory or its ``shards/`` folder -> the folder holding ``manifest.json``."""
    folder = shards_folder(path)
    if os.path.exists(os.path.join(folder, MANIFEST)):
        return folder
    raise DataError(f"{path}: no {MANIFEST} here or in {path}/shards (is it a thresher run directory?)")


class TokenSource:
    """One run directory's shards as a single memory-mapped token stream, read from the Arrow
    shards or from another format the run wrote (``data_format``; "auto": the manifest's
    ``default_format``, Arrow when there, else Megatron, else flat). Every format holds the same tokens in the same order, so
    the stream, and training, are the same whichever is read."""

    def __init__(self, path: str, seq_len: int, holdout_shards: int = 0, holdout: bool = False,
                 data_format: str = "auto"):
        self.path = path
        self.folder = shards_dir(path)
        self.manifest = read_manifest(self.folder)
        if data_format == "auto":
            data_format = self.manifest.default_format
        if data_format not in self.manifest.formats:
            raise DataError(f"{path}: its shards were written as {', '.join(self.manifest.formats)}, not "
                            f"{data_format} (stages.tokenize.formats, or `thresher export-shards`)")
        self.format = data_format
        shards = self.manifest.shards
        if holdout_shards:
            if holdout_shards >= len(shards) and not holdout:
                raise DataError(f"{path}: cannot hold out {holdout_shards} of {len(shards)} shards")
            shards = shards[-holdout_shards:] if holdout else shards[:-holdout_shards]
        self.shards = shards
        self.seq_len = seq_len
        self._flats = None  # opened lazily, once per process (DataLoader workers included)
        self.lengths = np.array([s.tokens for s in shards], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)])
        self.tokens = int(self.starts[-1])
        self.n_windows = max(0, (self.tokens - 1) // seq_len)
        if self.n_windows == 0:
            raise DataError(f"{path}: {self.tokens} tokens make no window of {seq_len + 1}")

    @property
    def tokenizer(self) -> dict:
        return self.manifest.tokenizer

    def _open(self):
        if self._flats is None:
            try:
                self._flats = [shard_tokens(self.folder, s, self.format)[0] for s in self.shards]
            except ValueError as e:
                raise DataError(f"{self.folder}: {self.format} shards: {e}") from None
            for s, flat in zip(self.shards, self._flats):
                if len(flat) != s.tokens:
                    raise DataError(f"{self.folder}/{s.file_of(self.format)[0]['file']}: {len(flat)} tokens, "
                                    f"manifest says {s.tokens}")
        return self._flats

    def window(self, k: int) -> np.ndarray:
        """Window k: seq_len + 1 tokens as int64 (copied out of the mapped shard(s))."""
        flats = self._open()
        lo, hi = k * self.seq_len, k * self.seq_len + self.seq_len + 1
        s = int(np.searchsorted(self.starts, lo, side="right")) - 1
        out = np.empty(hi - lo, dtype=np.int64)
        filled = 0
        while filled < len(out):
            a = lo + filled - self.starts[s]
            take = min(len(out) - filled, int(self.lengths[s] - a))
            out[filled:filled + take] = flats[s][a:a + take]
            filled += take
            s += 1
        return out

    def __getstate__(self):  # DataLoader workers re-map the shards themselves
        d = dict(self.__dict__)
        d["_flats"] = None
        return d


@lru_cache(maxsize=8)
def _permutation(seed: int, source: int, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, source, epoch]).permutation(n)


class Mixture:
    """Global sample index -> (source, window), deterministic in (seed, weights, sources)."""

    PATTERN = 1024  # slots per period of the source pattern

    def __init__(self, sources: list[TokenSource], weights: list[float] | None = None, seed: int = 0):
        if not sources:
            raise DataError("no data sources")
        weights = weights or [1.0] * len(sources)
        if len(weights) != len(sources) or any(w <= 0 for w in weights):
            raise DataError(f"weights {weights} must be positive, one per source")
        first = sources[0].tokenizer
        for s in sources[1:]:
            for key in ("sha256", "vocab_size", "eos_id"):
                if s.tokenizer.get(key) != first.get(key):
                    raise DataError(
                        f"tokenizer mismatch: {s.path} has {key}={s.tokenizer.get(key)!r}, "
                        f"{sources[0].path} has {first.get(key)!r}; re-tokenize one of them")
        self.sources, self.weights, self.seed = sources, weights, seed
        # Slot counts per period in proportion to the weights (largest remainder, each >= 1),
        # spread evenly by smooth weighted round robin so every stretch of the stream is mixed.
        share = np.array(weights, dtype=np.float64) / sum(weights) * self.PATTERN
        counts = np.maximum(np.floor(share).astype(np.int64), 1)
        for i in np.argsort(-(share - np.floor(share)), kind="stable")[: self.PATTERN - counts.sum()]:
            counts[i] += 1
        self.counts = counts
        self.period = int(counts.sum())
        pattern, credit = [], np.zeros(len(sources))
        for _ in range(self.period):
            credit += counts
            i = int(np.argmax(credit))
            credit[i] -= self.period
            pattern.append(i)
        self.pattern = np.array(pattern, dtype=np.int64)
        onehot = np.eye(len(sources), dtype=np.int64)[self.pattern]
        self.before = np.vstack([np.zeros(len(sources), np.int64), np.cumsum(onehot, 0)])

    @property
    def tokenizer(self) -> dict:
        return self.sources[0].tokenizer

    @property
    def n_windows(self) -> int:
        return sum(s.n_windows for s in self.sources)

    def locate(self, g: int) -> tuple[int, int]:
        period, off = divmod(g, self.period)
        s = int(self.pattern[off])
        count = period * int(self.counts[s]) + int(self.before[off, s])
        epoch, pos = divmod(count, self.sources[s].n_windows)
        return s, int(_permutation(self.seed, s, epoch, self.sources[s].n_windows)[pos])

    def sample(self, g: int) -> np.ndarray:
        s, k = self.locate(g)
        return self.sources[s].window(k)


@dataclass
class LoaderState:
    batches: int = 0  # local batches this rank has consumed
    batch_size: int = 0
    world: int = 1
    seed: int = 0


def global_indices(batch: int, batch_size: int, rank: int, world: int) -> np.ndarray:
    """The global sample indices of this rank's local batch ``batch``."""
    return (batch * batch_size + np.arange(batch_size)) * world + rank


def _torch_dataset():
    import torch  # imported here so the data order can be computed (and tested) without torch
    from torch.utils.data import IterableDataset, get_worker_info

    class WindowBatches(IterableDataset):
        """Yields this rank's batches from ``start`` on, forever or for ``limit`` batches: dicts of
        int64 tensors, B examples of the objective (inputs, targets, ...); each DataLoader worker
        builds every N-th batch."""

        def __init__(self, mixture, batch_size, rank, world, start, limit, objective):
            self.mixture, self.batch_size, self.rank, self.world = mixture, batch_size, rank, world
            self.start, self.limit, self.objective = start, limit, objective

        def __iter__(self):
            info = get_worker_info()
            wid, nw = (info.id, info.num_workers) if info else (0, 1)
            j = self.start + wid
            end = None if self.limit is None else self.start + self.limit
            while end is None or j < end:
                idx = global_indices(j, self.batch_size, self.rank, self.world)
                examples = [self.example(self.mixture.sample(int(g)), int(g)) for g in idx]
                yield {k: torch.from_numpy(np.stack([e[k] for e in examples])) for k in examples[0]}
                j += nw

        def example(self, window, g):
            if self.objective is None:
                return {"inputs": window[:-1], "targets": window[1:]}
            return self.objective.example(window, g)

    return WindowBatches


class TokenLoader:
    """This rank's stream of batches ({"inputs", "targets", ...}), resumable with ``state_dict``."""

    def __init__(self, mixture: Mixture, batch_size: int, rank: int = 0, world: int = 1,
                 num_workers: int = 0, limit: int | None = None, pin_memory: bool = False, objective=None):
        self.mixture, self.batch_size, self.rank, self.world = mixture, batch_size, rank, world
        self.num_workers, self.limit, self.pin_memory = num_workers, limit, pin_memory
        self.objective = objective  # trainer.objectives.Objective; None: next-token windows
        self.batches = 0

    def state_dict(self) -> dict:
        return vars(LoaderState(self.batches, self.batch_size, self.world, self.mixture.seed)).copy()

    def load_state_dict(self, state: dict) -> None:
        """Continue at the checkpoint's position in the global sample order. Ranks consume global
        samples in lockstep, so the position is batches x batch_size x world samples, and a run with
        another world size (or batch size) continues there when its own batch x world divides it."""
        want = LoaderState(**state)
        consumed = want.batches * want.batch_size * want.world
        per_batch = self.batch_size * self.world
        if want.seed != self.mixture.seed or consumed % per_batch:
            raise DataError(
                f"cannot resume the data order: the checkpoint consumed {consumed} samples (seed {want.seed}); "
                f"this run takes {per_batch} per batch (batch_size {self.batch_size} x world {self.world}, seed "
                f"{self.mixture.seed}), which does not land on that position")
        self.batches = consumed // per_batch

    def __iter__(self):
        from torch.utils.data import DataLoader

        limit = None if self.limit is None else max(0, self.limit - self.batches)
        ds = _torch_dataset()(self.mixture, self.batch_size, self.rank, self.world, self.batches, limit,
                              self.objective)
        dl = DataLoader(ds, batch_size=None, num_workers=self.num_workers, pin_memory=self.pin_memory,
                        prefetch_factor=4 if self.num_workers else None,
                        persistent_workers=False)
        for batch in dl:
            self.batches += 1  # counted when handed out: a checkpoint after it resumes at the next
            yield batch
