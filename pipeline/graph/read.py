"""Reading the inputs: files are planned into splits, spread over the workers and read record by
record; documents of files that one worker must read whole travel in spilled chunks and are spread
over the workers again before the expensive stages."""

from __future__ import annotations

import io
import time

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.pvalue import TaggedOutput

from thresher.pipeline.graph.counting import (COUNTS, REJECTED, CountingDoFn, RangeEnd, RangeTracker, StageResult,
                                              in_global_window)
from thresher.pipeline.graph.resume import ResumePlan, range_key
from thresher.pipeline.graph.spill import SpillBuffer, read_segments
from thresher.transforms.document import make_id
from thresher.transforms.ingest import Rejection, WarcOptions, plan_splits, read_records, splittable


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


REJECTED_PER_CHUNK = 2000  # a resumable run's chunk of a file read whole ends after so many rejected rows


class ReadRecords(CountingDoFn):
    """A file split ``(path, start, end, size)`` in; its documents out, one at a time.

    A file is streamed, never held whole. Documents of splittable files (gzip WARC, read in
    byte ranges by many workers) go to the main output; those of files read whole by one worker
    are spilled in chunks whose references go to ``SPREAD``, to be redistributed before the
    expensive stages.
    """

    STAGE = "ingest"
    SPREAD = "spread"

    def __init__(self, warc: WarcOptions, spill_folder: str | None, spread_bytes: int = 4_000_000,
                 resume: ResumePlan | None = None, release: bool = False, **kw):
        super().__init__(track_ranges=resume is not None, **kw)
        self.warc = warc
        self.spill_folder = spill_folder
        self.spread_bytes = spread_bytes  # records of a file read whole travel in spilled chunks of this size
        self.resume = resume  # a resumable run: each range read in ranges ends with a RangeEnd marker
        self.release = release  # the local runner reads each chunk once: its file goes once read (spill.py)

    def start_bundle(self):
        super().start_bundle()
        # without a spill folder the documents themselves are spread (the runner's shuffle carries them)
        self._spread = SpillBuffer(self.spill_folder, self.spread_bytes, self.release) if self.spill_folder else None

    def process(self, split):
        path, source, start, end, size = split
        identity = self.resume.identities.get(path) if self.resume is not None else None
        self._chunks = None
        if identity is None:
            self._range = None
            yield from self._read(*split)
            return
        self._range = RangeTracker()  # this range's counts and rejected rows, for its checkpoint
        if not splittable(path):  # read whole: each spilled chunk of records is a range of its own
            self._chunks = _Chunks(identity, self.resume.records.get(path, ()))
            yield from self._read(*split)
            return
        for item in self._read(*split):
            if not isinstance(item, TaggedOutput):
                self._range.docs_out += 1
            yield item
        yield self.end_range(RangeEnd(range_key(identity, "bytes", start, end), identity, "bytes", start, end, 0),
                             counts_in=False)

    def _spill(self, item: dict, ordinal: int = 0):
        if self._spread is None:
            yield TaggedOutput(self.SPREAD, item)
            return
        self._spread.add(0, item)
        if self._chunks is not None:
            self._range.docs_out += 1
            if self._spread.full:
                yield from self._end_chunk(ordinal + 1)
        elif self._spread.full:
            for _, ref in self._spread.flush():
                yield TaggedOutput(self.SPREAD, ref)

    def _end_chunk(self, end: int, last: bool = False):
        """The open chunk of a file read whole ends before record `end`: its records' spill file (if
        it kept any) and its marker go to ``SPREAD`` together."""
        c = self._chunks
        start = end if c.start is None else c.start
        refs = [ref for _, ref in self._spread.flush()]
        marker = self.end_range(RangeEnd(range_key(c.identity, "records", start, end), c.identity, "records",
                                         start, end, 0, last), counts_in=False)
        c.start = None
        yield TaggedOutput(self.SPREAD, (refs[0] if refs else None, marker))

    def finish_bundle(self):
        for _, ref in (self._spread.flush() if self._spread is not None else ()):
            yield in_global_window(TaggedOutput(self.SPREAD, ref))
        yield from super().finish_bundle()

    def _read(self, path: str, source: str, start: int, end: int, size: int):
        chunks = self._chunks  # a resumable run's file read whole: records counted by ordinal, in chunks
        if start == 0 and not (chunks is not None and chunks.reused(0)):  # else its reused first chunk counts it
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

        ordinal = -1
        with _CountingReader(raw, on_read) as fh:
            items = read_records(fh, path, source, self.warc, (start, end))
            while True:
                t0 = time.perf_counter()
                try:
                    item = next(items)
                except StopIteration:
                    break
                except Exception as e:  # a reader bug must cost this split's rest, not the job
                    item = e
                ordinal += 1
                if chunks is not None:
                    if chunks.reused(ordinal):  # a crashed run finished it: the chunk open so far ends here
                        if chunks.start is not None:
                            yield from self._end_chunk(ordinal)
                        if isinstance(item, Exception):
                            break
                        continue
                    chunks.open(ordinal)
                self.count((self.STAGE, "in"))
                if isinstance(item, Exception):
                    doc = {"id": make_id(source, f"reader_error@{start}"), "url": None, "source": source, "offset": start}
                    yield from self.reject(doc, self.STAGE, "reader_error", f"{type(item).__name__}: {item}", True)
                    break
                busy += time.perf_counter() - t0
                self.progress.add("read_records")
                if isinstance(item, Rejection):
                    yield from self.reject(item.doc, self.STAGE, item.reason, item.detail, item.errored)
                    if chunks is not None and len(self._range.rejected) >= REJECTED_PER_CHUNK:
                        yield from self._end_chunk(ordinal + 1)  # a chunk's rejected rows are held until it ends
                else:
                    if tag is None:
                        yield item
                    else:
                        yield from self._spill(item, ordinal)
        self.count((self.STAGE, "seconds"), busy)
        if chunks is not None and (chunks.start is not None or not chunks.reused_to_end):
            yield from self._end_chunk(ordinal + 1, last=True)


