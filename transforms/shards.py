"""The tokenized shard format: the one definition the shard writer and the trainer both use.

A shard is an Arrow IPC *stream* (``shards/shard-NNNNN.arrow``), one row per document, columns
``id``, ``url``, ``lang``, ``source`` and ``tokens`` (a list of uint16 when the vocabulary fits,
else uint32). Arrow keeps a list column as one flat value buffer plus an offsets buffer, the
same idea as Megatron's ``.bin``/``.idx`` pair, so a memory-mapped shard hands the trainer its
whole token stream as one zero-copy numpy array. ``shards/manifest.json`` names the tokenizer
(name, sha256, vocabulary size, EOS id), the dtype, and each shard's rows, tokens, bytes and
sha256.

The stream format (version 2) is the one Hugging Face ``datasets`` keeps its own cache files in, so
``datasets.Dataset.from_file(path)`` maps a shard without copying it; pyarrow reads it with
``pyarrow.ipc.open_stream(pyarrow.memory_map(path))`` (also zero copy) and polars with
``polars.read_ipc_stream(path)``. Version 1 shards were IPC *files* (``pyarrow.dataset`` and
``polars.scan_ipc`` read those, ``datasets`` does not); ``open_shard`` reads both.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa

FORMAT = "thresher-shards"
VERSION = 2
VERSIONS = (1, 2)  # 1: IPC file format; 2: IPC stream format
FILE_MAGIC = b"ARROW1"
MANIFEST = "manifest.json"
DTYPES = {"uint16": (pa.uint16(), np.uint16), "uint32": (pa.uint32(), np.uint32)}


def shard_schema(dtype: str) -> pa.Schema:
    return pa.schema([
        ("id", pa.string()),
        ("url", pa.string()),
        ("lang", pa.string()),
        ("source", pa.string()),
        ("tokens", pa.list_(DTYPES[dtype][0])),
    ], metadata={b"thresher.format": f"{FORMAT}/{VERSION}".encode()})


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.arrow"


def encode_shard(rows: list[dict], dtype: str) -> bytes:
    """An IPC stream holding `rows` (dicts with id, url, lang, source and a ``tokens`` array), in order."""
    pa_type, np_type = DTYPES[dtype]
    lengths = np.fromiter((len(r["tokens"]) for r in rows), dtype=np.int64, count=len(rows))
    offsets = np.zeros(len(rows) + 1, dtype=np.int32)
    if np.sum(lengths) >= 2**31:
        raise ValueError("a shard holds fewer than 2**31 tokens; lower shard_tokens")
    np.cumsum(lengths, out=offsets[1:])
    values = np.concatenate([np.asarray(r["tokens"], dtype=np_type) for r in rows]) if rows else np.empty(0, np_type)
    tokens = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, type=pa_type))
    schema = shard_schema(dtype)
    cols = [pa.array([r.get(c) for r in rows], type=pa.string()) for c in ("id", "url", "lang", "source")]
    batch = pa.RecordBatch.from_arrays(cols + [tokens], schema=schema)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def open_shard(path: str) -> pa.Table:
    """A shard, memory-mapped: nothing is read until it is touched, nothing is copied. Reads both
    the stream format (version 2) and the file format of version 1 shards."""
    source = pa.memory_map(path, "r")
    if source.read(len(FILE_MAGIC)) == FILE_MAGIC:
        source.seek(0)
        return pa.ipc.open_file(source).read_all()
    source.seek(0)
    return pa.ipc.open_stream(source).read_all()


def open_shards(path: str) -> pa.Table:
    """Every shard of a run directory (or of its ``shards/`` folder), in manifest order, as one
    memory-mapped table: a chunk per shard, nothing copied."""
    folder = os.path.join(path, "shards") if os.path.exists(os.path.join(path, "shards", MANIFEST)) else path
    manifest = read_manifest(folder)
    tables = [open_shard(os.path.join(folder, s.file)) for s in manifest.shards]
    return pa.concat_tables(tables) if tables else shard_schema(manifest.dtype).empty_table()


def token_arrays(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """(flat tokens, offsets) of a shard as numpy views of the mapped buffers (zero copy).

    Document i's tokens are ``tokens[offsets[i]:offsets[i + 1]]``.
    """
    col = table.column("tokens")
    if col.num_chunks != 1:
        col = pa.chunked_array([pa.concat_arrays(col.chunks)])
    arr = col.chunk(0)
    offsets = arr.offsets.to_numpy(zero_copy_only=True)
    flat = arr.values.to_numpy(zero_copy_only=True)
    return flat, offsets


@dataclass
class ShardInfo:
    file: str
    rows: int
    tokens: int
    bytes: int
    sha256: str


@dataclass
class Manifest:
    tokenizer: dict  # name, sha256, vocab_size, eos_token, eos_id
    dtype: str
    seed: int
    shard_tokens: int  # the target
    shards: list[ShardInfo] = field(default_factory=list)
    format: str = FORMAT
    version: int = VERSION

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.shards)

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.shards)

    def to_json(self) -> str:
        d = asdict(self)
        d["totals"] = {"shards": len(self.shards), "rows": self.rows, "tokens": self.tokens,
                       "bytes": sum(s.bytes for s in self.shards)}
        return json.dumps(d, indent=2)

    @classmethod
    def from_json(cls, text: str) -> "Manifest":
        d = json.loads(text)
        if d.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} manifest (format {d.get('format')!r})")
        if d.get("version") not in VERSIONS:
            raise ValueError(f"manifest version {d.get('version')} is not one this Thresher reads "
                             f"({', '.join(map(str, VERSIONS))})")
        d.pop("totals", None)
        d["shards"] = [ShardInfo(**s) for s in d["shards"]]
        return cls(**d)


def read_manifest(folder: str) -> Manifest:
    with open(os.path.join(folder, MANIFEST), encoding="utf-8") as fh:
        return Manifest.from_json(fh.read())


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def verify(folder: str) -> list[str]:
    """Every inconsistency between the manifest and the shards, each naming its shard."""
    try:
        m = read_manifest(folder)
    except (OSError, ValueError, KeyError, TypeError) as e:
        return [f"{MANIFEST}: {e}"]
    problems = []
    if m.dtype not in DTYPES:
        return [f"{MANIFEST}: unknown dtype {m.dtype!r}"]
    vocab = int(m.tokenizer.get("vocab_size", 0))
    if m.dtype == "uint16" and vocab > 2**16:
        problems.append(f"{MANIFEST}: vocab_size {vocab} does not fit uint16")
    listed = {s.file for s in m.shards}
    on_disk = {f for f in os.listdir(folder) if f.endswith(".arrow")}
    for extra in sorted(on_disk - listed):
        problems.append(f"{extra}: not in {MANIFEST}")
    for s in m.shards:
        path = os.path.join(folder, s.file)
        if not os.path.exists(path):
            problems.append(f"{s.file}: missing")
            continue
        if os.path.getsize(path) != s.bytes:
            problems.append(f"{s.file}: {os.path.getsize(path)} bytes, manifest says {s.bytes}")
        if sha256_file(path) != s.sha256:
            problems.append(f"{s.file}: sha256 does not match the manifest")
        try:
            table = open_shard(path)
            flat, offsets = token_arrays(table)
        except (pa.ArrowException, OSError, ValueError) as e:
            problems.append(f"{s.file}: unreadable: {e}")
            continue
        want = DTYPES[m.dtype][0]
        got = table.schema.field("tokens").type.value_type
        if got != want:
            problems.append(f"{s.file}: tokens are {got}, manifest says {m.dtype}")
        if table.num_rows != s.rows:
            problems.append(f"{s.file}: {table.num_rows} rows, manifest says {s.rows}")
        if len(flat) != s.tokens:
            problems.append(f"{s.file}: {len(flat)} tokens, manifest says {s.tokens}")
        if len(flat) and int(flat.max()) >= vocab:
            problems.append(f"{s.file}: token id {int(flat.max())} >= vocab_size {vocab}")
    return problems
