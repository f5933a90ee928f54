"""Reruns that reuse finished work: the document stages' results of each input range, kept until the
run is published, so a rerun after a crash reads only the ranges that were not finished.

Beam has no notion of "this element's downstream work is done and durable" short of a finished
bundle, and the local runner gives each worker one bundle per stage: its whole share of the input.
So the graph says it itself. A range is a byte range of a gzip WARC (read by `ReadRecords`), or a
chunk of records (by number) of a file read whole, spilled by `ReadRecords` and read back by
`ReadSpilled` on any worker. Behind a range's last document a `RangeEnd` marker goes down the
document branch. The document stages run fused with the reader, one element at a time and in order,
so the marker reaches each stage after the range's last document: the stage flushes what it buffered
(a batch), adds what it counted and the rejected rows it wrote for the range, and passes the marker
on. `Park` is last: it flushes the range's documents to spill files of their own and writes the
range's checkpoint (its parked references, rejected rows and counts) under the staging folder's
``resume/``. Each stage also checks that the documents it saw since the previous marker are as many
as the stage before it passed on; a range that was not kept together gets no checkpoint and a rerun
reads it again.

A checkpoint is named by the range's key: the input file's identity (path, size, modification
time), the kind and bounds of the range; its folder by the digest of everything that decides the
documents reaching park (the stages before the first corpus stage, the corpus stages' `prepare`
parameters, the rejected rows' settings, Thresher's version). A rerun plans the same byte ranges,
finds the checkpoints whose parked files are all still there, skips the finished byte ranges and
the finished records of files read whole (a file whose records are all finished is not opened),
and feeds the checkpoints' references, rejected rows and counts in where the read ones come out of
`Park`: the corpus stages and writers see the same references as in an uninterrupted run, so the
output is the same, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import struct
from collections import Counter
from dataclasses import dataclass, field

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.pvalue import TaggedOutput

from thresher.pipeline.graph.counting import COUNTS, REJECTED
from thresher.pipeline.graph.rundir import atomic_write, clear, list_files
from thresher.pipeline.graph.spill import pack, unpack
from thresher.pipeline.layout import RESUME, TMP_PREFIX
from thresher.pipeline.progress import ProgressWriter
from thresher.transforms.ingest import plan_splits, splittable

RANGES = "ranges"
PARKED_FOLDER = "parked"
SUFFIX = ".range"
_LENGTH = struct.Struct("<Q")


def first_corpus_stage(stages) -> int | None:
    """The position of the first corpus stage (where documents park), or None."""
    return next((i for i, s in enumerate(stages) if s.corpus is not None), None)


def supported(cfg, stages) -> bool:
    """Checkpoints need the local runner with spill files (a distributed runner's retried bundles
    and its own shuffle of the documents are not covered), a corpus stage where documents park,
    and no extra writer before it (the markers travel only through document stages and `Park`)."""
    from thresher.pipeline.config import LOCAL_RUNNERS

    first = first_corpus_stage(stages)
    return (cfg.runner.spill_files() and cfg.runner.name in LOCAL_RUNNERS and first is not None
            and all(s.writes is None for s in stages[:first]))


def config_digest(cfg, stages) -> str:
    """Everything that decides a range's documents as they reach park."""
    from thresher.pipeline import __version__

    first = first_corpus_stage(stages)
    first = len(stages) if first is None else first
    sections = cfg.stages.to_dict()
    w = cfg.write
    decided = {
        "version": __version__,
        "document_stages": [[s.name, sections[s.name]] for s in stages[:first]],
        "prepares": [[s.name, sections[s.name]] for s in stages[first:] if s.prepare is not None],
        "rejected": [w.rejected_sample, w.seed, w.rejected_text_chars],
    }
    return hashlib.sha256(json.dumps(decided, sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_identity(path: str) -> str:
    """Path, size and modification time: a file replaced in place is a new file."""
    meta = FileSystems.match([path])[0].metadata_list[0]
    return f"{path}\x00{meta.size_in_bytes}\x00{getattr(meta, 'last_updated_in_seconds', 0)}"


def range_key(identity: str, kind: str, start: int, end: int) -> str:
    """A range's checkpoint name: ``bytes`` ranges of a file read in ranges, ``records`` (ordinals)
    of a file read whole."""
    return hashlib.sha256(f"{identity}\x00{kind}\x00{start}\x00{end}".encode()).hexdigest()[:32]


class ResumeFolder:
    """``STAGING/resume/DIGEST/``: ``ranges/KEY.range`` checkpoints, ``parked/`` their documents."""

    def __init__(self, staging: str, digest: str):
        self.root = f"{staging}/{RESUME}"
        self.folder = f"{self.root}/{digest}"
        self.ranges = f"{self.folder}/{RANGES}"
        self.parked = f"{self.folder}/{PARKED_FOLDER}"

    def path(self, key: str) -> str:
        return f"{self.ranges}/{key}{SUFFIX}"


def write_checkpoint(path: str, header: dict, refs: list, rejected: list) -> None:
    """Header, references, rejected rows: three segments, each after its length, written under a
    temporary name and renamed (a killed writer leaves no checkpoint)."""
    blobs = [pack(pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL)) for part in (header, refs, rejected)]
    atomic_write(path, b"".join(_LENGTH.pack(len(b)) + b for b in blobs))


def read_checkpoint(path: str, header_only: bool = False):
    """(header, references, rejected rows) of a checkpoint, or its header alone."""
    parts = []
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        for _ in range(1 if header_only else 3):
            (length,) = _LENGTH.unpack(fh.read(_LENGTH.size))
            blob = fh.read(length)
            if len(blob) != length:
                raise IOError(f"{path}: truncated checkpoint")
            parts.append(pickle.loads(unpack(blob)))
    return parts[0] if header_only else parts


@dataclass(frozen=True)
class ResumePlan:
    """What the driver found before the job: every input file's identity, the finished ranges'
    checkpoints, and what not to read again."""

    folder: ResumeFolder
    identities: dict  # path -> file_identity
    reused: tuple = ()  # (checkpoint path, bytes it stands for on the progress line)
    skip: frozenset = frozenset()  # (path, start, end) splits not to read: finished byte ranges, files read whole done
    records: dict = field(default_factory=dict)  # path -> ((start, end, last), ...) finished chunks of a file read whole
    reused_bytes: int = 0


def _header(path: str):
    try:
        return read_checkpoint(path, header_only=True)
    except Exception:  # noqa: BLE001 - half-written or unreadable: its range is read again
        return None


def plan(staging: str, digest: str, files: list, split_bytes: int) -> ResumePlan:
    """Finds the reusable checkpoints of a crashed run of this config (same files, their parked
    documents all still there) and removes everything else under ``resume/``: other configs'
    checkpoints, half-written ones, parked files no checkpoint names."""
    folder = ResumeFolder(staging, digest)
    clear(folder.root, keep=digest)
    identities = {f.path: file_identity(f.path) for f in files}
    by_identity = {identities[f.path]: f for f in files}
    splits = {(f.path, a, b) for f in files if splittable(f.path) for a, b in plan_splits(f.path, f.size, split_bytes)}
    parked = set(list_files(folder.parked))
    # reused: checkpoint -> the input bytes it stands for on the progress line
    named, reused, skip, nbytes, chunks, stale = set(), {}, set(), 0, {}, []
    for path in list_files(folder.ranges):
        name = os.path.basename(path)
        header = _header(path) if name.endswith(SUFFIX) and not name.startswith(TMP_PREFIX) else None
        f = by_identity.get(header["identity"]) if header else None
        if f is None or not set(header["spill_files"]) <= parked:
            stale.append(path)
        elif header["kind"] == "bytes":
            if (f.path, header["start"], header["end"]) not in splits:
                stale.append(path)
                continue
            reused[path] = header["end"] - header["start"]
            skip.add((f.path, header["start"], header["end"]))
            nbytes += header["end"] - header["start"]
            named.update(header["spill_files"])
        else:
            chunks.setdefault(f.path, []).append((header["start"], header["end"], header["last"], path, header))
    records = {}
    for fpath, found in sorted(chunks.items()):
        kept, whole, end, first = [], True, 0, None
        for a, b, last, path, header in sorted(found):
            if kept and a < kept[-1][1]:  # overlaps a chunk kept already (a retried bundle's)
                stale.append(path)
                continue
            kept.append((a, b, last))
            named.update(header["spill_files"])
            whole, end = whole and a == end, b
            first = path if a == 0 else first
            reused[path] = 0
        records[fpath] = tuple(kept)
        size = by_identity[identities[fpath]].size
        if whole and kept[-1][2]:  # every record of the file: it is not read at all
            skip.add((fpath, 0, max(size, 1)))
            nbytes += size
            reused[first] = size  # the progress line counts the file once
    if stale:
        FileSystems.delete(stale)
    unnamed = sorted(parked - named)
    if unnamed:
        FileSystems.delete(unnamed)
    return ResumePlan(folder, identities, tuple(sorted(reused.items())), frozenset(skip), records, nbytes)


class ReuseRanges(beam.DoFn):
    """A finished range's checkpoint -> its parked references (main), rejected rows and counts, as
    `Park` and the stages before it gave them when the range was read."""

    def __init__(self, progress_dir: str | None = None):
        self.progress_dir = progress_dir

    def setup(self):
        self.progress = ProgressWriter.shared(self.progress_dir)

    def process(self, reused: tuple):
        path, progress_bytes = reused
        header, refs, rejected = read_checkpoint(path)
        counts = Counter(header["counts"])
        counts[(RESUME, "ranges")] += 1
        counts[(RESUME, "documents")] += len(refs)
        self.progress.add("read_bytes", progress_bytes)
        for key, n in header["counts"].items():
            if key[1] == "in":
                self.progress.add(f"stage:{key[0]}", n)
        yield TaggedOutput(COUNTS, dict(counts))
        for row in rejected:
            yield TaggedOutput(REJECTED, row)
        yield from refs

    def finish_bundle(self):
        self.progress.flush()


class ReuseCheckpoints(beam.PTransform):
    """The reused ranges' references, counts and rejected rows (three PCollections)."""

    def __init__(self, paths: tuple, progress_dir: str | None):
        super().__init__()
        self.paths, self.progress_dir = paths, progress_dir

    def expand(self, pbegin):
        out = (pbegin
               | "Checkpoints" >> beam.Create(sorted(self.paths))
               | "Spread" >> beam.Reshuffle()
               | "Reuse" >> beam.ParDo(ReuseRanges(self.progress_dir)).with_outputs(COUNTS, REJECTED, main="refs"))
        return out.refs, out[COUNTS], out[REJECTED]
