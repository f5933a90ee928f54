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

Other trainers' formats (``stages.tokenize.formats``), the same documents in the same order, shard
for shard, each file listed in the manifest (version 3) with its bytes, sha256 and tokens:

- ``megatron``: ``shards/megatron/shard-NNNNN.bin`` + ``.idx``, Megatron-LM's indexed dataset
  (``megatron.core.datasets.indexed_dataset.IndexedDataset``, as ``tools/preprocess_data.py`` and
  datatrove's ``MegatronDocumentTokenizer`` write it): the ``.bin`` is the documents' tokens back
  to back, the ``.idx`` the header ``MMIDIDX\\x00\\x00``, version 1, a dtype code, then one sequence
  per document (int32 lengths, int64 byte pointers) and the document indices 0..n. Tokens are
  uint16 when the vocabulary fits, else int32 (Megatron has no uint32).
- ``flat``: ``shards/flat/shard-NNNNN.bin``, llm.c's token file: a header of 256 int32s (magic,
  version, token count), then the tokens: uint16 with llm.c's GPT-2 header (magic 20240520,
  version 1) when the vocabulary fits, else uint32 with its Llama-3 header (20240801, version 7).
  nanoGPT's bare ``uint16`` file is the same file after the 1,024-byte header:
  ``np.memmap(path, dtype=np.uint16, mode="r", offset=1024)``. Documents end in EOS, as in every
  format; nothing else marks their boundaries.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa

FORMAT = "thresher-shards"
VERSION = 3
VERSIONS = (1, 2, 3)  # 1: IPC file format; 2: IPC stream format; 3: every format's files listed
ARROW_VERSION = 2  # the Arrow shards' own (schema metadata): the stream format since version 2
FILE_MAGIC = b"ARROW1"
MANIFEST = "manifest.json"
DTYPES = {"uint16": (pa.uint16(), np.uint16), "uint32": (pa.uint32(), np.uint32)}
FORMATS = ("arrow", "megatron", "flat")

MEGATRON_MAGIC = b"MMIDIDX\x00\x00"
MEGATRON_CODES = {np.dtype(np.uint16): 8, np.dtype(np.int32): 4}  # Megatron's DType codes
LLMC_HEADER_INTS = 256
LLMC_HEADERS = {np.dtype(np.uint16): (20240520, 1), np.dtype(np.uint32): (20240801, 7)}  # (magic, version)


def shard_schema(dtype: str) -> pa.Schema:
    return pa.schema([
        ("id", pa.string()),
        ("url", pa.string()),
        ("lang", pa.string()),
        ("source", pa.string()),
        ("tokens", pa.list_(DTYPES[dtype][0])),
    ], metadata={b"thresher.format": f"{FORMAT}/{ARROW_VERSION}".encode()})


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.arrow"


def format_files(fmt: str, index: int) -> list[str]:
    """The files of shard `index` in format `fmt`, relative to the shards folder."""
    stem = f"shard-{index:05d}"
    return {"arrow": [shard_name(index)], "megatron": [f"megatron/{stem}.bin", f"megatron/{stem}.idx"],
            "flat": [f"flat/{stem}.bin"]}[fmt]


def megatron_dtype(vocab_size: int) -> np.dtype:
    """The smallest dtype Megatron's indexed dataset has for ids below `vocab_size`."""
    return np.dtype(np.uint16 if vocab_size <= 2**16 else np.int32)


def flat_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16 if vocab_size <= 2**16 else np.uint32)


def _flat_tokens(rows: list[dict], dtype) -> tuple[np.ndarray, np.ndarray]:
    """(the rows' tokens back to back as `dtype`, their lengths as int64)."""
    lengths = np.fromiter((len(r["tokens"]) for r in rows), dtype=np.int64, count=len(rows))
    values = (np.concatenate([np.asarray(r["tokens"], dtype=dtype) for r in rows]) if rows
              else np.empty(0, dtype))
    return values, lengths


def encode_megatron(rows: list[dict], vocab_size: int) -> tuple[bytes, bytes]:
    """(.bin, .idx) of Megatron's indexed dataset: one sequence per document, in order."""
    dtype = megatron_dtype(vocab_size)
    values, lengths = _flat_tokens(rows, dtype)
    if len(lengths) and lengths.max() >= 2**31:
        raise ValueError("a document of 2**31 tokens or more does not fit Megatron's int32 lengths")
    pointers = np.zeros(len(rows), dtype=np.int64)
    np.cumsum(lengths[:-1] * dtype.itemsize, out=pointers[1:])
    n = len(rows)
    idx = b"".join([MEGATRON_MAGIC, struct.pack("<Q", 1), struct.pack("<B", MEGATRON_CODES[dtype]),
                    struct.pack("<Q", n), struct.pack("<Q", n + 1), lengths.astype(np.int32).tobytes(),
                    pointers.tobytes(), np.arange(n + 1, dtype=np.int64).tobytes()])
    return values.tobytes(), idx


