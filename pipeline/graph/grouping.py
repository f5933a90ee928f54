"""Groupings by key whose values wait on disk, for Beam's local runner.

Beam's local (Python) runner holds every grouped PCollection in its own process, decoded, until
the grouping's consumer runs: a run's memory grows with what its shuffles carry (for MinHash, a
key, an id and a signature per band and document). `GroupOnDisk` is a GroupByKey whose values go
to files instead, the way `spill.py` moves documents:

- each bundle pickles its ``(key, value)`` pairs into one buffer per *partition* (a stable hash
  of the key, ``partitions`` of them) and, when its buffers together reach ``buffer_bytes`` (or
  all groupings' buffers in the worker twice that) or the bundle ends, writes each partition's
  pairs as a compressed file of its own;
- the runner's GroupByKey carries only ``(partition, file)`` pairs, a few dozen bytes a file;
- the reader of a partition loads its files, groups the pairs by key in memory (one partition at a
  time: the grouping's bytes / ``partitions``), deletes the files and emits ``(key, [values])``.

Values reach their group in no particular order, as with any GroupByKey; consumers sort. The
files are deleted once read: the local runner does not retry a bundle (a failed bundle fails the
run, and a rerun starts from nothing), so nothing reads them twice. Distributed runners keep
their engine's own shuffle: there the transforms below are Beam's GroupByKey, CoGroupByKey and
Distinct.
"""

from __future__ import annotations

import pickle
import struct
import threading
import uuid
import zlib
from typing import NamedTuple

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from thresher.pipeline.graph.counting import flatten, in_global_window
from thresher.pipeline.graph.heap import give_back_memory
from thresher.pipeline.graph.spill import pack, unpack

PARTITIONS = 64
# The most a worker buffers for all its groupings' writes, and groups in memory at once (pickled
# bytes): the largest the memory budget gives (runner.memory_mb, PipelineContext.groups).
BUFFER_BYTES = 32 * 2**20
READ_BYTES = 32 * 2**20  # at 1M documents the MinHash buckets' partition is ~48 MB: split in two


def key_hash(key) -> int:
    """A key's 32-bit hash, the same in every process (Python's hash() of a str is salted per
    process). Keys are str, bytes, numbers or tuples of them, whose repr is stable."""
    return zlib.crc32(repr(key).encode("utf-8", "surrogatepass"))


# The write buffers of all groupings in a worker process together (a fused stage can write
# several groupings at once: a buffer each would multiply the memory).
_buffered = 0
_lock = threading.Lock()


class _WritePartitions(beam.DoFn):
    """(key, value) pairs -> (partition, file) for each file written. A file holds one partition's
    pairs of one flush: a pickled list of (key's hash, pickled pair)."""

    def __init__(self, folder: str, partitions: int, buffer_bytes: int):
        self.folder, self.partitions, self.buffer_bytes = folder, partitions, buffer_bytes

    def start_bundle(self):
        self._parts: dict[int, list] = {}
        self._bytes = 0
        self._n = 0

    def process(self, kv):
        global _buffered
        blob = pickle.dumps(kv, protocol=pickle.HIGHEST_PROTOCOL)
        if kv[0] is None:  # a flatten's value: any partition will do
            self._n += 1
            h = self._n
        else:
            h = key_hash(kv[0])
        self._parts.setdefault(h % self.partitions, []).append((h, blob))
        n = len(blob) + 80
        self._bytes += n
        with _lock:
            _buffered += n
        if self._bytes >= self.buffer_bytes or (_buffered >= 2 * self.buffer_bytes and self._bytes >= 1_000_000):
            yield from self._flush()

    def _flush(self):
        global _buffered
        for p in sorted(self._parts):
            path = f"{self.folder}/{p:05d}-{uuid.uuid4().hex}.pickle"
            _dump(path, self._parts[p])
            yield p, path
        with _lock:
            _buffered -= self._bytes
        self._parts, self._bytes = {}, 0
        give_back_memory()

    def finish_bundle(self):
        for item in self._flush():
            yield in_global_window(item)


