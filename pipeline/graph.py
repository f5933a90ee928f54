"""The Beam graph: input files -> records -> stages -> documents/ and rejected/ shards + stats."""

from __future__ import annotations

import dataclasses
import json
import math

import apache_beam as beam
import pyarrow as pa

from pipeline.config import Config
from pipeline.dofns import (COUNTS, PARKED, REJECTED, TOKEN_BUCKETS, MergeCounts, Park, ReadRecords, ReadSpilled,
                            SpillByShard, StageDoFn, Unpark, WriteShard, WriteTokenShard, shards_of_bucket)
from pipeline.rundir import atomic_write
from pipeline.spill import SPILL_FOLDER
from pipeline.stages import StageSpec, stage_columns
from pipeline.stats import assemble
from transforms.document import DOCUMENT_SCHEMA
from transforms.ingest import WarcOptions, plan_splits
from transforms.shards import Manifest, ShardInfo
from transforms.tokenize import TokenizerInfo

CLUSTERS_SCHEMA = pa.schema([("id", pa.string()), ("cluster_id", pa.string())])

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


def document_schema(stages: list[StageSpec], cfg) -> pa.Schema:
    schema = DOCUMENT_SCHEMA
    for spec in stages:
        for name, dtype in stage_columns(spec, cfg):
            schema = schema.append(pa.field(name, dtype))
    return schema


def _stats_key(k) -> str:
    return "|".join(str(x) for x in k)


def _branches(pcolls) -> list:
    return list(pcolls) if isinstance(pcolls, (list, tuple)) else [pcolls]


def _flatten(label: str, pcolls: list):
    return pcolls[0] if len(pcolls) == 1 else pcolls | label >> beam.Flatten()


class WriteShards(beam.PTransform):
    """Key rows by a seeded hash of their id, group, and write one sorted Parquet file per shard.

    Takes one PCollection or a tuple of them (Beam reads a list as values to create). The rows go
    to spill files and only references to them through the shuffle (`pipeline.spill`); each branch
    spills on its own, because a Flatten before the spill would make the local runner hold every
    row of the branches between stages.
    """

    def __init__(self, kind: str, folder: str, schema: pa.Schema, shards: int, seed: int, compression: str,
                 progress_dir: str | None, spill: str, filename: str | None = None, partition: str | None = None):
        super().__init__()
        self.args = (kind, folder, schema, shards, compression, progress_dir, filename, partition)
        self.shards = shards
        self.seed = seed
        self.spill = spill

    def expand(self, rows):
        refs = [branch | f"Spill{i}" >> beam.ParDo(SpillByShard(self.spill, self.shards, self.seed))
                for i, branch in enumerate(_branches(rows))]
        return (
            _flatten("AllSpilled", refs)
            | "GroupShard" >> beam.GroupByKey()
            | "WriteShard" >> beam.ParDo(WriteShard(*self.args))
        )


SHUFFLE_SALT = "shuffle:"


class WriteManifest(beam.DoFn):
    def __init__(self, path: str, tokenizer: TokenizerInfo, shard_tokens: int, seed: int):
        self.path = path
        self.tokenizer = tokenizer
        self.shard_tokens = shard_tokens
        self.seed = seed

    def process(self, infos: list):
        manifest = Manifest(tokenizer=dataclasses.asdict(self.tokenizer), dtype=self.tokenizer.dtype, seed=self.seed,
                            shard_tokens=self.shard_tokens,
                            shards=[ShardInfo(**i) for i in sorted(infos, key=lambda i: i["file"])])
        atomic_write(self.path, manifest.to_json().encode())
        yield {("output", "shards"): len(manifest.shards), ("output", "shard_rows"): manifest.rows,
               ("output", "shard_tokens"): manifest.tokens}