def encode_flat(rows: list[dict], vocab_size: int) -> bytes:
    """llm.c's token file: 256 int32s of header (magic, version, token count), then the tokens."""
    dtype = flat_dtype(vocab_size)
    values, _ = _flat_tokens(rows, dtype)
    if len(values) >= 2**31:
        raise ValueError("llm.c's header counts tokens in an int32: lower shard_tokens")
    header = np.zeros(LLMC_HEADER_INTS, dtype=np.int32)
    header[0], header[1] = LLMC_HEADERS[dtype]
    header[2] = len(values)
    return header.tobytes() + values.tobytes()


def encode_formats(rows: list[dict], index: int, formats, dtype: str, vocab_size: int):
    """(file name, bytes, format) of shard `index` in each format, one file at a time (a shard's
    bytes are held once per file, not once per format). Arrow is encoded as `dtype`."""
    for fmt in FORMATS:
        if fmt not in formats:
            continue
        if fmt == "arrow":
            data = [encode_shard(rows, dtype)]
        elif fmt == "megatron":
            data = list(encode_megatron(rows, vocab_size))
        else:
            data = [encode_flat(rows, vocab_size)]
        for name, blob in zip(format_files(fmt, index), data):
            yield name, blob, fmt
        del data


def write_shard(rows: list[dict], index: int, formats, dtype: str, vocab_size: int, write) -> dict:
    """Writes shard `index` in each format with ``write(name, data)``, one file at a time; returns
    its ShardInfo fields."""
    tokens = int(sum(len(r["tokens"]) for r in rows))
    files = []
    for name, data, fmt in encode_formats(rows, index, formats, dtype, vocab_size):
        write(name, data)
        files.append(file_entry(fmt, name, data, tokens))
        del data
    arrow = next((f for f in files if f["format"] == "arrow"), None)
    return {"file": arrow["file"] if arrow else "", "rows": len(rows), "tokens": tokens,
            "bytes": arrow["bytes"] if arrow else 0, "sha256": arrow["sha256"] if arrow else "",
            "index": index, "files": files}


def read_megatron(folder: str, index: int) -> tuple[np.ndarray, np.ndarray]:
    """(flat tokens, document offsets) of a Megatron shard, memory-mapped; raises ValueError when
    the .idx is not one Thresher writes (one sequence per document, pointers back to back)."""
    bin_path, idx_path = (os.path.join(folder, f) for f in format_files("megatron", index))
    idx = np.fromfile(idx_path, dtype=np.uint8)
    head = len(MEGATRON_MAGIC) + 8 + 1 + 8 + 8
    if len(idx) < head or bytes(idx[:len(MEGATRON_MAGIC)]) != MEGATRON_MAGIC:
        raise ValueError("not a Megatron index (no MMIDIDX header)")
    version, code, n, n_docs = struct.unpack_from("<QBQQ", bytes(idx[len(MEGATRON_MAGIC):head]))
    codes = {c: d for d, c in MEGATRON_CODES.items()}
    if version != 1 or code not in codes:
        raise ValueError(f"Megatron index version {version}, dtype code {code}: not one Thresher writes")
    if len(idx) != head + n * 4 + n * 8 + n_docs * 8:
        raise ValueError(f"Megatron index is {len(idx)} bytes, {n} sequences and {n_docs} document "
                         f"indices need {head + n * 12 + n_docs * 8}")
    lengths = idx[head:head + n * 4].view(np.int32).astype(np.int64)
    pointers = idx[head + n * 4:head + n * 12].view(np.int64)
    docs = idx[head + n * 12:].view(np.int64)
    dtype = codes[code]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if not np.array_equal(pointers, offsets[:-1] * dtype.itemsize) or not np.array_equal(docs, np.arange(n + 1)):
        raise ValueError("Megatron index: sequences are not one per document, back to back")
    size = os.path.getsize(bin_path)
    if size != offsets[-1] * dtype.itemsize:
        raise ValueError(f"Megatron .bin is {size} bytes, the index says {int(offsets[-1]) * dtype.itemsize}")
    flat = np.memmap(bin_path, dtype=dtype, mode="r") if size else np.empty(0, dtype)
    return flat, offsets


def read_flat(folder: str, index: int) -> np.ndarray:
    """The tokens of an llm.c shard, memory-mapped, after checking its header."""
    path = os.path.join(folder, format_files("flat", index)[0])
    header = np.fromfile(path, dtype=np.int32, count=LLMC_HEADER_INTS)
    known = {v: d for d, v in LLMC_HEADERS.items()}
    if len(header) < LLMC_HEADER_INTS or (int(header[0]), int(header[1])) not in known:
        raise ValueError("not an llm.c token file (magic and version unknown)")
    dtype = known[(int(header[0]), int(header[1]))]
    count = int(header[2])
    size = os.path.getsize(path) - LLMC_HEADER_INTS * 4
    if size != count * dtype.itemsize:
        raise ValueError(f"llm.c header says {count} tokens, the file holds {size // dtype.itemsize}")
    if not count:
        return np.empty(0, dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=LLMC_HEADER_INTS * 4)


