"""DoFns that wrap `transforms/`: reading files, running a stage, writing shards.

Each DoFn counts what it does per bundle and emits the counts on the ``counts`` output when the
bundle ends, so the statistics travel with the data and reach ``stats.json`` on every runner
(portable runners such as Spark's do not report Beam metrics back).
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections import Counter

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.pvalue import TaggedOutput
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from pipeline.heap import give_back_memory
from pipeline.progress import ProgressWriter
from pipeline.rundir import atomic_write
from pipeline.spill import MAX_BYTES, SpillBuffer, read_rows, read_segments
from transforms.document import DOCUMENT_SCHEMA, Drop, make_id, source_name
from transforms.ingest import Rejection, WarcOptions, read_records, splittable

COUNTS = "counts"
REJECTED = "rejected"
PARKED = "_park"  # in a parked document's reference: where the document is
FATE = "_fate"  # in a rejected reference: (stage, reason, detail, errored)

# Fields that are carried between stages but never written as signals.
_NOT_SIGNALS = set(DOCUMENT_SCHEMA.names) | {"payload", "html", "format"}


def seeded_hash(doc_id: str, seed: int) -> int:
    """A 64-bit number fixed by (id, seed): shard assignment and sampling, the same on every run."""
    return int.from_bytes(hashlib.blake2b(f"{seed}\x00{doc_id}".encode(), digest_size=8).digest(), "big")


def seeded_fraction(doc_id: str, seed: int) -> float:
    """`seeded_hash` as a number in [0, 1)."""
    return seeded_hash(doc_id, seed) / 2**64


def in_global_window(item):
    """An output of `finish_bundle` (a value or a TaggedOutput), which Beam wants windowed."""
    if isinstance(item, TaggedOutput):
        return TaggedOutput(item.tag, WindowedValue(item.value, MIN_TIMESTAMP, [GlobalWindow()]))
    return WindowedValue(item, MIN_TIMESTAMP, [GlobalWindow()])


def rejected_row(doc: dict, stage: str, reason: str, detail: str, errored: bool, text_chars: int = 0) -> dict:
    text = doc.get("text") if doc.get("text") is not None else doc.get("html")
    if text is not None and text_chars:
        text = text[:text_chars]
    signals = {k: v for k, v in doc.items() if k not in _NOT_SIGNALS and not isinstance(v, bytes)}
    return {
        "id": doc.get("id"),
        "url": doc.get("url"),
        "source": doc.get("source"),
        "offset": doc.get("offset"),
        "stage": stage,
        "reason": reason,
        "detail": detail[:2000] if detail else detail,
        "errored": errored,
        "text": text,
        "signals": json.dumps(signals, sort_keys=True, ensure_ascii=False, default=str) if signals else None,
    }


class CountingDoFn(beam.DoFn):
    """Base: per-bundle counts on the ``counts`` output; rejected rows (sampled) on ``rejected``."""

    def __init__(self, rejected_sample: float = 1.0, seed: int = 0, text_chars: int = 0, progress_dir: str | None = None):
        self.rejected_sample = rejected_sample
        self.seed = seed
        self.text_chars = text_chars
        self.progress_dir = progress_dir

    def setup(self):
        self.progress = ProgressWriter(self.progress_dir)

    def start_bundle(self):
        self._counts: Counter = Counter()

    def count(self, key: tuple, n: float = 1) -> None:
        self._counts[key] += n

    def reject(self, doc: dict, stage: str, reason: str, detail: str, errored: bool):
        """Counts the drop; yields the rejected/ row when the seeded sample keeps it."""
        self.count((stage, "errored" if errored else "dropped", reason))
        if self.rejected_sample >= 1 or seeded_fraction(str(doc.get("id")), self.seed) < self.rejected_sample:
            if PARKED in doc:  # a parked document's reference (corpus stages): `Unpark` writes the row
                yield TaggedOutput(REJECTED, {**doc, FATE: (stage, reason, detail, errored)})
            else:
                yield TaggedOutput(REJECTED, rejected_row(doc, stage, reason, detail, errored, self.text_chars))

    def finish_bundle(self):
        self.progress.flush()
        if self._counts:
            yield in_global_window(TaggedOutput(COUNTS, dict(self._counts)))


class _CountingReader(io.RawIOBase):
    """A file object that reports how many bytes were read (for the progress line)."""

    def __init__(self, raw, on_read):
        self.raw = raw
        self.on_read = on_read

    def readable(self):
        return True

    def read(self, n=-1):
        data = self.raw.read(n)
        self.on_read(len(data))
        return data

    def readinto(self, b):
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def seekable(self):
        return self.raw.seekable() if hasattr(self.raw, "seekable") else False

    def seek(self, pos, whence=0):
        return self.raw.seek(pos, whence)

    def tell(self):
        return self.raw.tell()

    def close(self):
        self.raw.close()
        super().close()


class ReadRecords(CountingDoFn):
    """A file split ``(path, start, end, size)`` in; its documents out, one at a time.

    A file is streamed, never held whole. Documents of splittable files (gzip WARC, read in
    byte ranges by many workers) go to the main output; those of files read whole by one worker
    are spilled in chunks whose references go to ``SPREAD``, to be redistributed before the
    expensive stages.
    """

    STAGE = "ingest"
    SPREAD = "spread"

    def __init__(self, warc: WarcOptions, spill_folder: str, spread_bytes: int = 4_000_000, **kw):
        super().__init__(**kw)
        self.warc = warc
        self.spill_folder = spill_folder
        self.spread_bytes = spread_bytes  # records of a file read whole travel in spilled chunks of this size

    def start_bundle(self):
        super().start_bundle()
        self._spread = SpillBuffer(self.spill_folder, self.spread_bytes)

    def process(self, split):
        yield from self._read(*split)

    def _spill(self, item: dict):
        self._spread.add(0, item)
        if self._spread.full:
            for _, ref in self._spread.flush():
                yield TaggedOutput(self.SPREAD, ref)

    def finish_bundle(self):
        for _, ref in self._spread.flush():
            yield in_global_window(TaggedOutput(self.SPREAD, ref))
        yield from super().finish_bundle()

    def _read(self, path: str, start: int, end: int, size: int):
        source = source_name(path)
        if start == 0:
            self.count(("input", "files"))
            self.count(("input", "bytes"), size)
        tag = None if splittable(path) else self.SPREAD
        try:
            raw = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
        except Exception as e:
            if start != 0:
                return  # the first split reports the unreadable file
            self.count((self.STAGE, "in"))
            doc = {"id": make_id(source, "open"), "url": None, "source": source, "offset": 0}
            yield from self.reject(doc, self.STAGE, "unreadable_file", f"{type(e).__name__}: {e}", True)
            return

        busy = 0.0  # time in the reader only: yielding runs the fused downstream stages
        budget = [end - start]  # progress counts each byte of the file once, across its splits

        def on_read(n: int) -> None:
            n = min(n, budget[0])
            if n > 0:
                budget[0] -= n
                self.progress.add("read_bytes", n)

        with _CountingReader(raw, on_read) as fh:
            items = read_records(fh, path, source, self.warc, (start, end))
            while True:
                t0 = time.perf_counter()
                try:
                    item = next(items)
                except StopIteration:
                    break
                except Exception as e:  # a reader bug must cost this split's rest, not the job
                    self.count((self.STAGE, "in"))
                    doc = {"id": make_id(source, f"reader_error@{start}"), "url": None, "source": source, "offset": start}
                    yield from self.reject(doc, self.STAGE, "reader_error", f"{type(e).__name__}: {e}", True)
                    break
                busy += time.perf_counter() - t0
                self.count((self.STAGE, "in"))
                self.progress.add("read_records")
                if isinstance(item, Rejection):
                    yield from self.reject(item.doc, self.STAGE, item.reason, item.detail, item.errored)
                else:
                    if tag is None:
                        yield item
                    else:
                        yield from self._spill(item)
        self.count((self.STAGE, "seconds"), busy)


class StageDoFn(CountingDoFn):
    """Runs one stage's ``doc -> doc | Drop`` callable; an exception drops only that document.

    With ``batch`` > 0 the callable takes a list of documents and returns one outcome each; the
    DoFn buffers up to ``batch`` documents of a bundle (a failing batch is retried document by
    document, so one bad document still costs only itself).
    """

    def __init__(self, stage: str, make, cfg, count_in: bool = True, batch: int = 0, **kw):
        super().__init__(**kw)
        self.stage = stage
        self.make = make
        self.cfg = cfg
        self.count_in = count_in
        self.batch = batch

    def setup(self):
        super().setup()
        self.fn = self.make(self.cfg)  # models and tables load once per worker, not per element
        self._pop_counters = getattr(self.fn, "pop_counters", None)

    def start_bundle(self):
        super().start_bundle()
        self._buffer: list[dict] = []

    def process(self, doc: dict):
        if self.count_in:
            self.count((self.stage, "in"))
        if self.batch:
            self._buffer.append(doc)
            if len(self._buffer) >= self.batch:
                yield from self._flush()
            return
        start = time.perf_counter()
        try:
            out = self.fn(doc)
        except Exception as e:
            out = e
        self.count((self.stage, "seconds"), time.perf_counter() - start)
        yield from self._outcome(doc, out)

    def _flush(self):
        docs, self._buffer = self._buffer, []
        if not docs:
            return
        start = time.perf_counter()
        try:
            outs = self.fn(docs)
        except Exception:
            outs = []
            for d in docs:
                try:
                    outs.append(self.fn([d])[0])
                except Exception as e:
                    outs.append(e)
        self.count((self.stage, "seconds"), time.perf_counter() - start)
        for doc, out in zip(docs, outs):
            yield from self._outcome(doc, out)

    def _outcome(self, doc: dict, out):
        self.progress.add(f"stage:{self.stage}")
        if self._pop_counters is not None:  # a stage's own counters (redactions, would-be drops)
            for name, n in self._pop_counters().items():
                self.count((self.stage, "counter", name), n)
        if isinstance(out, Drop):
            yield from self.reject(doc, self.stage, out.reason, out.detail, False)
        elif isinstance(out, Exception):
            yield from self.reject(doc, self.stage, "exception", f"{type(out).__name__}: {out}", True)
        else:
            self.count((self.stage, "kept"))
            yield out

    def finish_bundle(self):
        for item in self._flush():
            yield in_global_window(item)
        yield from super().finish_bundle()


def row_order(row: dict) -> tuple:
    """The total order of rows that makes outputs byte-identical on every runner: by id, then
    source and offset (user-supplied ids may repeat)."""
    return str(row.get("id")), str(row.get("source")), row.get("offset") or 0


def safe_partition_value(value) -> str:
    """A partition folder name from a column value: ``und`` when missing, never a path."""
    text = str(value) if value not in (None, "") else "und"
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:64]


def shard_of(doc_id: str, seed: int, shards: int) -> int:
    """floor(u * shards) for u = hash(seed, id) / 2**64, in exact integer arithmetic (so a coarser
    bucketing, `shards_of_bucket`, can say which shards a bucket's rows fall into)."""
    return (seeded_hash(doc_id, seed) * shards) >> 64


TOKEN_BUCKETS = 4096


def shards_of_bucket(bucket: int, buckets: int, shards: int) -> range:
    """The shards s = floor(u * shards) that rows with floor(u * buckets) == bucket can fall into."""
    return range(bucket * shards // buckets, ((bucket + 1) * shards - 1) // buckets + 1)


class SpillByShard(beam.DoFn):
    """Rows -> ``(shard, SpillRef)``: the rows go to a spill file, the reference to the shuffle.

    The shard count is fixed, or ``shards=None`` with ``buckets``: the rows are keyed by
    floor(u * buckets), a fixed fine bucketing, for outputs whose shard count is known only once
    every row is seen (token shards: ceil(total tokens / shard_tokens)).
    """

    def __init__(self, folder: str, shards: int | None, seed: int, salt: str = "", buckets: int | None = None,
                 max_bytes: int = MAX_BYTES):
        self.folder = folder
        self.shards = shards if shards is not None else buckets
        self.seed = seed
        self.salt = salt
        self.max_bytes = max_bytes

    def start_bundle(self):
        self._buffer = SpillBuffer(self.folder, self.max_bytes)

    def process(self, row: dict):
        self._buffer.add(shard_of(self.salt + str(row.get("id")), self.seed, self.shards), row)
        if self._buffer.full:
            yield from self._buffer.flush()

    def finish_bundle(self):
        for kv in self._buffer.flush():
            yield in_global_window(kv)


class WriteShard(beam.DoFn):
    """Writes one shard as Parquet, rows sorted by (id, source, offset): the same bytes every run.

    The file appears atomically: written under a temporary name, then renamed.
    """

    def __init__(self, kind: str, folder: str, schema, shards: int, compression: str, progress_dir: str | None = None,
                 filename: str | None = None, partition: str | None = None):
        self.filename = filename  # a fixed name for a single-file output (dedup/clusters.parquet)
        self.partition = partition  # a column: one sub-folder per value (documents/lang=xx/)
        self.kind = kind
        self.folder = folder
        self.schema = schema
        self.shards = shards
        self.compression = compression
        self.progress_dir = progress_dir

    def setup(self):
        self.progress = ProgressWriter(self.progress_dir)

    def process(self, element):
        n, files = self._write(*element)
        give_back_memory()  # the shard's rows, table and file image are gone with _write's frame
        self.progress.add("written" if self.kind == "documents" else "written_rejected", n)
        self.progress.flush()
        yield {("output", self.kind): n, ("output", f"{self.kind}_files"): files}

    def _write(self, shard: int, refs) -> tuple[int, int]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = read_rows(refs)
        rows.sort(key=row_order)
        name = self.filename or f"part-{shard:05d}-of-{self.shards:05d}.parquet"
        groups = {"": rows}
        schema = self.schema
        if self.partition:
            # Hive layout: the value lives in the folder name only (a column of the same name in the
            # files would clash with it in pyarrow/polars/duckdb readers of documents/)
            schema = schema.remove(schema.get_field_index(self.partition))
            groups = {}
            for row in rows:
                value = safe_partition_value(row.get(self.partition))
                groups.setdefault(f"{self.partition}={value}/", []).append(row)
        for prefix, part in sorted(groups.items()):
            table = pa.Table.from_pylist(part, schema=schema)
            buf = io.BytesIO()
            pq.write_table(table, buf, compression=None if self.compression == "none" else self.compression)
            atomic_write(f"{self.folder}/{prefix}{name}", buf.getvalue())
        return len(rows), len(groups)


class MergeCounts(beam.CombineFn):
    def create_accumulator(self):
        return Counter()

    def add_input(self, acc, counts):
        acc.update(counts)
        return acc

    def merge_accumulators(self, accs):
        out = Counter()
        for a in accs:
            out.update(a)
        return out

    def extract_output(self, acc):
        return dict(acc)


class WriteTokenShard(beam.DoFn):
    """Writes one tokenized shard (transforms/shards.py), documents in seeded shuffled order."""

    def __init__(self, folder: str, dtype: str, seed: int, salt: str, progress_dir: str | None = None):
        self.folder = folder
        self.dtype = dtype
        self.seed = seed
        self.salt = salt
        self.progress_dir = progress_dir

    def setup(self):
        self.progress = ProgressWriter(self.progress_dir)

    def process(self, element):
        from transforms.shards import encode_shard, shard_name

        index, refs = element  # (SpillRef of a bucket, shard count) pairs; a bucket can span two shards
        refs = list(refs)
        n = refs[0][1]
        rows = [r for segment in read_segments(ref for ref, _ in refs) for r in segment
                if shard_of(self.salt + str(r["id"]), self.seed, n) == index]
        rows.sort(key=lambda r: (seeded_hash(self.salt + str(r["id"]), self.seed), *row_order(r)))
        data = encode_shard(rows, self.dtype)
        name = shard_name(index)
        atomic_write(f"{self.folder}/{name}", data)
        written = {"file": name, "rows": len(rows), "tokens": int(sum(len(r["tokens"]) for r in rows)),
                   "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        del rows, data
        give_back_memory()
        self.progress.add("shards")
        self.progress.flush()
        yield written


# Fields a parked document's reference keeps: what the corpus stages decide on (and row_order's).
REFERENCE_FIELDS = ("id", "url", "date", "source", "offset")


class Park(CountingDoFn):
    """Documents -> small references, before the corpus stages (dedup).

    The documents go to spill files; the corpus stages shuffle only the references: the fields
    they decide on plus what each stage's `prepare` computed from the whole document while it was
    at hand (a text hash, a MinHash signature). `Unpark` brings the documents back afterwards.
    A `prepare` that raises drops only its document, as an error of the first corpus stage.
    """

    def __init__(self, folder: str, prepares: list, cfg, max_bytes: int = MAX_BYTES, **kw):
        super().__init__(**kw)
        self.folder = folder
        self.prepares = prepares  # [(stage name, cfg -> (doc -> dict of reference fields))]
        self.cfg = cfg
        self.max_bytes = max_bytes

    def setup(self):
        super().setup()
        self.fns = [(stage, make(self.cfg)) for stage, make in self.prepares]

    def start_bundle(self):
        super().start_bundle()
        self._buffer = SpillBuffer(self.folder, self.max_bytes)
        self._refs: list[dict] = []

    def process(self, doc: dict):
        ref = {k: doc[k] for k in REFERENCE_FIELDS if k in doc}
        for stage, fn in self.fns:
            start = time.perf_counter()
            try:
                ref.update(fn(doc))
            except Exception as e:
                first = self.fns[0][0]
                self.count((first, "in"))
                yield from self.reject(doc, first, "exception", f"{stage}: {type(e).__name__}: {e}", True)
                return
            finally:
                self.count((stage, "seconds"), time.perf_counter() - start)
        ref["_row"] = len(self._refs)
        self._refs.append(ref)
        self._buffer.add(0, doc)
        if self._buffer.full:
            yield from self._flush()

    def _flush(self):
        for _, spill_ref in self._buffer.flush():
            for ref in self._refs:
                ref[PARKED] = spill_ref
                yield ref
        self._refs = []

    def finish_bundle(self):
        for ref in self._flush():
            yield in_global_window(ref)
        yield from super().finish_bundle()


class Unpark(beam.DoFn):
    """(spill file, the references of its documents that are still wanted) -> the documents.

    A kept reference gives its document back (with any field a corpus stage added, such as
    ``near_duplicate_of``); a rejected one gives the document's rejected/ row. Documents whose
    reference did not come back (dropped outside the rejected sample) are skipped: their drop was
    counted where it happened.
    """

    def __init__(self, text_chars: int = 0):
        self.text_chars = text_chars

    def process(self, element):
        _, refs = element
        refs = sorted(refs, key=lambda r: r["_row"])
        docs = read_rows([refs[0][PARKED]])
        for ref in refs:
            doc, docs[ref["_row"]] = docs[ref["_row"]], None  # freed once downstream is done with it
            for k, v in ref.items():
                if not k.startswith("_") and k not in doc:
                    doc[k] = v
            fate = ref.get(FATE)
            if fate is not None:
                yield TaggedOutput(REJECTED, rejected_row(doc, *fate, self.text_chars))
            else:
                yield doc
        del docs, doc
        give_back_memory()


class ReadSpilled(beam.DoFn):
    """A spill reference -> its rows (records of a file read whole, spread over the workers)."""

    def process(self, ref):
        for segment in read_segments([ref]):
            yield from segment
