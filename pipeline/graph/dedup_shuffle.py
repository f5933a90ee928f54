"""Corpus-level dedup stages in Beam: exact (one document per normalised-text hash) and MinHash
near-dedup (signatures -> LSH bands -> GroupByKey -> verified candidate edges -> connected
components computed in parallel -> one representative per component).

No step gathers all edges or all documents on one worker: every grouping is by a key (a hash, a
band bucket, a node, a component), so a worker holds at most one bucket, one node's neighbours
or one component at a time. The stages see documents' references, not the documents (see
`thresher.pipeline.graph.park`): what they need from a text is computed before, by the stages' `prepare`
functions in `thresher.transforms.dedup`, where the stages are declared.
"""

from __future__ import annotations

import typing

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.pvalue import TaggedOutput

from thresher.pipeline.graph.counting import COUNTS, PARKED, REJECTED, CountingDoFn, StageResult
from thresher.pipeline.graph.grouping import CoGroupOnDisk, DistinctOnDisk, GroupOnDisk, OnDisk
from thresher.pipeline.graph.heap import give_back_memory
from thresher.pipeline.graph.spill import read_rows
from thresher.pipeline.graph.write_documents import WriteShards
from thresher.transforms.dedup import (BAND_KEYS, DUP_COUNT, EARLIER_COPIES, EXACT_INDEX, EXACT_KEY, MINHASH_INDEX,
                                       SHINGLES, SIGNATURE, TEXT_LENGTH, bucket_pairs, exact_jaccard, fingerprints_of,
                                       shingle_hashes)
from thresher.transforms.hashing import row_order

CLUSTERS_SCHEMA = pa.schema([("id", pa.string()), ("cluster_id", pa.string())])
EXACT_INDEX_SCHEMA = pa.schema([("key", pa.binary(16)), ("id", pa.string())])
INDEX_ROWS_PER_SHARD = 16  # document shards per index shard: an index row is ~1/50 of a document
MINHASH_INDEX_SCHEMA = pa.schema([("id", pa.string()), ("bands", pa.binary()), ("signature", pa.binary()),
                                  ("shingles", pa.binary())])
EARLIER_COPIES_SCHEMA = pa.schema([("run", pa.string()), ("id", pa.string()), ("copies", pa.int64())])
COPIES = "earlier_copies"  # the tagged output: (earlier run, earlier id, documents of this run it stands for)
# An earlier run's document in this run's MinHash graph: "\x00", the run's number in `against`, "\x00",
# its id. The prefix sorts it before every id of this run, so it represents its buckets and clusters.
EARLIER = "\x00"


