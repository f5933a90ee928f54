"""Counting: every DoFn that decides a document's fate counts what it did per bundle and emits the
counts on the ``counts`` output when the bundle ends, so the statistics travel with the data and
reach ``stats.json`` on every runner (portable runners such as Spark's report no Beam metrics)."""

from __future__ import annotations

import json
from collections import Counter
from typing import NamedTuple

import apache_beam as beam
from apache_beam.pvalue import TaggedOutput
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from thresher.pipeline.progress import ProgressWriter
from thresher.pipeline.stats import DUPLICATE_EXAMPLES
from thresher.transforms.document import DOCUMENT_SCHEMA
from thresher.transforms.hashing import seeded_fraction

COUNTS = "counts"
REJECTED = "rejected"
PARKED = "_park"  # in a parked document's reference: where the document is
FATE = "_fate"  # in a rejected reference: (stage, reason, detail, errored)

# Fields that are carried between stages but never written as signals.
_NOT_SIGNALS = set(DOCUMENT_SCHEMA.names) | {"payload", "html", "format"}


class StageResult(NamedTuple):
    """What a stage's composite returns: its documents, and the PCollections to flatten into the
    run's counts and rejected/ rows."""

    docs: object
    counts: list
    rejected: list


class RangeEnd:
    """Resumable runs (graph/resume.py): behind an input range's documents on a document branch,
    which range ended (a byte range of a file read in ranges, or ordinals ``[start, end)`` of the
    records of a file read whole, `last` when the file ends there), how many documents the stage
    before passed on, and what the stages so far counted and rejected for it."""

    __slots__ = ("key", "identity", "kind", "start", "end", "last", "expected", "counts", "rejected", "broken")

    def __init__(self, key: str, identity: str, kind: str, start: int, end: int, expected: int, last: bool = False):
        self.key, self.identity, self.kind, self.start, self.end = key, identity, kind, start, end
        self.expected, self.last = expected, last
        self.counts: Counter = Counter()
        self.rejected: list = []
        self.broken = ""  # why this range cannot be checkpointed


class RangeTracker:
    """What a counting DoFn did since the last marker: counts, rejected rows, documents in and out."""

    __slots__ = ("counts", "rejected", "docs_in", "docs_out")

    def __init__(self):
        self.counts: Counter = Counter()
        self.rejected: list = []
        self.docs_in = 0
        self.docs_out = 0

    def close(self, marker: RangeEnd, counts_in: bool = True) -> RangeEnd:
        """Adds this DoFn's share to the marker; the marker then expects this DoFn's output count."""
        if counts_in and self.docs_in != marker.expected and not marker.broken:
            marker.broken = f"{self.docs_in} documents arrived where {marker.expected} were sent"
        marker.counts.update(self.counts)
        marker.rejected.extend(self.rejected)
        marker.expected = self.docs_out
        return marker


def in_global_window(item):
    """An output of `finish_bundle` (a value or a TaggedOutput), which Beam wants windowed."""
    if isinstance(item, TaggedOutput):
        return TaggedOutput(item.tag, WindowedValue(item.value, MIN_TIMESTAMP, [GlobalWindow()]))
    return WindowedValue(item, MIN_TIMESTAMP, [GlobalWindow()])


def rejected_row(doc: dict, stage: str, reason: str, detail: str, errored: bool, text_chars: int = 0) -> dict:
    text = doc.get("text") if doc.get("text") is not None else doc.get("html")
    if text is not None and text_chars:
        text = text[:text_chars]
    # "_" fields are the corpus stages' working fields (hashes, signatures, a parked row's place)
    signals = {k: v for k, v in doc.items()
               if k not in _NOT_SIGNALS and not k.startswith("_") and not isinstance(v, bytes)}
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

    def __init__(self, rejected_sample: float = 1.0, seed: int = 0, text_chars: int = 0, progress_dir: str | None = None,
                 track_ranges: bool = False):
        self.rejected_sample = rejected_sample
        self.seed = seed
        self.text_chars = text_chars
        self.progress_dir = progress_dir
        # on the document branch of a resumable run: also count per input range (graph/resume.py)
        self.track_ranges = track_ranges

    def setup(self):
        self.progress = ProgressWriter.shared(self.progress_dir)

    def start_bundle(self):
        self._counts: Counter = Counter()
        self._range = RangeTracker() if self.track_ranges else None

    def count(self, key: tuple, n: float = 1) -> None:
        self._counts[key] += n
        if self._range is not None:
            self._range.counts[key] += n
        if key[1] == "in":  # the progress line: documents into each stage, corpus stages included
            self.progress.add(f"stage:{key[0]}", n)

    def reject(self, doc: dict, stage: str, reason: str, detail: str, errored: bool):
        """Counts the drop; yields the rejected/ row when the seeded sample keeps it."""
        self.count((stage, "errored" if errored else "dropped", reason))
        if self.rejected_sample >= 1 or seeded_fraction(str(doc.get("id")), self.seed) < self.rejected_sample:
            if PARKED in doc:  # a parked document's reference (corpus stages): `Unpark` writes the row
                yield TaggedOutput(REJECTED, {**doc, FATE: (stage, reason, detail, errored)})
            else:
                row = rejected_row(doc, stage, reason, detail, errored, self.text_chars)
                if self._range is not None:
                    self._range.rejected.append(dict(row))
                yield TaggedOutput(REJECTED, row)

    def end_range(self, marker, counts_in: bool = True):
        """A range's marker arrived (or, in the reader, a range ended): this DoFn's share goes into
        it and counting starts afresh for the next range."""
        tracker, self._range = self._range, RangeTracker()
        return tracker.close(marker, counts_in)

    def finish_bundle(self):
        self.progress.flush()
        if self._counts:
            yield in_global_window(TaggedOutput(COUNTS, dict(self._counts)))


class CountDuplicateIds(CountingDoFn):
    """(id, [1 per kept document with it]) -> counts of the ids kept more than once: how many ids,
    how many documents, and the first ids of each bundle by name."""

    def process(self, element):
        doc_id, ones = element
        n = sum(ones)
        if n > 1:
            self.count(("output", "duplicate_ids"))
            self.count(("output", "duplicate_id_documents"), n)
            self._named += 1
            if self._named <= DUPLICATE_EXAMPLES:
                self.count(("output", "duplicate_id", str(doc_id)), n)

    def start_bundle(self):
        super().start_bundle()
        self._named = 0


def counted(pcoll, label: str, dofn: beam.DoFn, main: str = "docs") -> StageResult:
    """``pcoll | ParDo(dofn)`` with its counts and rejected rows split off: the one way every
    counting DoFn is applied."""
    out = pcoll | label >> beam.ParDo(dofn).with_outputs(COUNTS, REJECTED, main=main)
    return StageResult(out[main], [out[COUNTS]], [out[REJECTED]])


def flatten(label: str, pcolls: list):
    """One PCollection of several (no Flatten for one)."""
    return pcolls[0] if len(pcolls) == 1 else pcolls | label >> beam.Flatten()


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
