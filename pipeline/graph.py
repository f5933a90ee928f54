"""The Beam graph: input files -> records -> stages -> documents/ and rejected/ shards + stats."""

from __future__ import annotations

import json
from typing import Tuple

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from pipeline.config import Config
from pipeline.dofns import COUNTS, REJECTED, BatchByShard, MergeCounts, ReadRecords, StageDoFn, WriteShard
from pipeline.stages import StageSpec
from pipeline.stats import assemble
from transforms.ingest import WarcOptions, plan_splits

DOCUMENT_SCHEMA = pa.schema([
    ("id", pa.string()),
    ("url", pa.string()),
    ("text", pa.string()),
    ("source", pa.string()),
    ("offset", pa.int64()),
    ("date", pa.string()),
    ("content_type", pa.string()),
    ("charset", pa.string()),
    ("warc_record_id", pa.string()),
    ("metadata", pa.string()),
])

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


def document_schema(stages: list[StageSpec]) -> pa.Schema:
    schema = DOCUMENT_SCHEMA
    for spec in stages:
        for name, dtype in spec.columns:
            schema = schema.append(pa.field(name, dtype))
    return schema


def _stats_key(k) -> str:
    return "|".join(str(x) for x in k)


class WriteShards(beam.PTransform):
    """Key rows by a seeded hash of their id, group, and write one sorted Parquet file per shard.

    Rows travel to the writers in pickled batches (one per shard and bundle): the shuffle then
    moves a few large byte strings instead of decoding and re-encoding every document in the
    runner, which on a local runner shares the CPUs with the workers.
    """

    def __init__(self, kind: str, folder: str, schema: pa.Schema, shards: int, seed: int, compression: str,
                 progress_dir: str | None):
        super().__init__()
        self.args = (kind, folder, schema, shards, compression, progress_dir)
        self.shards = shards
        self.seed = seed

    def expand(self, rows):
        return (
            rows
            | "BatchByShard" >> beam.ParDo(BatchByShard(self.shards, self.seed)).with_output_types(Tuple[int, bytes])
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
        with FileSystems.create(self.path + ".tmp") as fh:
            fh.write(json.dumps(stats, indent=2, sort_keys=False).encode())
        FileSystems.rename([self.path + ".tmp"], [self.path])
        yield stats


class Curate(beam.PTransform):
    """The whole recipe as one composite; reads like the diagram in DESIGN.md."""

    def __init__(self, cfg: Config, files: list[tuple[str, int]], stages: list[StageSpec], staging: str,
                 progress_dir: str | None = None):
        super().__init__()
        self.cfg = cfg
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

        split_bytes = ing.split_bytes
        read = (
            pbegin
            | "InputFiles" >> beam.Create(self.files)
            | "PlanSplits" >> beam.FlatMap(lambda f: [(f[0], a, b, f[1]) for a, b in plan_splits(f[0], f[1], split_bytes)])
            | "SpreadSplits" >> beam.Reshuffle()
            | "ReadRecords" >> beam.ParDo(ReadRecords(warc, **common)).with_outputs(
                COUNTS, REJECTED, ReadRecords.SPREAD, main="docs")
        )
        counts, rejected = [read[COUNTS]], [read[REJECTED]]
        # Gzip WARC is read in byte ranges by all workers; a file that must be read whole by one
        # worker has its records spread over all workers before the expensive stages.
        spread = read[ReadRecords.SPREAD] | "SpreadRecords" >> beam.Reshuffle()
        # Each branch runs the stages itself: a Flatten before them would make the runner
        # materialise every raw payload between two fused stages.
        kept = []
        for branch, docs in (("", read.docs), ("spread", spread)):
            for spec in self.stages:
                label = f"Stage[{spec.name}]" + (f"/{branch}" if branch else "")
                out = docs | label >> beam.ParDo(
                    StageDoFn(spec.name, spec.make, cfg, count_in=spec.name != "ingest", **common)
                ).with_outputs(COUNTS, REJECTED, main="docs")
                docs = out.docs
                counts.append(out[COUNTS])
                rejected.append(out[REJECTED])
            kept.append(docs)
        docs = kept | "AllKept" >> beam.Flatten()

        written_docs = docs | "WriteDocuments" >> WriteShards(
            "documents", f"{self.staging}/documents", document_schema(self.stages), w.document_shards, w.seed,
            w.compression, self.progress_dir)
        written_rejected = (
            rejected
            | "AllRejected" >> beam.Flatten()
            | "WriteRejected" >> WriteShards("rejected", f"{self.staging}/rejected", REJECTED_SCHEMA,
                                             w.rejected_shards, w.seed, w.compression, self.progress_dir)
        )
        stage_names = [s.name for s in self.stages]
        return (
            counts + [written_docs, written_rejected]
            | "AllCounts" >> beam.Flatten()
            | "MergeCounts" >> beam.CombineGlobally(MergeCounts())
            | "WriteStats" >> beam.ParDo(WriteStats(f"{self.staging}/stats.json", stage_names))
        )