class _Chunks:
    """A resumable run's file read whole: the chunk open now (its first record's ordinal) and the
    ordinals ``[start, end)`` whose chunks a crashed run finished."""

    def __init__(self, identity: str, reused: tuple):
        self.identity = identity
        self.intervals = reused  # ((start, end, last), ...) sorted
        self.reused_to_end = any(last for _, _, last in reused)
        self.start = None
        self._next = 0

    def reused(self, ordinal: int) -> bool:
        """Asked with ordinals in increasing order: one pointer walks the intervals."""
        while self._next < len(self.intervals) and self.intervals[self._next][1] <= ordinal:
            self._next += 1
        return self._next < len(self.intervals) and self.intervals[self._next][0] <= ordinal

    def open(self, ordinal: int) -> None:
        if self.start is None:
            self.start = ordinal


class ReadSpilled(beam.DoFn):
    """A spill reference -> its rows (records of a file read whole, spread over the workers); a
    document spread as itself (spill files off) passes through. On the local runner, which reads
    each once, the chunk's file goes once read (``SpillRef.own_file``)."""

    def process(self, ref):
        if isinstance(ref, dict):
            yield ref
            return
        marker = None
        if isinstance(ref, tuple) and isinstance(ref[-1], RangeEnd):  # a resumable run's chunk, then its end
            ref, marker = ref
        if ref is not None:
            for segment in read_segments([ref]):
                yield from segment
        if marker is not None:
            yield marker


class ReadInputs(beam.PTransform):
    """(path, source, size) of each input -> document branches ``{"read": ..., "spread": ...}``, plus counts and
    rejected rows. Gzip WARC is read in byte ranges by all workers; a file that must be read whole by
    one worker has its records spilled in chunks, and the chunks spread over all workers."""

    def __init__(self, files: list, warc: WarcOptions, split_bytes: int, spill: str | None, common: dict,
                 delete_spilled: bool = False, resume: ResumePlan | None = None):
        super().__init__()
        self.files, self.warc, self.split_bytes, self.spill, self.common = files, warc, split_bytes, spill, common
        self.delete_spilled = delete_spilled
        self.resume = resume  # a resumable run: its finished ranges are not read again

    def expand(self, pbegin):
        split_bytes = self.split_bytes
        skip = self.resume.skip if self.resume is not None else frozenset()
        read = (
            pbegin
            | "InputFiles" >> beam.Create(self.files)
            | "PlanSplits" >> beam.FlatMap(lambda f: [(f[0], f[1], a, b, f[2]) for a, b in plan_splits(f[0], f[2], split_bytes)
                                                      if (f[0], a, b) not in skip])
            | "SpreadSplits" >> beam.Reshuffle()
            | "ReadRecords" >> beam.ParDo(ReadRecords(self.warc, self.spill, split_bytes, resume=self.resume,
                                                      release=self.delete_spilled, **self.common)).with_outputs(
                COUNTS, REJECTED, ReadRecords.SPREAD, main="docs")
        )
        spread = (read[ReadRecords.SPREAD] | "SpreadRecords" >> beam.Reshuffle()
                  | "ReadSpread" >> beam.ParDo(ReadSpilled()))
        return StageResult({"read": read.docs, "spread": spread}, [read[COUNTS]], [read[REJECTED]])
