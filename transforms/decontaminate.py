"""The ``decontaminate`` stage: drop (or annotate) documents that contain evaluation benchmark text,
so a model's benchmark scores stay honest.

Benchmarks are local files (JSONL, optionally gzipped; Parquet; a Hugging Face ``datasets`` folder
written by ``save_to_disk``) whose text fields the config names (HumanEval: ``prompt`` and
``canonical_solution``). Their word n-grams (13, as GPT-3's decontamination) are taken after the
same normalisation as exact dedup (NFKC, case, punctuation, digits, whitespace), so a benchmark item
re-wrapped, re-cased or re-punctuated is still found. The driver hashes every benchmark n-gram once
into a `BenchmarkIndex`: a sorted array of distinct 64-bit hashes and, beside it, the item each
came from (12 bytes an n-gram), written as two .npy files into the run's staging folder; each
worker memory-maps them (or reads them once, from an object store) and looks a document's n-grams
up with one vectorised binary search.

A document with at least ``min_hits`` distinct matching n-grams is dropped as ``contaminated``; the
detail names the benchmark, the item and one matched n-gram. stats.json counts the documents each
benchmark caught (``counters``: ``contaminated:<benchmark>``).
"""

from __future__ import annotations

import glob
import gzip
import io
import json
import os
import uuid
import weakref
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from thresher.transforms.dedup import Normalisation, ngram_hashes, normalise, tokens
from thresher.transforms.document import Drop
from thresher.transforms.filters.base import Counting
from thresher.transforms.stage import ConfigError, Stage, check, register

STAGE = "decontaminate"


def benchmark_tokens(text: str) -> list[str]:
    """The words n-grams are made of: exact dedup's normalisation, then words (single characters in
    scripts without spaces)."""
    return tokens(normalise(text, Normalisation()))


@dataclass
class Benchmark:
    name: str = ""  # how stats.json and the drop detail call it
    path: str = ""  # JSONL (.jsonl, .jsonl.gz), Parquet (a file or folder), or a `datasets` save_to_disk folder
    fields: list[str] = field(default_factory=lambda: ["text"])  # the text fields of an item, joined
    id_field: str = ""  # the item's id ("" : its row number)


@dataclass
class DecontaminateParams:
    enabled: bool = False
    annotate: bool = False  # record the hits and the would-be reason, drop nothing
    benchmarks: list[Benchmark] = field(default_factory=list)
    ngram: int = 13  # words per n-gram (GPT-3: 13)
    min_hits: int = 1  # distinct matching n-grams that make a document contaminated

    def validate(self, path: str) -> None:
        check(self.ngram >= 3, f"{path}.ngram", "must be >= 3 (shorter n-grams match ordinary prose)")
        check(self.min_hits >= 1, f"{path}.min_hits", "must be >= 1")
        if self.enabled:
            check(bool(self.benchmarks), f"{path}.benchmarks", "name at least one benchmark when the stage is enabled")
        names = set()
        for i, b in enumerate(self.benchmarks):
            check(bool(b.name) and b.name not in names, f"{path}.benchmarks[{i}].name", "must be given and unique")
            check(bool(b.path), f"{path}.benchmarks[{i}].path", "must name a file or folder")
            check(bool(b.fields), f"{path}.benchmarks[{i}].fields", "must name at least one text field")
            names.add(b.name)


# --- reading benchmarks ------------------------------------------------------------------------------

