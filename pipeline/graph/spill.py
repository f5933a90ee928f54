"""Bulk data between stages travels through files; the shuffle carries references to them.

Beam's local runner keeps every grouped PCollection in the runner's memory and hands each worker
its whole share of one as a single stream, so a shuffle of documents makes a local run's memory
grow with the corpus. Beam's own file sinks avoid the same cost the same way: each bundle writes
its rows to a file of its own (one pickled, compressed segment per key, at most ``max_bytes``
buffered), and only ``(key, SpillRef)`` pairs, a few dozen bytes each, go through the
``GroupByKey``. The reader of a key opens the segments it was handed.

A spill file is written whole by the bundle that names it (a fresh uuid per file), so a retried
bundle leaves an orphan that no reference points to, never a half-read file. Spill files live
under ``DIR/.staging/spill/`` on the run's own filesystem (local, gs://, s3://: every worker
reads what any other wrote) and go when the run is published.

On the local runner, which retries no bundle, the Parquet writers' spill (every shard reads its
own segment of each flush once) is written one file per segment (``SpillBuffer(release=True)``),
and a reader deletes the file as soon as it has read it. A file of every shard's segments could go
only once the last shard was written: at 100k documents the staging folder peaked with 390 MB
of such files beside the 390 MB of output written from them.
"""

from __future__ import annotations

import functools
import pickle
import struct
import sys
import threading
import uuid
from typing import Iterable, NamedTuple

import pyarrow as pa
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from thresher.pipeline.graph.heap import give_back_memory

SPILL_FOLDER = "spill"
MAX_BYTES = 16_000_000
# All spill buffers of a worker process together: a fused stage holds one buffer per spilling
# DoFn (documents, each stage's rejected rows, parked documents, ...), so per-buffer limits alone
# would let a worker hold a dozen full buffers at once.
PROCESS_BYTES = 64_000_000
_process_bytes = 0
_lock = threading.Lock()


class SpillRef(NamedTuple):
    path: str
    offset: int
    length: int
    rows: int
    tokens: int = 0  # for token rows: how many tokens the segment holds
    own_file: bool = False  # the segment is its file's only one, read once: the reader deletes the file


_HEADER = struct.Struct("<Q")  # a segment: its pickle's length, then the pickle compressed


@functools.cache
def _codec():
    return pa.Codec("zstd", compression_level=1)


def pack(data: bytes) -> bytes:
    """A segment's bytes as written: zstd at level 1 (texts shrink to about a quarter, at ~580 MB/s
    here: the staging folder of a run peaks near 1x its input instead of 3x)."""
    return _HEADER.pack(len(data)) + _codec().compress(data, asbytes=True)


def unpack(segment: bytes) -> bytes:
    (size,) = _HEADER.unpack_from(segment)
    return _codec().decompress(memoryview(segment)[_HEADER.size:], decompressed_size=size, asbytes=True)


def row_bytes(row: dict) -> int:
    """A cheap estimate of a row's size in memory: its text, payload and token array, which dominate.
    A str's size is its characters times 1, 2 or 4 bytes (CPython stores the widest character's
    width), so a Cyrillic or CJK text counts twice its length, not once."""
    n = 200
    for key in ("text", "payload"):
        value = row.get(key)
        if isinstance(value, (str, bytes)):
            n += sys.getsizeof(value)
    tokens = row.get("tokens")
    return n + (tokens.nbytes if hasattr(tokens, "nbytes") else 0)


class SpillBuffer:
    """Rows buffered by key; `flush` writes them as one file and returns ``[(key, SpillRef)]``.

    `full` says when the buffered rows together reach ``max_bytes``: a bundle can be a worker's
    whole share of the corpus (the local runner gives each worker one bundle per stage), so the
    buffer must empty itself by size, not only when the bundle ends.
    """

    def __init__(self, folder: str, max_bytes: int = MAX_BYTES, release: bool = False):
        self.folder = folder
        self.max_bytes = max_bytes
        self.release = release  # one file per segment, deleted by its reader
        self._rows: dict = {}
        self._tokens: dict = {}
        self._bytes = 0

    def add(self, key, row, nbytes: int | None = None) -> None:
        global _process_bytes
        self._rows.setdefault(key, []).append(row)
        if isinstance(row, dict) and "tokens" in row:
            self._tokens[key] = self._tokens.get(key, 0) + len(row["tokens"])
        n = row_bytes(row) if nbytes is None else nbytes
        self._bytes += n
        with _lock:
            _process_bytes += n

    @property
    def full(self) -> bool:
        """This buffer reached `max_bytes`, or all buffers of the process together reached
        PROCESS_BYTES and this one holds a share worth writing."""
        return self._bytes >= self.max_bytes or (_process_bytes >= PROCESS_BYTES and self._bytes >= 1_000_000)

    def _release(self) -> None:
        global _process_bytes
        with _lock:
            _process_bytes -= self._bytes
        self._bytes = 0

    def __len__(self) -> int:
        return sum(len(v) for v in self._rows.values())

    def flush(self) -> list[tuple]:
        if not self._rows:
            self._release()
            return []
        refs = []
        path, fh, offset = None, None, 0
        try:
            for key in sorted(self._rows):
                if fh is None or self.release:
                    if fh is not None:
                        fh.close()
                    path, offset = f"{self.folder}/{uuid.uuid4().hex}.pickle", 0
                    fh = FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED)
                rows = self._rows[key]
                blob = pack(pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL))
                fh.write(blob)
                refs.append((key, SpillRef(path, offset, len(blob), len(rows), self._tokens.get(key, 0), self.release)))
                offset += len(blob)
        finally:
            if fh is not None:
                fh.close()
        self._rows, self._tokens = {}, {}
        self._release()
        give_back_memory()
        return refs

    def __del__(self):  # a bundle that failed before flushing
        try:
            self._release()
        except Exception:  # interpreter shutdown
            pass


def read_segments(refs: Iterable[SpillRef]) -> Iterable[list]:
    """The row lists of `refs`, one segment at a time, in the order given."""
    by_file: dict[str, list[SpillRef]] = {}
    for r in refs:
        by_file.setdefault(r.path, []).append(r)
    for path in sorted(by_file):
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            for r in sorted(by_file[path], key=lambda r: r.offset):
                fh.seek(r.offset)
                data = fh.read(r.length)
                if len(data) != r.length:
                    raise IOError(f"{path}: segment at {r.offset} is {len(data)} bytes, expected {r.length}")
                yield pickle.loads(unpack(data))
            if all(r.own_file for r in by_file[path]):
                FileSystems.delete([path])


def read_rows(refs: Iterable[SpillRef]) -> list:
    return [row for segment in read_segments(refs) for row in segment]
