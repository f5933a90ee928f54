"""The Beam graph: input files -> records -> the registered stages in recipe order -> documents/
and rejected/ shards, each stage's extra outputs, and stats.json."""

from __future__ import annotations

import apache_beam as beam

from thresher.pipeline.graph.counting import COUNTS, CountDuplicateIds, MergeCounts
from thresher.pipeline.graph.grouping import GroupOnDisk
from thresher.pipeline.graph.park import ParkDocuments, UnparkDocuments
from thresher.pipeline.graph.read import ReadInputs, ReadRecords
from thresher.pipeline.graph.resume import ReuseCheckpoints
from thresher.pipeline.graph.stages import (PipelineContext, RunDocumentStage, document_schema, partition_column,
                                            stage_composite)
from thresher.pipeline.graph.write_documents import REJECTED_SCHEMA, WriteShards, WriteStats
from thresher.transforms.stage import Stage


class Curate(beam.PTransform):
    """The whole recipe as one composite: read, run the stages, write."""

    def __init__(self, ctx: PipelineContext, files: list[tuple[str, str, int]], stages: list[Stage]):
        super().__init__()
        self.ctx = ctx
        self.files = sorted(files)  # (path, source, size in bytes)
        self.stages = stages

    def expand(self, pbegin):
        ctx, w = self.ctx, self.ctx.config.write
        ingest = ctx.params(ReadRecords.STAGE)
        branches, counts, rejected = pbegin | "Read" >> ReadInputs(
            self.files, ingest.warc_options(), ingest.split_bytes, ctx.spill("spread"), ctx.common,
            delete_spilled=ctx.read_once, resume=ctx.resume)
        # A rerun after a crash: the ranges the crashed run finished come from their checkpoints
        # (graph/resume.py) and join the read ones where those leave `Park`.
        reused = None
        if ctx.resume is not None and ctx.resume.reused:
            reused, c, r = pbegin | "Reuse" >> ReuseCheckpoints(ctx.resume.reused, ctx.progress_dir)
            counts, rejected = counts + [c], rejected + [r]
        # Before the corpus stages (dedup) the branches park their documents: those stages shuffle
        # references, and the documents come back after the last of them (pipeline/graph/park.py).
        parked = None
        for stage in self.stages:
            label = f"Stage[{stage.name}]"
            if stage.corpus is not None:
                if parked is None:
                    parked, parked_rejected, c, r = self._park(branches, reused)
                    counts, rejected = counts + c, rejected + r
                result = parked | label >> stage_composite(stage.corpus, stage, ctx)
                parked, counts, parked_rejected = result.docs, counts + result.counts, parked_rejected + result.rejected
                continue
            if parked is not None:
                branches, parked = self._unpark(parked, parked_rejected, rejected), None
            result = branches | label >> RunDocumentStage(stage, ctx)
            branches, counts, rejected = result.docs, counts + result.counts, rejected + result.rejected
            if stage.writes is not None:
                result = branches | f"Write[{stage.name}]" >> stage_composite(stage.writes, stage, ctx)
                branches, counts = result.docs, counts + result.counts
        if parked is not None:
            branches = self._unpark(parked, parked_rejected, rejected)

        written_docs = tuple(branches.values()) | "WriteDocuments" >> WriteShards(
            "documents", f"{ctx.staging}/documents", document_schema(self.stages, ctx.config), ctx.document_shards,
            w.seed, w.compression, ctx.progress_dir, ctx.spill("documents"),
            partition=partition_column(self.stages, ctx.config), release=ctx.read_once)
        # Ids are the documents' keys for every reader: the ids kept more than once are counted
        # (an id given twice by the input), and stats.json and the console name them.
        duplicates = (
            tuple(b | f"IdOf[{name}]" >> beam.Map(lambda d: (str(d["id"]), 1)) for name, b in sorted(branches.items()))
            | "GroupIds" >> GroupOnDisk(ctx.groups("ids"))
            | "CountDuplicateIds" >> beam.ParDo(CountDuplicateIds()).with_outputs(COUNTS, main="none"))
        written_rejected = tuple(rejected) | "WriteRejected" >> WriteShards(
            "rejected", f"{ctx.staging}/rejected", REJECTED_SCHEMA, w.rejected_shards or ctx.auto_shards, w.seed, w.compression,
            ctx.progress_dir, ctx.spill("rejected"), release=ctx.read_once)
        return (
            counts + [written_docs, written_rejected, duplicates[COUNTS]]
            | "AllCounts" >> beam.Flatten()
            | "MergeCounts" >> beam.CombineGlobally(MergeCounts())
            | "WriteStats" >> beam.ParDo(WriteStats(f"{ctx.staging}/stats.json", [s.name for s in self.stages]))
        )

    def _park(self, branches, reused):
        prepares = [(s.name, s.prepare, self.ctx.params(s.name)) for s in self.stages
                    if s.corpus is not None and s.prepare is not None]
        parked, counts, rejected = branches | "Park" >> ParkDocuments(
            prepares, self.ctx.spill("parked"), self.ctx.common, self.ctx.groups("park"), self.ctx.resume, reused)
        return parked, [], counts, rejected

    def _unpark(self, parked, parked_rejected: list, rejected: list) -> dict:
        docs, unparked_rejected = tuple([parked] + parked_rejected) | "Unpark" >> UnparkDocuments(
            self.ctx.config.write.rejected_text_chars, parked=self.ctx.spill_files, groups=self.ctx.groups("unpark"))
        rejected.append(unparked_rejected)
        return {"parked": docs}