def _rows_jsonl(raw: bytes, where: str):
    if raw[:2] == b"\x1f\x8b":  # gzipped (an opener that decompresses by extension gave it already)
        raw = gzip.decompress(raw)
    for i, line in enumerate(raw.decode("utf-8").splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{where}:{i}: not JSON ({e})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{where}:{i}: not a JSON object")
            yield row


def _rows_table(table: pa.Table):
    yield from table.to_pylist()


def _open_binary(path: str):
    return open(path, "rb")


def read_benchmark(b: Benchmark, open_file=_open_binary):
    """The benchmark's rows (dicts), from JSONL, Parquet or a `datasets` folder (its .arrow files).
    `open_file` opens a path for reading bytes (the pipeline passes Beam's FileSystems.open)."""
    import pyarrow.parquet as pq

    def read(path: str) -> bytes:
        with open_file(path) as fh:
            return fh.read()

    if os.path.isdir(b.path):
        arrow = sorted(glob.glob(os.path.join(b.path, "**", "*.arrow"), recursive=True))
        parquet = sorted(glob.glob(os.path.join(b.path, "**", "*.parquet"), recursive=True))
        if arrow:  # datasets' save_to_disk: Arrow IPC streams
            for f in arrow:
                yield from _rows_table(pa.ipc.open_stream(pa.BufferReader(read(f))).read_all())
        elif parquet:
            for f in parquet:
                yield from _rows_table(pq.read_table(io.BytesIO(read(f))))
        else:
            raise ValueError(f"{b.path}: no .arrow or .parquet files in this folder")
    elif b.path.endswith(".parquet"):
        yield from _rows_table(pq.read_table(io.BytesIO(read(b.path))))
    elif b.path.endswith((".jsonl", ".jsonl.gz", ".json.gz", ".ndjson")):
        yield from _rows_jsonl(read(b.path), b.path)
    else:
        raise ValueError(f"{b.path}: a benchmark is JSONL (.jsonl, .jsonl.gz), Parquet or a datasets folder")


def informative_ngrams(toks: list[str], n: int) -> np.ndarray:
    """The hashes of the n-grams at least half of whose words have a letter. With digits normalised
    to 0, a run of numbers (a list of test values in a benchmark, a table on a page) is thirteen
    zeros, and such n-grams matched unrelated pages (a Python tutorial's list of numbers hit
    HumanEval/0): they are left out of the index."""
    h = ngram_hashes(toks, n)
    if not len(h):
        return h
    words = np.fromiter((not t.isdigit() and any(c.isalpha() for c in t) for t in toks), dtype=np.int64,
                        count=len(toks))
    cum = np.concatenate([[0], np.cumsum(words)])
    return h[(cum[n:] - cum[:-n]) * 2 >= n]


# --- the index -----------------------------------------------------------------------------------------

@dataclass
class BenchmarkIndex:
    """Every benchmark n-gram's hash, sorted and distinct, and the item it first came from."""

    ngram: int
    hashes: np.ndarray  # uint64, sorted, distinct
    item: np.ndarray  # uint32: index into `items` for each hash
    items: list[tuple[str, str]]  # (benchmark, item id)
    sizes: dict  # benchmark -> {"items": n, "ngrams": n, "unsearchable_items": n}

    @classmethod
    def build(cls, benchmarks: list[tuple[str, list[tuple[str, str]]]], ngram: int) -> "BenchmarkIndex":
        """From [(benchmark name, [(item id, text), ...]), ...]."""
        parts, owners, items, sizes = [], [], [], {}
        for name, rows in benchmarks:
            size = sizes.setdefault(name, {"items": 0, "ngrams": 0, "unsearchable_items": 0})
            for item_id, text in rows:
                h = np.unique(informative_ngrams(benchmark_tokens(text), ngram))
                size["items"] += 1
                if not len(h):  # shorter than one n-gram, or numbers only: nothing to find it by
                    size["unsearchable_items"] += 1
                    continue
                size["ngrams"] += len(h)
                parts.append(h)
                owners.append(np.full(len(h), len(items), dtype=np.uint32))
                items.append((name, str(item_id)))
        if not parts:
            return cls(ngram, np.zeros(0, np.uint64), np.zeros(0, np.uint32), items, sizes)
        return cls.from_arrays(ngram, np.concatenate(parts), np.concatenate(owners), items, sizes)

    @classmethod
    def from_arrays(cls, ngram: int, hashes: np.ndarray, owners: np.ndarray, items: list, sizes: dict):
        order = np.argsort(hashes, kind="stable")  # ties: the first item keeps the n-gram
        hashes, owners = hashes[order], owners[order]
        first = np.ones(len(hashes), dtype=bool)
        first[1:] = hashes[1:] != hashes[:-1]
        return cls(ngram, hashes[first], owners[first], items, sizes)

    def to_files(self, folder: str, write) -> "IndexFiles":
        """The two arrays as .npy files in `folder` (`write(path, bytes)`); the handle workers load."""
        for name, array in (("hashes", self.hashes), ("item", self.item)):
            buf = io.BytesIO()
            np.save(buf, array, allow_pickle=False)
            write(f"{folder}/{name}.npy", buf.getvalue())
        return IndexFiles(self.ngram, folder, self.items, self.sizes, uuid.uuid4().hex)

    @property
    def nbytes(self) -> int:
        return self.hashes.nbytes + self.item.nbytes

    def __len__(self) -> int:
        return len(self.hashes)

    def matches(self, toks: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(positions in `toks` where a benchmark n-gram starts, the index row of each)."""
        h = ngram_hashes(toks, self.ngram)
        if not len(h) or not len(self.hashes):
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        # Most n-grams of a page are in no benchmark: a bitmap of the hashes' leading bits turns
        # nearly all of them away before the binary search, whose random reads into a large
        # index cost most of the time (10M n-grams: 2.1 -> 0.3 ms a page).
        shift, bitmap = self.prefilter()
        top = h >> shift
        maybe = np.flatnonzero((bitmap[top >> np.uint64(3)] >> (top & np.uint64(7)).astype(np.uint8)) & 1)
        if not len(maybe):
            return maybe, maybe
        q = h[maybe]
        at = np.searchsorted(self.hashes, q)
        at[at == len(self.hashes)] = 0
        hit = self.hashes[at] == q
        return maybe[hit], at[hit]

    def prefilter(self) -> tuple[np.uint64, np.ndarray]:
        """(shift, bitmap): bit ``hash >> shift`` is set for every indexed hash; 8 to 16 slots an
        n-gram, so that most other hashes find their bit unset (17 MB for 10M n-grams), built once
        per process from the sorted hashes."""
        cached = self.__dict__.get("_prefilter")
        if cached is None:
            bits = int(min(32, max(16, np.ceil(np.log2(max(2, len(self.hashes)))) + 3)))
            shift = np.uint64(64 - bits)
            top = np.asarray(self.hashes) >> shift  # sorted: one of each by comparing neighbours
            top = top[np.r_[True, top[1:] != top[:-1]]] if len(top) else top
            byte = (top >> np.uint64(3)).astype(np.int64)
            bit = (np.uint8(1) << (top & np.uint64(7)).astype(np.uint8)).astype(np.uint8)
            bitmap = np.zeros(1 << (bits - 3), dtype=np.uint8)
            starts = np.flatnonzero(np.r_[True, byte[1:] != byte[:-1]])
            bitmap[byte[starts]] = np.add.reduceat(bit, starts)  # distinct bits of a byte: sum = or
            cached = self.__dict__["_prefilter"] = (shift, bitmap)
        return cached


# Per worker process: the DoFn instances of a run share one index (freed with the last of them).
_LOADED: "weakref.WeakValueDictionary[tuple, BenchmarkIndex]" = weakref.WeakValueDictionary()


@dataclass
class IndexFiles:
    """A `BenchmarkIndex` written to files (the pipeline's staging folder): what the job carries."""

    ngram: int
    folder: str
    items: list
    sizes: dict
    token: str = ""  # this writing's own: a rerun into the same folder never gets an older index

    def load(self, open_file=None) -> BenchmarkIndex:
        """Local files are memory-mapped (worker processes on a machine share one copy in the page
        cache); others are read once per process through `open_file`."""
        key = (self.folder, self.token)
        index = _LOADED.get(key)
        if index is None:
            arrays = {}
            for name in ("hashes", "item"):
                path = f"{self.folder}/{name}.npy"
                if "://" not in path:
                    arrays[name] = np.load(path, mmap_mode="r", allow_pickle=False)
                else:
                    with (open_file or _open_binary)(path) as fh:
                        arrays[name] = np.load(io.BytesIO(fh.read()), allow_pickle=False)
            index = BenchmarkIndex(self.ngram, arrays["hashes"], arrays["item"], self.items, self.sizes)
            _LOADED[key] = index
        return index


def build_index(params: DecontaminateParams, open_file=_open_binary) -> BenchmarkIndex:
    loaded = []
    for i, b in enumerate(params.benchmarks):
        key = f"stages.{STAGE}.benchmarks[{i}]"
        try:
            rows = []
            for n, row in enumerate(read_benchmark(b, open_file)):
                missing = [f for f in b.fields if f not in row]
                if missing:
                    raise ConfigError(f"config key '{key}.fields': row {n} of {b.path} has no field "
                                      f"{', '.join(map(repr, missing))} (it has {', '.join(map(repr, row))})")
                if b.id_field and b.id_field not in row:
                    raise ConfigError(f"config key '{key}.id_field': row {n} of {b.path} has no field "
                                      f"{b.id_field!r} (it has {', '.join(map(repr, row))}; leave id_field "
                                      "empty to name items by their row number)")
                text = "\n".join(str(row[f]) for f in b.fields if row[f] is not None)
                item = row[b.id_field] if b.id_field else n
                rows.append((item, text))
        except (OSError, ValueError) as e:
            if isinstance(e, ConfigError):
                raise
            raise ConfigError(f"config key '{key}.path': {e}") from None
        loaded.append((b.name, rows))
    return BenchmarkIndex.build(loaded, params.ngram)


class Decontaminate(Counting):
    """doc -> doc | Drop("contaminated"): the benchmark n-grams it contains."""

    def __init__(self, index: BenchmarkIndex, min_hits: int, annotate: bool):
        super().__init__()
        self.index = index
        self.min_hits = min_hits
        self.annotate = annotate

    def __call__(self, doc: dict):
        toks = benchmark_tokens(doc.get("text") or "")
        positions, rows = self.index.matches(toks)
        hits = len(np.unique(rows))
        bench = item = None
        if hits:
            owners = self.index.item[rows]
            # the item with the most matched n-grams (lowest index on ties) names the contamination
            counts = np.bincount(owners)
            top = int(counts.argmax())
            bench, item = self.index.items[top]
            first = int(positions[np.flatnonzero(owners == top)[0]])
            gram = " ".join(toks[first:first + self.index.ngram])
        contaminated = hits >= self.min_hits
        if self.annotate:
            doc[f"{STAGE}_hits"] = hits
            doc[f"{STAGE}_benchmark"] = bench
            doc[f"{STAGE}_reason"] = "contaminated" if contaminated else None
            if contaminated:
                self.counters["would_drop:contaminated"] += 1
                self.counters[f"contaminated:{bench}"] += 1
            return doc
        if contaminated:
            self.counters[f"contaminated:{bench}"] += 1
            return Drop("contaminated", f"{bench} {item}: {hits} matching {self.index.ngram}-grams, e.g. \"{gram}\"")
        return doc


def _resolve(params: DecontaminateParams, open_file) -> BenchmarkIndex:
    return build_index(params, open_file)


def _build(params: DecontaminateParams, ctx) -> Decontaminate:
    index = ctx.resource.load(ctx.open_file) if isinstance(ctx.resource, IndexFiles) else ctx.resource
    return Decontaminate(index, params.min_hits, params.annotate)


def _columns(params: DecontaminateParams) -> tuple:
    if not params.annotate:
        return ()
    return ((f"{STAGE}_hits", pa.int64()), (f"{STAGE}_benchmark", pa.string()), (f"{STAGE}_reason", pa.string()))


def _finish(stats: dict, params: DecontaminateParams) -> list[str]:
    """Every benchmark named in stats.json, with the documents it caught (0 too)."""
    counters = stats["stages"][STAGE].setdefault("counters", {})
    stats["stages"][STAGE]["by_benchmark"] = {b.name: counters.get(f"contaminated:{b.name}", 0)
                                              for b in params.benchmarks}
    return []


register(Stage(name=STAGE, order=82, params=DecontaminateParams, build=_build, resolve=_resolve,
               columns=_columns, finish=_finish,
               description="drop documents containing evaluation benchmark text (13-gram overlap)",
               details=("word 13-grams (`ngram`) of each benchmark item (JSONL, Parquet or a `datasets` "
                        "folder; `fields` joined), after exact dedup's normalisation, hashed once on the "
                        "driver into a sorted array (12 bytes an n-gram) the workers search; a document "
                        "with `min_hits` matching n-grams is dropped as `contaminated`, the detail naming "
                        "the benchmark, the item and one n-gram. Off unless `enabled`"),
               reasons=("contaminated",)))
