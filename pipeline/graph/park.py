"""Parking: before the corpus stages (dedup) documents go to spill files and only small references
travel through their shuffles; `Unpark` brings the documents back after the last of them."""

from __future__ import annotations

import time

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.pvalue import TaggedOutput

from thresher.pipeline.graph.counting import (COUNTS, FATE, PARKED, REJECTED, CountingDoFn, RangeEnd, flatten,
                                              in_global_window, rejected_row)
from thresher.pipeline.graph.resume import RESUME, write_checkpoint
from thresher.pipeline.graph.grouping import FlattenOnDisk, GroupOnDisk, OnDisk
from thresher.pipeline.graph.heap import give_back_memory
from thresher.pipeline.graph.spill import MAX_BYTES, SpillBuffer, read_rows


# Fields a parked document's reference keeps: what the corpus stages decide on (and row_order's).
REFERENCE_FIELDS = ("id", "url", "date", "source", "offset")


class Park(CountingDoFn):
    """Documents -> small references, before the corpus stages (dedup).

    The documents go to spill files; the corpus stages shuffle only the references: the fields
    they decide on plus what each stage's `prepare` computed from the whole document while it was
    at hand (a text hash, a MinHash signature). `Unpark` brings the documents back afterwards.
    A `prepare` that raises drops only its document, as an error of the first corpus stage.

    With ``folder=None`` (spill files off: a distributed runner's shuffle carries the documents)
    the reference is the whole document with the prepared fields added.
    """

    def __init__(self, folder: str | None, prepares: list, max_bytes: int = MAX_BYTES, checkpoints=None, **kw):
        super().__init__(track_ranges=checkpoints is not None, **kw)
        self.folder = folder
        self.prepares = prepares  # [(stage name, params -> (doc -> dict of reference fields), params)]
        self.max_bytes = max_bytes
        # a resumable run's document branch: graph/resume.py's ResumeFolder, where each finished
        # range's references, rejected rows and counts go (`folder` is then its parked/)
        self.checkpoints = checkpoints

    def setup(self):
        super().setup()
        self.fns = [(stage, make(params)) for stage, make, params in self.prepares]

    def start_bundle(self):
        super().start_bundle()
        self._buffer = SpillBuffer(self.folder, self.max_bytes) if self.folder else None
        self._refs: list[dict] = []
        self._range_refs: list[dict] = []

    def process(self, doc: dict):
        if isinstance(doc, RangeEnd):
            yield from self._end_range(doc)
            return
        if self._range is not None:
            self._range.docs_in += 1
        ref = {k: doc[k] for k in REFERENCE_FIELDS if k in doc} if self._buffer is not None else dict(doc)
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
        if self._buffer is None:
            yield ref
            return
        ref["_row"] = len(self._refs)
        self._refs.append(ref)
        self._buffer.add(0, doc)
        if self._buffer.full:
            yield from self._flush()

    def _flush(self):
        if self._buffer is None:
            return
        for _, spill_ref in self._buffer.flush():
            for ref in self._refs:
                ref[PARKED] = spill_ref
                if self._range is not None:
                    self._range_refs.append(dict(ref))
                yield ref
        self._refs = []

    def _end_range(self, marker: RangeEnd):
        """The range's documents go to spill files of their own, then its checkpoint is written: the
        references, rejected rows and counts a rerun uses instead of reading the range again."""
        yield from self._flush()
        refs, self._range_refs = self._range_refs, []
        self._range.docs_out = len(refs)
        marker = self.end_range(marker)
        if marker.broken:
            self.count((RESUME, "ranges_not_saved"))  # a runner that did not keep the range together
            return
        header = {"key": marker.key, "identity": marker.identity, "kind": marker.kind, "start": marker.start,
                  "end": marker.end, "last": marker.last, "documents": len(refs), "counts": dict(marker.counts),
                  "spill_files": sorted({r[PARKED].path for r in refs})}
        write_checkpoint(self.checkpoints.path(marker.key), header, refs, marker.rejected)

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

    def __init__(self, text_chars: int = 0, delete: bool = False):
        self.text_chars = text_chars
        self.delete = delete  # the parked file goes once its documents are out (PipelineContext.read_once)

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
        if self.delete:
            FileSystems.delete([refs[0][PARKED].path])
        give_back_memory()


class ParkDocuments(beam.PTransform):
    """Each branch's documents ({name: PCollection}) to spill files; their references, as one
    PCollection (+ counts, rejected). Without a folder, the documents themselves travel.

    A resumable run (`resume`, graph/resume.py's ResumePlan) parks under its resume folder, a
    checkpoint per input range, and adds the references of the ranges a crashed run finished
    (`reused`)."""

    def __init__(self, prepares: list, folder: str | None, common: dict, groups: OnDisk | None = None,
                 resume=None, reused=None):
        super().__init__()
        self.prepares, self.folder, self.common, self.groups = prepares, folder, common, groups
        self.resume, self.reused = resume, reused

    def expand(self, branches):
        refs, counts, rejected = [], [], []
        if self.reused is not None:
            refs.append(self.reused)
        for branch, pcoll in branches.items():
            ranges = self.resume.folder if self.resume is not None else None
            park = Park(ranges.parked if ranges else self.folder, self.prepares, checkpoints=ranges, **self.common)
            out = pcoll | f"Park/{branch}" >> beam.ParDo(park).with_outputs(COUNTS, REJECTED, main="refs")
            counts.append(out[COUNTS])
            rejected.append(out[REJECTED])
            refs.append(out.refs)
        return tuple(refs) | "AllParked" >> FlattenOnDisk(self.groups), counts, rejected


class UnparkDocuments(beam.PTransform):
    """The kept references, and the rejected ones of the corpus stages -> documents and rejected rows.

    ``parked=False``: the references were the documents (spill files off) and the corpus stages
    wrote their rejected rows themselves; the documents only lose the stages' working fields."""

    def __init__(self, text_chars: int, parked: bool = True, groups: OnDisk | None = None):
        super().__init__()
        self.text_chars = text_chars
        self.parked = parked
        self.groups = groups  # grouping.OnDisk, or None

    def expand(self, references):
        if not self.parked:
            kept, *rejected = references
            docs = kept | "DropWorkingFields" >> beam.Map(lambda d: {k: v for k, v in d.items() if not k.startswith("_")})
            return docs, flatten("CorpusRejected", rejected)
        keyed = tuple(refs | f"BySpillFile{i or ''}" >> beam.Map(lambda ref: (ref[PARKED].path, ref))
                      for i, refs in enumerate(references))
        out = (
            keyed
            | "GroupSpillFile" >> GroupOnDisk(self.groups)
            | "Unpark" >> beam.ParDo(Unpark(self.text_chars, delete=self.groups is not None)).with_outputs(
                REJECTED, main="docs")
        )
        return out.docs, out[REJECTED]