class _ReadPartition(beam.DoFn):
    """(partition, its files) -> (key, [values]) for each key; or, not grouping, the values.

    A partition whose files hold more than ``read_bytes`` is first split by other bits of its keys'
    hashes into files of about ``read_bytes`` each (written beside it, read back one at a time), so
    that what is grouped in memory at once stays within the budget whatever the corpus's size (one
    key's values are always grouped together: a key with more values than the budget is the one
    thing that can exceed it)."""

    def __init__(self, partitions: int, read_bytes: int, group: bool = True):
        self.partitions, self.read_bytes, self.group = partitions, read_bytes, group

    def process(self, element):
        _, paths = element
        paths = sorted(paths)
        if not self.group:  # a flatten: the values, file by file
            for path in paths:
                for _, blob in _load(path):
                    yield pickle.loads(blob)[1]
                FileSystems.delete([path])
                give_back_memory()
            return
        size = sum(m.size_in_bytes for r in FileSystems.match(paths) for m in r.metadata_list)
        if size <= self.read_bytes:
            yield from self._group(paths)
            return
        splits = -(-size // self.read_bytes)
        parts = [f"{paths[0]}.split{i:03d}" for i in range(splits)]
        handles = [FileSystems.create(p, compression_type=CompressionTypes.UNCOMPRESSED) for p in parts]
        try:
            for path in paths:
                chunks: list[list] = [[] for _ in range(splits)]
                for h, blob in _load(path):
                    chunks[(h // self.partitions) % splits].append((h, blob))
                for fh, chunk in zip(handles, chunks):
                    if chunk:
                        fh.write(_frame(chunk))
                del chunks
        finally:
            for fh in handles:
                fh.close()
        FileSystems.delete(paths)
        for part in parts:
            yield from self._group([part])

    def _group(self, paths):
        groups: dict = {}
        for path in paths:
            for _, blob in _load(path):
                key, value = pickle.loads(blob)
                groups.setdefault(key, []).append(value)
        FileSystems.delete(paths)
        for key in list(groups):
            yield key, groups.pop(key)
        del groups
        give_back_memory()


_LENGTH = struct.Struct("<Q")


def _frame(pairs: list) -> bytes:
    """A list of (hash, pickled pair) as a file holds it: its length, then the list pickled and
    compressed (spill.pack); a file is one frame, or several appended (a split partition)."""
    data = pack(pickle.dumps(pairs, protocol=pickle.HIGHEST_PROTOCOL))
    return _LENGTH.pack(len(data)) + data


def _dump(path: str, pairs: list) -> None:
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        fh.write(_frame(pairs))


def _load(path: str) -> list:
    """A file's (hash, pickled pair) items, from all its frames."""
    items: list = []
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        data = memoryview(fh.read())
    at = 0
    while at < len(data):
        (n,) = _LENGTH.unpack_from(data, at)
        at += _LENGTH.size
        if at + n > len(data):
            raise IOError(f"{path}: a frame of {n} bytes at {at} runs past the file's end ({len(data)} bytes)")
        items.extend(pickle.loads(unpack(data[at:at + n])))
        at += n
    return items


def _as_list(pcolls) -> list:
    """A PCollection or a tuple of them (Beam reads a list as values to create, a tuple as inputs)."""
    return list(pcolls) if isinstance(pcolls, (list, tuple)) else [pcolls]


class OnDisk(NamedTuple):
    """Where and how groupings keep their values on disk: `folder` (each grouping takes a folder
    of its own in it), how many partitions, how many bytes a worker buffers before writing, and how
    many (pickled) bytes a reader groups in memory at once."""

    folder: str
    partitions: int = PARTITIONS
    buffer_bytes: int = BUFFER_BYTES
    read_bytes: int = READ_BYTES


class GroupOnDisk(beam.PTransform):
    """GroupByKey of a PCollection of (key, value) pairs, or of a tuple of them (flattened). With
    `disk`, the values wait in files (see the module's docstring); without, Beam's GroupByKey.
    ``group=False`` makes it a Flatten whose inputs pass through the files."""

    def __init__(self, disk: OnDisk | None, group: bool = True):
        super().__init__()
        self.disk, self.group = disk, group

    def expand(self, pcolls):
        inputs = _as_list(pcolls)
        if self.disk is None:
            pairs = flatten("Flatten", inputs)
            if not self.group:
                return pairs | "Values" >> beam.Values()
            return pairs | "GroupByKey" >> beam.GroupByKey()
        d = self.disk
        # A Flatten of PCollections made in different stages is a buffer in the local runner's
        # memory: each input writes its own files, and only the files' names are flattened.
        folder = f"{d.folder}/{uuid.uuid4().hex[:8]}"  # one per grouping (a label can repeat in a folder)
        files = tuple(pc | f"WritePartitions{i or ''}" >> beam.ParDo(_WritePartitions(folder, d.partitions,
                                                                                       d.buffer_bytes))
                      for i, pc in enumerate(inputs))
        return (flatten("AllFiles", files)
                | "GroupFiles" >> beam.GroupByKey()
                | "ReadPartition" >> beam.ParDo(_ReadPartition(d.partitions, d.read_bytes, self.group)))


def _tagged(kv, i: int):
    return kv[0], (i, kv[1])


def _untagged(kv, tags: tuple):
    key, values = kv
    out = {t: [] for t in tags}
    for i, v in values:
        out[tags[i]].append(v)
    return key, out


class CoGroupOnDisk(beam.PTransform):
    """CoGroupByKey over ``{name: PCollection of (key, value)}`` -> ``(key, {tag: [values]})``, where
    an input's tag is its name, or ``merge[name]`` (several inputs under one tag)."""

    def __init__(self, disk: OnDisk | None, merge: dict | None = None):
        super().__init__()
        self.disk, self.merge = disk, merge or {}

    def expand(self, pcolls: dict):
        tag_of = {name: self.merge.get(name, name) for name in pcolls}
        tags = tuple(sorted(set(tag_of.values())))
        if self.disk is None:
            return ({t: flatten(f"All[{t}]", [pcolls[n] for n in sorted(pcolls) if tag_of[n] == t]) for t in tags}
                    | "CoGroupByKey" >> beam.CoGroupByKey())
        tagged = tuple(pcolls[n] | f"Tag[{n}]" >> beam.Map(_tagged, tags.index(tag_of[n])) for n in sorted(pcolls))
        return (tagged
                | "Group" >> GroupOnDisk(self.disk)
                | "Untag" >> beam.Map(_untagged, tags))


class DistinctOnDisk(beam.PTransform):
    """Distinct elements of a PCollection or a tuple of them (hashable, with a stable repr: see
    `key_hash`)."""

    def __init__(self, disk: OnDisk | None):
        super().__init__()
        self.disk = disk

    def expand(self, pcoll):
        if self.disk is None:
            return flatten("Flatten", _as_list(pcoll)) | "Distinct" >> beam.Distinct()
        return (tuple(pc | f"AsKey{i or ''}" >> beam.Map(lambda x: (x, None)) for i, pc in enumerate(_as_list(pcoll)))
                | "Group" >> GroupOnDisk(self.disk)
                | "Key" >> beam.Map(lambda kv: kv[0]))


class FlattenOnDisk(beam.PTransform):
    """Flatten of a tuple of PCollections; with `disk`, each input's values pass through files, so
    that the local runner does not buffer the flattened PCollection in its memory."""

    def __init__(self, disk: OnDisk | None):
        super().__init__()
        self.disk = disk

    def expand(self, pcolls):
        inputs = _as_list(pcolls)
        if self.disk is None or len(inputs) == 1:
            return flatten("Flatten", inputs)
        return (tuple(pc | f"NoKey{i or ''}" >> beam.Map(lambda v: (None, v)) for i, pc in enumerate(inputs))
                | "Spread" >> GroupOnDisk(self.disk, group=False))
