"""Writing the run's Parquet outputs: rows are keyed by a seeded hash of their id, spilled, grouped
by shard and written as one sorted file per shard, atomically; and stats.json."""

from __future__ import annotations

import io
import json

import apache_beam as beam
import pyarrow as pa

from thresher.pipeline.graph.counting import flatten, in_global_window
from thresher.pipeline.graph.heap import give_back_memory
from thresher.pipeline.progress import ProgressWriter
from thresher.pipeline.graph.rundir import atomic_write
from thresher.pipeline.graph.spill import MAX_BYTES, SpillBuffer, read_rows
from thresher.pipeline.stats import assemble
from thresher.transforms.hashing import row_order, safe_partition_value, shard_of

REJECTED_SCHEMA = pa.schema([
    ("id", pa.string()),
    ("url", pa.string()),
    ("source", pa.string()),
    ("offset", pa.int64()),
    ("stage", pa.string()),
    ("reason", pa.string()),
    ("detail", pa.string()),
    ("errored", pa.bool_()),
    ("text", pa.string()),
    ("signals", pa.string()),
])


def branches_of(pcolls) -> list:
    """A PCollection or a tuple of them, as a list (Beam reads a list as values to create)."""
    return list(pcolls) if isinstance(pcolls, (list, tuple)) else [pcolls]


def _stats_key(k) -> str:
    return "|".join(str(x) for x in k)


class SpillByShard(beam.DoFn):
    """Rows -> ``(shard, SpillRef)``: the rows go to a spill file, the reference to the shuffle.

    The shard count is fixed, or ``shards=None`` with ``buckets``: the rows are keyed by
    floor(u * buckets), a fixed fine bucketing, for outputs whose shard count is known only once
    every row is seen (token shards: ceil(total tokens / shard_tokens)). With ``folder=None``
    (spill files off) the rows themselves go to the shuffle: ``(shard, row)``.
    """

    def __init__(self, folder: str | None, shards: int | None, seed: int, salt: str = "", buckets: int | None = None,
                 max_bytes: int = MAX_BYTES, release: bool = False):
        self.folder = folder
        self.release = release  # each segment is read once: a file goes after its last (spill.SpillBuffer)
        self.shards = shards if shards is not None else buckets
        self.seed = seed
        self.salt = salt
        self.max_bytes = max_bytes

    def start_bundle(self):
        self._buffer = SpillBuffer(self.folder, self.max_bytes, self.release) if self.folder else None

    def process(self, row: dict):
        key = shard_of(self.salt + str(row.get("id")), self.seed, self.shards)
        if self._buffer is None:
            yield key, row
            return
        self._buffer.add(key, row)
        if self._buffer.full:
            yield from self._buffer.flush()

    def finish_bundle(self):
        for kv in (self._buffer.flush() if self._buffer is not None else ()):
            yield in_global_window(kv)


def rows_of(items) -> list:
    """The rows a shuffle delivered: spill references are read, rows (spill files off) are taken
    as they are; None marks an always-written file."""
    items = [i for i in items if i is not None]
    return [i for i in items if isinstance(i, dict)] + read_rows(i for i in items if not isinstance(i, dict))


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
        self.progress = ProgressWriter.shared(self.progress_dir)

    def process(self, element):
        n, files = self._write(*element)
        give_back_memory()  # the shard's rows, table and file image are gone with _write's frame
        self.progress.add("written" if self.kind == "documents" else "written_rejected", n)
        self.progress.flush()
        yield {("output", self.kind): n, ("output", f"{self.kind}_files"): files}

    def _write(self, shard: int, refs) -> tuple[int, int]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = rows_of(refs)
        rows.sort(key=row_order)
        name = self.filename or f"part-{shard:05d}-of-{self.shards:05d}.parquet"
        groups = {"": rows}
        schema = self.schema
        if self.partition:
            # Hive layout, and the column stays in the files: readers that know no partitioning
            # (Hugging Face datasets' Parquet builder) keep it. It is written with the folder's
            # value, dictionary-encoded: the type pyarrow infers for a partition key, so pyarrow's
            # dataset, polars and DuckDB merge the two without a type clash.
            i = schema.get_field_index(self.partition)
            schema = schema.set(i, pa.field(self.partition, pa.dictionary(pa.int32(), pa.string())))
            groups = {}
            for row in rows:
                value = safe_partition_value(row.get(self.partition))
                groups.setdefault(f"{self.partition}={value}/", []).append({**row, self.partition: value})
        for prefix, part in sorted(groups.items()):
            table = pa.Table.from_pylist(part, schema=schema)
            buf = io.BytesIO()
            compression = None if self.compression == "none" else self.compression
            if table.num_rows:
                pq.write_table(table, buf, compression=compression)
            else:  # no row group at all: an empty row group stops Hugging Face datasets' Parquet reader
                pq.ParquetWriter(buf, schema, compression=compression).close()
            atomic_write(f"{self.folder}/{prefix}{name}", buf.getvalue())
        return len(rows), len(groups)


class WriteShards(beam.PTransform):
    """Key rows by a seeded hash of their id, group, and write one sorted Parquet file per shard.

    Takes one PCollection or a tuple of them (Beam reads a list as values to create). The rows go
    to spill files and only references to them through the shuffle (`pipeline.spill`); each branch
    spills on its own, because a Flatten before the spill would make the local runner hold every
    row of the branches between stages. The first file of an unpartitioned output is written even
    when no row comes: an empty table, not a missing file.
    """

    def __init__(self, kind: str, folder: str, schema: pa.Schema, shards: int, seed: int, compression: str,
                 progress_dir: str | None, spill: str | None, filename: str | None = None, partition: str | None = None,
                 release: bool = False):
        super().__init__()
        self.release = release  # the local runner: each spill file goes once its shards have read it
        self.args = (kind, folder, schema, shards, compression, progress_dir, filename, partition)
        self.shards = shards
        self.seed = seed
        self.spill = spill
        # the first file is written even without rows (an empty table, readable by every reader, not
        # an empty folder); not for partitioned output, whose files live in the partitions' folders
        self.always = partition is None

    def expand(self, rows):
        branches = branches_of(rows)
        refs = [branch | f"Spill{i}" >> beam.ParDo(SpillByShard(self.spill, self.shards, self.seed,
                                                                release=self.release))
                for i, branch in enumerate(branches)]
        if self.always:
            refs.append(branches[0].pipeline | "AlwaysWritten" >> beam.Create([(0, None)]))
        return (
            flatten("AllSpilled", refs)
            | "GroupShard" >> beam.GroupByKey()
            | "WriteShard" >> beam.ParDo(WriteShard(*self.args))
        )


class WriteStats(beam.DoFn):
    def __init__(self, path: str, stage_names: list[str]):
        self.path = path
        self.stage_names = stage_names

    def process(self, counts: dict):
        stats = assemble(counts, self.stage_names)
        stats["counts"] = {_stats_key(k): v for k, v in sorted(counts.items(), key=lambda kv: _stats_key(kv[0]))}
        atomic_write(self.path, json.dumps(stats, indent=2, sort_keys=False).encode())
        yield stats