def small_table_shards(ctx) -> int:
    """Files for a table of small rows, one per document at most (the exact index, earlier copies)."""
    return max(1, -(-ctx.document_shards // INDEX_ROWS_PER_SHARD))


def earlier_node(run: int, doc_id: str) -> str:
    return f"{EARLIER}{run:04d}{EARLIER}{doc_id}"


def is_earlier(node: str) -> bool:
    return node.startswith(EARLIER)


def split_earlier(node: str) -> tuple[int, str]:
    return int(node[1:5]), node[6:]


class KeepOnePerKey(CountingDoFn):
    """(key, documents sharing it) -> the one kept (lowest id, or newest capture for URLs)."""

    def __init__(self, stage: str, reason: str, newest: bool = False, count_in: bool = True, **kw):
        super().__init__(**kw)
        self.stage = stage
        self.reason = reason
        self.newest = newest
        self.count_in = count_in

    def process(self, element):
        _, docs = element
        docs = list(docs)
        if self.count_in:
            self.count((self.stage, "in"), len(docs))
        if self.newest:
            docs.sort(key=lambda d: (d.get("date") or "", _neg(str(d["id"]))), reverse=True)
        else:
            docs.sort(key=row_order)
        keep, rest = docs[0], docs[1:]
        # the documents the kept one stands for, itself included (rehydration weights by cluster size)
        yield {**keep, DUP_COUNT: sum(d.get(DUP_COUNT, 1) for d in docs)}
        for d in rest:
            yield from self.reject(d, self.stage, self.reason, f"duplicate of {keep['id']}", False)


class OnePerTextUnlessEarlier(KeepOnePerKey):
    """(key, {this run's documents, (run number, id) of earlier runs' kept documents with the key})
    -> as `KeepOnePerKey`, unless an earlier run kept this text: then every document is dropped as
    `earlier_duplicate`, naming the earlier one (of the first run listed, the lowest id). A key
    only earlier runs hold gives nothing."""

    def __init__(self, stage: str, reason: str, runs: list[str], **kw):
        super().__init__(stage, reason, **kw)
        self.runs = runs  # the `against` runs' folders, by number

    def process(self, element):
        key, grouped = element
        docs = list(grouped["doc"])
        if not docs:
            return
        earlier = min(grouped["earlier"], default=None)
        if earlier is None:
            yield from super().process((key, docs))
            return
        if self.count_in:
            self.count((self.stage, "in"), len(docs))
        run, earlier_id = earlier
        for d in docs:
            yield from self.reject(d, self.stage, "earlier_duplicate", f"duplicate of {earlier_id} in {self.runs[run]}",
                                   False)
        yield TaggedOutput(COPIES, (self.runs[run], earlier_id, sum(d.get(DUP_COUNT, 1) for d in docs)))


def read_index(run_and_file: tuple, columns: list[str]):
    """(run number, an earlier run's index file) -> (run number, *the row's `columns`) for each row."""
    import pyarrow.parquet as pq
    from apache_beam.io.filesystems import FileSystems

    run, path = run_and_file
    with FileSystems.open(path) as fh:
        for batch in pq.ParquetFile(fh).iter_batches(batch_size=8192, columns=columns):
            for row in zip(*(c.to_pylist() for c in batch.columns)):
                yield (run, *row)


class WriteEarlierCopies(beam.PTransform):
    """(earlier run, earlier id, documents of this run) -> ``dedup/earlier_copies/STAGE/``: per
    earlier document, how many documents of this run it stands for (what a dup_count across runs
    adds, pipeline/tools/rehydration.py)."""

    def __init__(self, stage: str, ctx):
        super().__init__()
        w = ctx.config.write
        self.groups = ctx.groups(f"{stage}_copies")
        self.write = WriteShards("earlier_copies", f"{ctx.staging}/{EARLIER_COPIES}/{stage}", EARLIER_COPIES_SCHEMA,
                                 small_table_shards(ctx), w.seed, w.compression, None, ctx.spill(f"{stage}_copies"),
                                 release=ctx.read_once)

    def expand(self, copies):
        return (copies
                | "ByEarlierDocument" >> beam.Map(lambda c: ((c[0], c[1]), c[2]))
                | "GroupCopies" >> GroupOnDisk(self.groups)
                # `source` (not written) orders rows of one id from two runs the same way every time
                | "Sum" >> beam.MapTuple(lambda k, n: {"run": k[0], "id": k[1], "copies": sum(n), "source": k[0]})
                | "Write" >> self.write)


class ReadEarlierIndexes(beam.PTransform):
    """The rows of the `against` runs' index files (transforms.dedup.EarlierIndex each), tagged
    with the run's number in `against`."""

    def __init__(self, earlier: tuple, columns: list[str]):
        super().__init__()
        self.earlier, self.columns = earlier, columns

    def expand(self, pbegin):
        return (pbegin
                | "Files" >> beam.Create([(i, f) for i, e in enumerate(self.earlier) for f in e.files])
                | "Rows" >> beam.FlatMap(read_index, self.columns))


def index_row(doc: dict) -> dict:
    return {"key": bytes.fromhex(doc[EXACT_KEY]), "id": str(doc["id"])}


def _neg(s: str) -> tuple:
    """A key that sorts strings in reverse (ties on date: the lowest id wins under reverse=True)."""
    return tuple(-ord(c) for c in s)


class CountKept(CountingDoFn):
    def __init__(self, stage: str, **kw):
        super().__init__(**kw)
        self.stage = stage

    def process(self, doc):
        self.count((self.stage, "kept"))
        yield doc


class ExactDedup(beam.PTransform):
    """The ``dedup_exact`` stage over parked references."""

    def __init__(self, stage: str, params, ctx):
        super().__init__()
        self.stage = stage
        self.c = params
        self.common = ctx.common
        self.groups = ctx.groups(stage)
        self.earlier = ctx.resource(stage) or ()  # transforms.dedup.EarlierIndex of each `against` run
        self.write_copies = WriteEarlierCopies(stage, ctx) if self.earlier else None
        w = ctx.config.write
        self.write_index = WriteShards("index_exact", f"{ctx.staging}/{EXACT_INDEX}", EXACT_INDEX_SCHEMA,
                                       small_table_shards(ctx), w.seed, w.compression, None, ctx.spill("index_exact"),
                                       release=ctx.read_once)

    def expand(self, docs):
        c, stage = self.c, self.stage
        counts, rejected = [], []
        count_in = True
        if c.by_url:
            with_url = docs | "UrlKey" >> beam.Map(lambda d: (d.get("url") or f"\x00{d['id']}", d))
            out = (with_url | "GroupUrl" >> GroupOnDisk(self.groups)
                   | "NewestPerUrl" >> beam.ParDo(KeepOnePerKey(stage, "url_duplicate", newest=True,
                                                                **self.common)).with_outputs(COUNTS, REJECTED, main="docs"))
            docs, count_in = out.docs, False
            counts.append(out[COUNTS])
            rejected.append(out[REJECTED])
        keyed = docs | "TextKey" >> beam.Map(lambda d: (d[EXACT_KEY], d))
        if self.earlier:  # the texts earlier runs kept join this run's in the same grouping
            index = (docs.pipeline
                     | "ReadEarlierIndex" >> ReadEarlierIndexes(self.earlier, ["key", "id"])
                     | "EarlierKeys" >> beam.Map(lambda r: (r[1].hex(), (r[0], r[2]))))  # key as this run's: hex
            out = ({"doc": keyed, "earlier": index}
                   | "GroupText" >> CoGroupOnDisk(self.groups)
                   | "OnePerText" >> beam.ParDo(OnePerTextUnlessEarlier(stage, "exact_duplicate",
                                                                         [e.run for e in self.earlier],
                                                                         count_in=count_in, **self.common))
                                     .with_outputs(COUNTS, REJECTED, COPIES, main="docs"))
            counts.append(out[COPIES] | "EarlierCopies" >> self.write_copies)
        else:
            out = (keyed
                   | "GroupText" >> GroupOnDisk(self.groups)
                   | "OnePerText" >> beam.ParDo(KeepOnePerKey(stage, "exact_duplicate", count_in=count_in,
                                                              **self.common)).with_outputs(COUNTS, REJECTED, main="docs"))
        counts.append(out[COUNTS])
        rejected.append(out[REJECTED])
        kept = out.docs | "CountKept" >> beam.ParDo(CountKept(stage, **self.common)).with_outputs(COUNTS, main="docs")
        counts.append(kept[COUNTS])
        counts.append(kept.docs | "IndexRows" >> beam.Map(index_row) | "WriteIndex" >> self.write_index)
        return StageResult(kept.docs, counts, rejected)


# ---- connected components: alternating large-star / small-star (Kiveris et al., 2014) ----

class _Star(CountingDoFn):
    """One reducer of large-star or small-star; counts the edges it rewires (0 in a round: converged)."""

    def __init__(self, kind: str, stage: str, round_no: int):
        super().__init__()
        self.kind = kind
        self.stage = stage
        self.round_no = round_no

    def process(self, element):
        v, neigh = element
        neigh = set(neigh)
        neigh.discard(v)
        if not neigh:
            return
        m = min(min(neigh), v)
        changed = 0
        if self.kind == "large":
            for u in neigh:
                if u > v:
                    yield (u, m)
                    changed += m != v
        else:  # small: neigh are the neighbours <= v (keyed by the larger endpoint)
            for u in neigh | {v}:
                if u != m:
                    yield (u, m)
            changed = len(neigh) - 1
        if changed:
            self.count((self.stage, "cc_changes", f"{self.round_no:03d}"), changed)


class ConnectedComponents(beam.PTransform):
    """Undirected edges (a, b) -> (node, smallest node of its component), in a fixed number of rounds.

    Beam graphs are static, so the rounds are unrolled; each round counts the edges it changed,
    and a round with no change proves convergence (`stats.json` reports the rounds used; a run
    whose last round still changed edges fails instead of writing a wrong clustering).
    """

    def __init__(self, rounds: int, stage: str, groups: OnDisk | None = None):
        super().__init__()
        self.rounds = rounds
        self.stage = stage
        self.groups = groups  # grouping.OnDisk, or None

    def expand(self, edges):
        counts = []
        e = edges | "NoSelfLoops" >> beam.Filter(lambda ab: ab[0] != ab[1])
        for r in range(1, self.rounds + 1):
            large = (
                e
                | f"Large{r}/BothWays" >> beam.FlatMap(lambda ab: [(ab[0], ab[1]), (ab[1], ab[0])])
                | f"Large{r}/Group" >> GroupOnDisk(self.groups)
                | f"Large{r}/Star" >> beam.ParDo(_Star("large", self.stage, r)).with_outputs(COUNTS, main="edges")
            )
            small = (
                large.edges
                | f"Small{r}/ByLarger" >> beam.Map(lambda ab: (max(ab), min(ab)))
                | f"Small{r}/Group" >> GroupOnDisk(self.groups)
                | f"Small{r}/Star" >> beam.ParDo(_Star("small", self.stage, r)).with_outputs(COUNTS, main="edges")
            )
            counts += [large[COUNTS], small[COUNTS]]
            e = small.edges
        labels = (
            e
            | "Labels" >> beam.FlatMap(lambda um: [(um[0], um[1]), (um[1], um[1])])
            | "GroupLabels" >> GroupOnDisk(self.groups)
            | "MinLabel" >> beam.MapTuple(lambda node, ms: (node, min(ms)))
        )
        return labels, counts


class Signatures(CountingDoFn):
    """A reference -> (id, compact signature, (text length, documents it stands for), band keys);
    all but the count computed when the document was parked (`minhash_prepare`), while its text
    was at hand; the count is dedup_exact's."""

    def __init__(self, stage: str, **kw):
        super().__init__(**kw)
        self.stage = stage

    def process(self, doc):
        self.count((self.stage, "in"))
        yield (str(doc["id"]), doc[SIGNATURE], (doc[TEXT_LENGTH], doc.get(DUP_COUNT, 1)), doc[BAND_KEYS])


BAND_KEY_BYTES = 8  # a band's key in a document's band keys (transforms/dedup.py)


def band_entries(row: tuple, group) -> list:
    """A signature row (id, signature, anything, band keys), this run's or an earlier run's ->
    ((band, the document's key in that band), (id, signature)) for each band of the group: what the
    band's GroupByKey buckets."""
    doc_id, signature, _, band_keys = row
    return [((b, band_keys[BAND_KEY_BYTES * b:BAND_KEY_BYTES * (b + 1)]), (doc_id, signature)) for b in group]


def id_and_length(row: tuple) -> tuple:
    """(id, (text length, documents it stands for))."""
    doc_id, _, length_and_count, _ = row
    return doc_id, length_and_count


MAX_BAND_SHUFFLES = 16


def band_groups(bands: int, most: int = MAX_BAND_SHUFFLES) -> list[range]:
    """The bands split into at most `most` contiguous groups of near-equal size, one shuffle each."""
    n = min(bands, most)
    cuts = [bands * i // n for i in range(n + 1)]
    return [range(a, b) for a, b in zip(cuts, cuts[1:])]


KeyValue = typing.Tuple[typing.Any, typing.Any]  # outputs mixed with TaggedOutput: Beam cannot infer them
UNSURE = "unsure"  # candidate pairs whose estimate lies within exact_margin of the threshold


def _bucket_pairs(element, threshold, margin):
    """A bucket's pairs to link; none between two earlier runs' documents (each run decided its
    own), and none in a bucket of earlier documents only."""
    _, members = element
    members = list(members)
    if all(is_earlier(i) for i, _ in members):
        return
    members = [(i, np.frombuffer(s, dtype=np.uint8)) for i, s in members]
    for a, b, decided in bucket_pairs(members, threshold, margin):
        if is_earlier(a) and is_earlier(b):
            continue
        yield (a, b) if decided else TaggedOutput(UNSURE, (a, b))


def _locator(ref: dict):
    """Where a reference's text is: its spill segment and row, or (spill files off) the text itself."""
    if PARKED in ref:
        return (ref[PARKED], ref["_row"])
    return ref.get("text") or ""


class _Destinations(beam.DoFn):
    """(id, {pairs, where}) -> where that document's shingles must go: to the exact check of each
    representative it is paired with, and to its own if it is a representative. A parked document
    is read once per spill segment (`_ReadShingles`); with spill files off its text is at hand."""

    def __init__(self, ngram: int):
        self.ngram = ngram

    def process(self, element):
        doc_id, joined = element
        dests, where = sorted(set(joined["dests"])), list(joined["where"])
        if not dests or not where:
            return
        loc = where[0]
        if isinstance(loc, str):
            yield from _routed(fingerprints(loc, self.ngram), doc_id, dests)
        elif isinstance(loc, bytes):  # an earlier run's document: its index holds the fingerprints
            yield from _routed(loc, doc_id, dests)
        else:
            ref, row = loc
            yield TaggedOutput("parked", (f"{ref.path}@{ref.offset}", (ref, row, doc_id, dests)))


def _routed(shingles: bytes, doc_id: str, dests: list):
    for dest in dests:
        tag = "rep" if dest == doc_id else "member"
        yield TaggedOutput(tag, (dest, shingles if tag == "rep" else (doc_id, shingles)))


class _ReadShingles(beam.DoFn):
    """(spill segment, [(ref, row, id, destinations)]) -> each document's shingles to its destinations."""

    def __init__(self, ngram: int):
        self.ngram = ngram

    def process(self, element):
        _, wanted = element
        wanted = list(wanted)
        rows = read_rows([wanted[0][0]])
        for _, row, doc_id, dests in wanted:
            yield from _routed(fingerprints(rows[row].get("text") or "", self.ngram), doc_id, dests)
        del rows
        give_back_memory()


def fingerprints(text: str, ngram: int) -> bytes:
    """The document's distinct shingles as 32-bit fingerprints (`transforms.dedup.fingerprints_of`)."""
    return fingerprints_of(shingle_hashes(text, ngram))


class _ExactPairs(CountingDoFn):
    """(representative, {its shingles, its unsure members' shingles}) -> (representative, member)
    for each member whose exact Jaccard with it reaches the threshold."""

    def __init__(self, stage: str, threshold: float):
        super().__init__()
        self.stage = stage
        self.threshold = threshold

    def process(self, element):
        rep_id, grouped = element
        rep = list(grouped["rep"])
        if not rep:
            return
        rep_set = np.frombuffer(rep[0], dtype=np.uint32)
        for member_id, sh in grouped["member"]:
            self.count((self.stage, "info", "exact_checks"))
            if exact_jaccard(rep_set, np.frombuffer(sh, dtype=np.uint32)) >= self.threshold:
                self.count((self.stage, "info", "exact_linked"))
                yield rep_id, member_id


class ExactCheck(beam.PTransform):
    """Candidate pairs (representative, member) too close to the threshold for the signatures to
    decide -> those whose exact shingle-set Jaccard reaches it. The documents are found by a join on
    their ids and read back from their spill segments (one read per segment); each representative's
    shingles travel once to its own check, each member's once per representative it is paired with
    (one per bucket at most). With spill files off the references carry the texts, and the join does."""

    def __init__(self, stage: str, ngram: int, threshold: float, groups: OnDisk | None = None):
        super().__init__()
        self.stage, self.ngram, self.threshold, self.groups = stage, ngram, threshold, groups

    def expand(self, pcolls):
        pairs, refs, *earlier = pcolls  # earlier: (node, fingerprints) of earlier runs' documents
        outs = ("rep", "member")
        where = {"where": refs | "Where" >> beam.Map(lambda r: (str(r["id"]), _locator(r)))}
        if earlier:
            where["where_earlier"] = earlier[0]
        routed = (
            {"dests": pairs | "Destinations" >> beam.FlatMap(lambda rm: [(rm[0], rm[0]), (rm[1], rm[0])]), **where}
            | "JoinWhere" >> CoGroupOnDisk(self.groups, merge={"where_earlier": "where"} if earlier else None)
            | "Route" >> beam.ParDo(_Destinations(self.ngram)).with_outputs("parked", *outs)
        )
        read = (routed.parked | "GroupSegment" >> GroupOnDisk(self.groups)
                | "ReadShingles" >> beam.ParDo(_ReadShingles(self.ngram)).with_outputs(*outs))
        return (
            {**{tag: routed[tag] for tag in outs}, **{f"{tag}_read": read[tag] for tag in outs}}
            | "GroupByRepresentative" >> CoGroupOnDisk(self.groups, merge={f"{tag}_read": tag for tag in outs})
            | "ExactJaccard" >> beam.ParDo(_ExactPairs(self.stage, self.threshold)).with_outputs(COUNTS, main="edges")
        )


class ChooseRepresentative(CountingDoFn):
    """(component, [(id, length, documents it stands for)]) -> (id, (representative, documents the
    component stands for)) for every member; cluster stats."""

    def __init__(self, stage: str, rule: str):
        super().__init__()
        self.stage = stage
        self.rule = rule

    def process(self, element):
        _, members = element
        members = sorted(set(members))
        earlier = [m for m in members if is_earlier(m[0])]
        if earlier:  # earlier runs win: their document stands for the cluster (the first run's, lowest id)
            rep = earlier[0][0]
        elif self.rule == "longest":
            rep = min(members, key=lambda m: (-m[1], m[0]))[0]
        else:
            rep = members[0][0]
        self.count((self.stage, "info", "clusters"))
        self.count((self.stage, "cluster_size", f"{len(members):06d}"))
        total = sum(m[2] for m in members)
        for node, *_ in members:
            yield (node, (rep, total))


class ApplyDecision(CountingDoFn):
    def __init__(self, stage: str, runs: list[str] = (), **kw):
        super().__init__(**kw)
        self.stage = stage
        self.runs = list(runs)  # the `against` runs' folders, by number

    def process(self, element):
        _, grouped = element
        reps = list(grouped["rep"])
        for doc in grouped["doc"]:
            rep, total = reps[0] if reps else (None, None)
            if rep is not None and is_earlier(rep):
                run, rep_id = split_earlier(rep)
                doc["near_duplicate_of"] = rep_id
                yield from self.reject(doc, self.stage, "earlier_duplicate",
                                       f"near duplicate of {rep_id} in {self.runs[run]}", False)
                yield TaggedOutput(COPIES, (self.runs[run], rep_id, doc.get(DUP_COUNT, 1)))
            elif rep is not None and rep != str(doc["id"]):
                doc["near_duplicate_of"] = rep
                yield from self.reject(doc, self.stage, "near_duplicate", f"near duplicate of {rep}", False)
            else:
                self.count((self.stage, "kept"))
                yield {**doc, DUP_COUNT: total or doc.get(DUP_COUNT, 1)}


def minhash_index_row(ref: dict) -> dict:
    return {"id": str(ref["id"]), "bands": ref[BAND_KEYS], "signature": ref[SIGNATURE], "shingles": ref[SHINGLES]}


def cluster_row(node: str, rep_and_total: tuple) -> list:
    """A clusters.parquet row for a document of this run (an earlier run's representative by its id)."""
    if is_earlier(node):
        return []
    rep = rep_and_total[0]
    return [{"id": node, "cluster_id": split_earlier(rep)[1] if is_earlier(rep) else rep}]


class MinHashDedup(beam.PTransform):
    """The ``dedup_minhash`` stage over parked references; writes ``dedup/clusters.parquet`` and
    ``dedup/index/minhash/`` (every document that entered the stage: what a later run's `against`
    compares with)."""

    def __init__(self, stage: str, params, ctx):
        super().__init__()
        self.stage = stage
        self.c = params
        self.common = ctx.common
        self.groups = ctx.groups(stage)
        w = ctx.config.write
        self.write_clusters = WriteShards("clusters", f"{ctx.staging}/dedup", CLUSTERS_SCHEMA, 1, w.seed, w.compression,
                                          None, ctx.spill("clusters"), filename="clusters.parquet",
                                          release=ctx.read_once)
        self.write_index = WriteShards("index_minhash", f"{ctx.staging}/{MINHASH_INDEX}", MINHASH_INDEX_SCHEMA,
                                       ctx.document_shards, w.seed, w.compression, None, ctx.spill("index_minhash"),
                                       release=ctx.read_once)
        self.earlier = ctx.resource(stage) or ()  # transforms.dedup.EarlierIndex of each `against` run
        self.write_copies = WriteEarlierCopies(stage, ctx) if self.earlier else None

    def expand(self, docs):
        c, stage = self.c, self.stage
        bands, _ = c.resolved_bands()
        threshold = c.threshold if c.verify else None
        margin = c.exact_margin
        index_written = docs | "IndexRows" >> beam.Map(minhash_index_row) | "WriteIndex" >> self.write_index
        docs = docs | "DropShingles" >> beam.Map(lambda d: {k: v for k, v in d.items() if k != SHINGLES})
        earlier = None
        if self.earlier:
            # (node, signature, fingerprints, band keys): `band_entries` reads it as a signature row
            earlier = (docs.pipeline
                       | "ReadEarlierIndex" >> ReadEarlierIndexes(self.earlier, ["id", "signature", "shingles", "bands"])
                       | "EarlierNodes" >> beam.Map(lambda r: (earlier_node(r[0], r[1]), *r[2:])))
        keyed_docs = docs | "KeyById" >> beam.Map(lambda d: (str(d["id"]), d))
        sigs = docs | "Signatures" >> beam.ParDo(Signatures(stage, **self.common)).with_outputs(COUNTS, main="sigs")
        # One shuffle per group of bands, not one for all: Beam's local runner hands each worker its
        # whole share of a shuffle as one message, and the band keys are the biggest thing the
        # dedup stages shuffle (a key, an id and a compact signature per band and document). The
        # buckets, and so the edges, are the same either way.
        per_band, unsure = [], []
        # On disk (the local runner) one grouping takes every band: its memory is a partition's.
        for g, group in enumerate(band_groups(bands, 1 if self.groups else MAX_BAND_SHUFFLES)):
            entries = sigs.sigs | f"BandKeys{g}" >> beam.FlatMap(band_entries, group)
            if earlier is not None:  # earlier runs' documents join the buckets
                entries = (entries, earlier | f"EarlierBandKeys{g}" >> beam.FlatMap(band_entries, group))
            out = (
                entries
                | f"GroupBuckets{g}" >> GroupOnDisk(self.groups)
                | f"BucketPairs{g}" >> beam.FlatMap(_bucket_pairs, threshold, margin).with_output_types(KeyValue)
                                        .with_outputs(UNSURE, main="edges"))
            per_band.append(out.edges)
            unsure.append(out[UNSURE])
        exact_counts = []
        if threshold is not None and margin:
            checked = ((tuple(unsure) | "UniqueUnsure" >> DistinctOnDisk(self.groups), docs,
                        *([earlier | "EarlierShingles" >> beam.Map(lambda r: (r[0], r[2]))] if earlier is not None else []))
                       | "ExactCheck" >> ExactCheck(stage, c.ngram, threshold, self.groups))
            per_band.append(checked.edges)
            exact_counts.append(checked[COUNTS])
        edges = tuple(per_band) | "UniqueEdges" >> DistinctOnDisk(self.groups)
        labels, cc_counts = edges | "Components" >> ConnectedComponents(c.rounds, stage, self.groups)
        lengths = sigs.sigs | "Lengths" >> beam.Map(id_and_length)
        members = (
            {"label": labels, "length": lengths}
            | "JoinLengths" >> CoGroupOnDisk(self.groups)
            | "ByComponent" >> beam.FlatMap(lambda kv: [(lab, (kv[0], *max(kv[1]["length"] or [(0, 1)])))
                                                        for lab in kv[1]["label"]])
            | "GroupComponents" >> GroupOnDisk(self.groups)
            | "Representative" >> beam.ParDo(ChooseRepresentative(stage, c.keep)).with_outputs(COUNTS, main="reps")
        )
        decided = (
            {"doc": keyed_docs, "rep": members.reps}
            | "JoinDecisions" >> CoGroupOnDisk(self.groups)
            | "Apply" >> beam.ParDo(ApplyDecision(stage, [e.run for e in self.earlier], **self.common))
                           .with_outputs(COUNTS, REJECTED, COPIES, main="docs")
        )
        if self.earlier:
            exact_counts.append(decided[COPIES] | "EarlierCopies" >> self.write_copies)
        written = (members.reps | "ClusterRows" >> beam.FlatMapTuple(cluster_row)
                   | "WriteClusters" >> self.write_clusters)
        counts = [sigs[COUNTS], members[COUNTS], decided[COUNTS], written, index_written] + cc_counts + exact_counts
        return StageResult(decided.docs, counts, [decided[REJECTED]])