def shard_tokens(folder: str, shard: "ShardInfo", fmt: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(flat tokens, document offsets or None) of one shard in one of its formats, memory-mapped.
    The flat format keeps no document boundaries (documents end in EOS)."""
    if fmt == "arrow":
        return token_arrays(open_shard(os.path.join(folder, shard.file)))
    if fmt == "megatron":
        return read_megatron(folder, shard.index)
    return read_flat(folder, shard.index), None


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


def shards_folder(path: str) -> str:
    """A run directory -> its ``shards/`` folder; a folder holding a manifest itself stays as it is."""
    return os.path.join(path, "shards") if os.path.exists(os.path.join(path, "shards", MANIFEST)) else path


def open_shards(path: str) -> pa.Table:
    """Every shard of a run directory (or of its ``shards/`` folder), in manifest order, as one
    memory-mapped table: a chunk per shard, nothing copied."""
    folder = shards_folder(path)
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
    file: str  # the Arrow file; "" when the run wrote no Arrow
    rows: int
    tokens: int
    bytes: int  # the Arrow file's (0 without it)
    sha256: str  # the Arrow file's ("" without it)
    index: int = 0
    # every file of every format: {"format", "file", "bytes", "sha256", "tokens"}
    files: list[dict] = field(default_factory=list)

    def __post_init__(self):
        if self.file and not self.files:  # a version 1 or 2 manifest's shard: Arrow only
            self.index = int(self.file.split("-")[1].split(".")[0])
            self.files = [{"format": "arrow", "file": self.file, "bytes": self.bytes, "sha256": self.sha256,
                           "tokens": self.tokens}]

    def file_of(self, fmt: str) -> list[dict]:
        return [f for f in self.files if f["format"] == fmt]


def file_entry(fmt: str, name: str, data: bytes, tokens: int) -> dict:
    return {"format": fmt, "file": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "tokens": tokens}


@dataclass
class Manifest:
    tokenizer: dict  # name, sha256, vocab_size, eos_token, eos_id
    dtype: str  # the Arrow shards' token type
    seed: int
    shard_tokens: int  # the target
    shards: list[ShardInfo] = field(default_factory=list)
    format: str = FORMAT
    version: int = VERSION
    formats: list[str] = field(default_factory=lambda: ["arrow"])

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.shards)

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.shards)

    @property
    def default_format(self) -> str:
        """The format readers use unless told: the first the run wrote in FORMATS' order (Arrow when
        there; the writers list formats in that order)."""
        return next(f for f in FORMATS if f in self.formats)

    def bytes_by_format(self) -> dict[str, int]:
        return {fmt: sum(f["bytes"] for s in self.shards for f in s.file_of(fmt)) for fmt in self.formats}

    def to_json(self) -> str:
        d = asdict(self)
        d["totals"] = {"shards": len(self.shards), "rows": self.rows, "tokens": self.tokens,
                       "bytes": sum(s.bytes for s in self.shards), "bytes_by_format": self.bytes_by_format()}
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

    def blend(self, folder: str) -> str:
        """Megatron-LM's ``--data-path``: each Megatron shard's prefix weighted by its tokens."""
        return " ".join(f"{s.tokens} {os.path.join(folder, s.file_of('megatron')[0]['file'][:-len('.bin')])}"
                        for s in self.shards if s.file_of("megatron") and s.tokens)


def read_manifest(folder: str) -> Manifest:
    with open(os.path.join(folder, MANIFEST), encoding="utf-8") as fh:
        return Manifest.from_json(fh.read())


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _listed_files(folder: str) -> set[str]:
    """The shard files on disk: *.arrow here, *.bin/*.idx in the formats' folders."""
    found = {f for f in os.listdir(folder) if f.endswith(".arrow")}
    for sub in ("megatron", "flat"):
        if os.path.isdir(os.path.join(folder, sub)):
            found |= {f"{sub}/{f}" for f in os.listdir(os.path.join(folder, sub)) if f.endswith((".bin", ".idx"))}
    return found


def verify(folder: str) -> list[str]:
    """Every inconsistency between the manifest and the shards, each naming its file: sizes,
    sha256, token counts and types, and every format holding the same tokens and documents."""
    try:
        m = read_manifest(folder)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
        return [f"{MANIFEST}: {e}"]
    problems = []
    if m.dtype not in DTYPES:
        return [f"{MANIFEST}: unknown dtype {m.dtype!r}"]
    if unknown := [f for f in m.formats if f not in FORMATS]:
        return [f"{MANIFEST}: unknown formats {unknown}"]
    vocab = int(m.tokenizer.get("vocab_size", 0))
    if m.dtype == "uint16" and vocab > 2**16:
        problems.append(f"{MANIFEST}: vocab_size {vocab} does not fit uint16")
    listed = {f["file"] for s in m.shards for f in s.files}
    for extra in sorted(_listed_files(folder) - listed):
        problems.append(f"{extra}: not in {MANIFEST}")
    for s in m.shards:
        bad = False
        for f in s.files:
            path = os.path.join(folder, f["file"])
            if not os.path.exists(path):
                problems.append(f"{f['file']}: missing")
                bad = True
            elif os.path.getsize(path) != f["bytes"]:
                problems.append(f"{f['file']}: {os.path.getsize(path)} bytes, manifest says {f['bytes']}")
                bad = True
            elif sha256_file(path) != f["sha256"]:
                problems.append(f"{f['file']}: sha256 does not match the manifest")
                bad = True
        for fmt in m.formats:
            if not s.file_of(fmt):
                problems.append(f"shard {s.index}: no {fmt} file in {MANIFEST}")
                bad = True
        if bad:
            continue
        first = None
        for fmt in m.formats:
            name = s.file_of(fmt)[0]["file"]
            try:
                flat, offsets = shard_tokens(folder, s, fmt)
            except (pa.ArrowException, OSError, ValueError) as e:
                problems.append(f"{name}: unreadable: {e}")
                continue
            if fmt == "arrow":
                table = open_shard(os.path.join(folder, name))
                got = table.schema.field("tokens").type.value_type
                if got != DTYPES[m.dtype][0]:
                    problems.append(f"{name}: tokens are {got}, manifest says {m.dtype}")
            if offsets is not None and len(offsets) - 1 != s.rows:
                problems.append(f"{name}: {len(offsets) - 1} documents, manifest says {s.rows}")
            if len(flat) != s.tokens:
                problems.append(f"{name}: {len(flat)} tokens, manifest says {s.tokens}")
                continue
            if len(flat) and int(flat.max()) >= vocab:
                problems.append(f"{name}: token id {int(flat.max())} >= vocab_size {vocab}")
            if first is None:
                first = (fmt, flat, offsets)
                continue
            if not np.array_equal(first[1], flat):
                problems.append(f"{name}: tokens differ from the {first[0]} shard's")
            elif offsets is not None and first[2] is not None and not np.array_equal(first[2], offsets):
                problems.append(f"{name}: document boundaries differ from the {first[0]} shard's")
    return problems


def convert(source: str, output: str, formats) -> Manifest:
    """Writes the shards of `source` (a run directory or its shards/ folder) in `formats` to the new
    folder `output` (``OUTPUT/megatron/...``, ``OUTPUT/flat/...``, ``OUTPUT/manifest.json``), the
    same bytes a run with ``stages.tokenize.formats`` writes. Reads the Arrow shards, or the
    Megatron ones of a run without Arrow. `output` appears whole (written beside it, then renamed)."""
    import shutil
    import uuid

    folder = shards_folder(source)
    m = read_manifest(folder)
    have = [f for f in ("arrow", "megatron") if f in m.formats]
    if not have:
        raise ValueError(f"{folder}: its shards are {', '.join(m.formats)}; converting needs Arrow or Megatron "
                         "shards (flat files keep no document boundaries)")
    if os.path.exists(output) and (not os.path.isdir(output) or os.listdir(output)):
        raise ValueError(f"{output}: exists and is not an empty folder; choose a new --output")
    formats = [f for f in FORMATS if f in formats]
    vocab = int(m.tokenizer["vocab_size"])
    parent = os.path.dirname(os.path.abspath(output))
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".tmp-{uuid.uuid4().hex}-{os.path.basename(os.path.abspath(output))}")

    def write(name: str, data: bytes) -> None:
        os.makedirs(os.path.dirname(os.path.join(tmp, name)), exist_ok=True)
        with open(os.path.join(tmp, name), "wb") as fh:
            fh.write(data)

    try:
        shards = []
        for s in m.shards:
            flat, offsets = shard_tokens(folder, s, have[0])
            rows = [{"tokens": flat[offsets[i]:offsets[i + 1]]} for i in range(len(offsets) - 1)]
            shards.append(ShardInfo(**write_shard(rows, s.index, formats, m.dtype, vocab, write)))
        out = Manifest(tokenizer=m.tokenizer, dtype=m.dtype, seed=m.seed, shard_tokens=m.shard_tokens,
                       shards=shards, formats=formats)
        write(MANIFEST, out.to_json().encode())
        if os.path.isdir(output):
            os.rmdir(output)  # empty, checked above
        os.replace(tmp, output)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