class WriteTokenShards(beam.PTransform):
    """Tokenized documents -> ``shards/shard-NNNNN.arrow`` + ``shards/manifest.json``.

    The shard count is ceil(total tokens / shard_tokens), known once every document is
    tokenized (a side input); each document goes to shard floor(u * count) for a seeded
    u = hash(seed, id) in [0, 1), and within a shard documents are ordered by u. The stream a
    trainer reads shard by shard is thus a seeded random permutation of the corpus, identical on
    every runner and worker count, with shards of about shard_tokens tokens each.
    """

    def __init__(self, folder: str, tokenizer: TokenizerInfo, shard_tokens: int, seed: int, progress_dir: str | None,
                 spill: str):
        super().__init__()
        self.folder = folder
        self.tokenizer = tokenizer
        self.shard_tokens = shard_tokens
        self.seed = seed
        self.progress_dir = progress_dir
        self.spill = spill

    def expand(self, docs):
        target = self.shard_tokens
        # Rows are spilled by a fixed fine bucketing of u before the shard count is known; the
        # count comes from the spilled segments' token totals, and each shard then reads the
        # buckets that overlap it (a bucket on a boundary is read by both of its shards).
        refs = _flatten("AllSpilled", [
            branch
            | f"ShardRows{i}" >> beam.Map(
                lambda d: {"id": d["id"], "url": d.get("url"), "lang": d.get("lang"), "source": d.get("source"),
                           "offset": d.get("offset"), "tokens": d["tokens"]})
            | f"Spill{i}" >> beam.ParDo(SpillByShard(self.spill, None, self.seed, salt=SHUFFLE_SALT,
                                                     buckets=TOKEN_BUCKETS))
            for i, branch in enumerate(_branches(docs))])
        n_shards = (
            refs
            | "TokenCounts" >> beam.Map(lambda kv: kv[1].tokens)
            | "TotalTokens" >> beam.CombineGlobally(sum)
            | "ShardCount" >> beam.Map(lambda total: max(1, -(-total // target)))
        )
        infos = (
            refs
            | "ToShards" >> beam.FlatMap(lambda kv, n: [(s, (kv[1], n)) for s in shards_of_bucket(kv[0], TOKEN_BUCKETS, n)],
                                         n=beam.pvalue.AsSingleton(n_shards))
            | "GroupShard" >> beam.GroupByKey()
            | "WriteShard" >> beam.ParDo(WriteTokenShard(self.folder, self.tokenizer.dtype, self.seed, SHUFFLE_SALT,
                                                         self.progress_dir))
        )
        return (
            infos
            | "AllShards" >> beam.combiners.ToList()
            | "WriteManifest" >> beam.ParDo(WriteManifest(f"{self.folder}/manifest.json", self.tokenizer,
                                                          self.shard_tokens, self.seed))
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


class Curate(beam.PTransform):
    """The whole recipe as one composite; reads like the diagram in DESIGN.md."""

    def __init__(self, cfg: Config, files: list[tuple[str, int]], stages: list[StageSpec], staging: str,
                 progress_dir: str | None = None, tokenizer: TokenizerInfo | None = None):
        super().__init__()
        self.cfg = cfg
        self.tokenizer = tokenizer  # set when the tokenize stage runs
        self.files = sorted(files)  # (path, size in bytes)
        self.stages = stages
        self.staging = staging
        self.progress_dir = progress_dir

    def expand(self, pbegin):
        cfg, w = self.cfg, self.cfg.write
        common = dict(rejected_sample=w.rejected_sample, seed=w.seed, text_chars=w.rejected_text_chars,
                      progress_dir=self.progress_dir)
        ing = cfg.stages.ingest
        warc = WarcOptions(tuple(ing.keep_status), tuple(ing.keep_content_types), ing.max_record_bytes)
        spill = f"{self.staging}/{SPILL_FOLDER}"

        split_bytes = ing.split_bytes
        read = (
            pbegin
            | "InputFiles" >> beam.Create(self.files)
            | "PlanSplits" >> beam.FlatMap(lambda f: [(f[0], a, b, f[1]) for a, b in plan_splits(f[0], f[1], split_bytes)])
            | "SpreadSplits" >> beam.Reshuffle()
            | "ReadRecords" >> beam.ParDo(ReadRecords(warc, f"{spill}/spread", **common)).with_outputs(
                COUNTS, REJECTED, ReadRecords.SPREAD, main="docs")
        )
        counts, rejected = [read[COUNTS]], [read[REJECTED]]
        # Gzip WARC is read in byte ranges by all workers; a file that must be read whole by one
        # worker has its records spilled in chunks, and the chunks spread over all workers before
        # the expensive stages.
        spread = (read[ReadRecords.SPREAD] | "SpreadRecords" >> beam.Reshuffle()
                  | "ReadSpread" >> beam.ParDo(ReadSpilled()))
        # Each branch runs the per-document stages itself: a Flatten before them would make the
        # runner materialise every raw payload between two fused stages. Before the corpus stages
        # (dedup) the branches park their documents (pipeline.dofns.Park): those stages shuffle
        # references, and Unpark brings the documents back after the last of them.
        branches = [("", read.docs), ("spread", spread)]
        parked = parked_rejected = None
        extra_counts = []
        for spec in self.stages:
            if spec.corpus is not None:
                if parked is None:
                    parked, parked_rejected = self._park(branches, spill, common, counts, rejected)
                result = parked | f"Stage[{spec.name}]" >> spec.corpus(cfg, common)
                parked, stage_counts, stage_rejected = result[:3]
                counts += stage_counts
                parked_rejected += stage_rejected
                if spec.name == "dedup_minhash":
                    extra_counts.append(result[3] | "WriteClusters" >> WriteShards(
                        "clusters", f"{self.staging}/dedup", CLUSTERS_SCHEMA, 1, w.seed, w.compression, None,
                        f"{spill}/clusters", filename="clusters.parquet"))
                continue
            if parked is not None:
                branches = [("", self._unpark(parked, parked_rejected, common, rejected))]
                parked = None
            batch = cfg.stages.tokenize.batch_docs if spec.batch else 0
            dofn = StageDoFn(spec.name, spec.make, cfg, count_in=spec.name != "ingest", batch=batch, **common)
            outs = []
            for branch, pcoll in branches:
                label = f"Stage[{spec.name}]" + (f"/{branch}" if branch else "")
                out = pcoll | label >> beam.ParDo(dofn).with_outputs(COUNTS, REJECTED, main="docs")
                counts.append(out[COUNTS])
                rejected.append(out[REJECTED])
                outs.append((branch, out.docs))
            branches = outs
        if parked is not None:
            branches = [("", self._unpark(parked, parked_rejected, common, rejected))]
        docs = [pcoll for _, pcoll in branches]

        if self.tokenizer is not None:
            extra_counts.append(tuple(docs) | "WriteTokenShards" >> WriteTokenShards(
                f"{self.staging}/shards", self.tokenizer, cfg.stages.tokenize.shard_tokens, w.seed, self.progress_dir,
                f"{spill}/tokens"))
            docs = [d | f"DropTokens{i}" >> beam.Map(lambda d: {k: v for k, v in d.items() if k != "tokens"})
                    for i, d in enumerate(docs)]

        # File counts follow the input's size, known before the job (a count computed from the data
        # would make the runner hold every document until it is known): the same input and config
        # give the same files on any runner, and a writer's memory stays bounded as corpora grow.
        input_mb = sum(size for _, size in self.files) / 1e6
        auto = max(1, math.ceil(input_mb / w.shard_input_mb))
        partition = "lang" if cfg.stages.langid.enabled and cfg.stages.langid.partition else None
        written_docs = tuple(docs) | "WriteDocuments" >> WriteShards(
            "documents", f"{self.staging}/documents", document_schema(self.stages, self.cfg), w.document_shards or auto, w.seed,
            w.compression, self.progress_dir, f"{spill}/documents", partition=partition)
        written_rejected = tuple(rejected) | "WriteRejected" >> WriteShards(
            "rejected", f"{self.staging}/rejected", REJECTED_SCHEMA, w.rejected_shards or auto, w.seed, w.compression,
            self.progress_dir, f"{spill}/rejected")
        stage_names = [s.name for s in self.stages]
        return (
            counts + [written_docs, written_rejected] + extra_counts
            | "AllCounts" >> beam.Flatten()
            | "MergeCounts" >> beam.CombineGlobally(MergeCounts())
            | "WriteStats" >> beam.ParDo(WriteStats(f"{self.staging}/stats.json", stage_names))
        )

    def _park(self, branches, spill: str, common: dict, counts: list, rejected: list):
        """Each branch's documents to spill files; their references, as one PCollection."""
        prepares = [(s.name, s.prepare) for s in self.stages if s.corpus is not None and s.prepare is not None]
        refs = []
        for branch, pcoll in branches:
            out = pcoll | "Park" + (f"/{branch}" if branch else "") >> beam.ParDo(
                Park(f"{spill}/parked", prepares, self.cfg, **common)).with_outputs(COUNTS, REJECTED, main="refs")
            counts.append(out[COUNTS])
            rejected.append(out[REJECTED])
            refs.append(out.refs)
        return _flatten("AllParked", refs), []

    @staticmethod
    def _unpark(parked, parked_rejected: list, common: dict, rejected: list):
        """The kept references, and the rejected ones of the corpus stages -> documents again."""
        out = (
            tuple([parked] + parked_rejected)
            | "AllReferences" >> beam.Flatten()
            | "BySpillFile" >> beam.Map(lambda ref: (ref[PARKED].path, ref))
            | "GroupSpillFile" >> beam.GroupByKey()
            | "Unpark" >> beam.ParDo(Unpark(common["text_chars"])).with_outputs(REJECTED, main="docs")
        )
        rejected.append(out[REJECTED])
        return out.docs
