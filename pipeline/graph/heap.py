"""The C heap of a worker process (glibc): fewer arenas, big buffers mapped, free pages handed back.

Texts are mostly over 512 bytes, so CPython takes them from malloc, not from its own small-object
arenas. A worker reads a buffer of documents, writes it out and drops it, many times over; glibc
keeps the freed chunks on free lists, and the process's RSS keeps the high-water mark of all of
them. Three things make that worse or better:

- glibc gives each thread that allocates its own arena (up to 8 per core), and Beam's worker
  decodes on gRPC threads and processes on others, so chunks freed in one arena are not reused
  for another's allocations. Two arenas: measured on the dedup benchmark (8x input, 2 workers), the
  free heap at a worker's peak fell from ~270 MB to ~60 MB, and the run got 10% faster.
- glibc maps a block of 128 KB or more on its own and unmaps it when freed, but each such free
  raises that threshold to the freed size (up to 32 MB). A worker's big buffers (gRPC messages of
  up to 10 MB, pickled spill segments, park files, Parquet images) free early, so from then on they
  all come from the heap, and the heap keeps every page they ever touched. A fixed threshold of
  1 MiB keeps them mapped: on the dedup benchmark the free heap at a worker's peak fell from
  80–180 MB to 6–17 MB (8x input), the largest worker from 442 to 390 MB (8x) and from 576 to
  413 MB (16x), at the same speed.
- `malloc_trim(0)` hands whole free pages inside the heap back to the system (madvise), after a
  stage has dropped a buffer's rows. A few ms each.

All are no-ops where the C library is not glibc (musl, macOS). The worker image sets the same
through glibc's environment variables (MALLOC_ARENA_MAX, MALLOC_MMAP_THRESHOLD_).
"""

from __future__ import annotations

import ctypes
import functools

M_MMAP_THRESHOLD = -3  # mallopt parameters, glibc's malloc.h
M_ARENA_MAX = -8
ARENAS = 2
MMAP_THRESHOLD = 1 << 20


@functools.cache
def _libc():
    try:
        libc = ctypes.CDLL(None)
        libc.malloc_trim, libc.mallopt  # glibc has both; musl and macOS neither
        return libc
    except (OSError, AttributeError):
        return None


def tune_heap(arenas: int = ARENAS, mmap_threshold: int = MMAP_THRESHOLD) -> bool:
    """At most `arenas` malloc arenas, and blocks of `mmap_threshold` bytes or more mapped on their
    own, in this process. Call first thing, before threads start allocating."""
    libc = _libc()
    return bool(libc and libc.mallopt(M_ARENA_MAX, arenas) and libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold))


def give_back_memory() -> None:
    """Hands the heap's whole free pages back to the system; call after dropping a buffer's rows."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
