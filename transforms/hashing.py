"""Seeded hashes and the orders they define: which shard a row goes to, which rows a sample keeps,
and the total order of rows inside an output file. Pure functions: the same on every runner."""

from __future__ import annotations

import hashlib

TOKEN_BUCKETS = 4096  # the fixed fine bucketing of token rows before the shard count is known


def seeded_hash(doc_id: str, seed: int) -> int:
    """A 64-bit number fixed by (id, seed): shard assignment and sampling, the same on every run."""
    return int.from_bytes(hashlib.blake2b(f"{seed}\x00{doc_id}".encode(), digest_size=8).digest(), "big")


def seeded_fraction(doc_id: str, seed: int) -> float:
    """`seeded_hash` as a number in [0, 1)."""
    return seeded_hash(doc_id, seed) / 2**64


def shard_of(doc_id: str, seed: int, shards: int) -> int:
    """floor(u * shards) for u = hash(seed, id) / 2**64, in exact integer arithmetic (so a coarser
    bucketing, `shards_of_bucket`, can say which shards a bucket's rows fall into)."""
    return (seeded_hash(doc_id, seed) * shards) >> 64


def shards_of_bucket(bucket: int, buckets: int, shards: int) -> range:
    """The shards s = floor(u * shards) that rows with floor(u * buckets) == bucket can fall into."""
    return range(bucket * shards // buckets, ((bucket + 1) * shards - 1) // buckets + 1)


def row_order(row: dict) -> tuple:
    """The total order of rows that makes outputs byte-identical on every runner: by id, then
    source and offset (user-supplied ids may repeat)."""
    return str(row.get("id")), str(row.get("source")), row.get("offset") or 0


def safe_partition_value(value) -> str:
    """A partition folder name from a column value: ``und`` when missing, never a path."""
    text = str(value) if value not in (None, "") else "und"
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:64]
