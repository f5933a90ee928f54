"""Running the registered stages (transforms/stage.py) in Beam: a document stage is a counting
ParDo over each branch of documents; corpus stages and extra outputs are the composites a stage
names. Nothing here knows a stage by name."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import apache_beam as beam
import pyarrow as pa

from thresher.pipeline.config import LOCAL_RUNNERS, Config
from thresher.pipeline.graph.read import ReadRecords
from thresher.pipeline.graph.counting import CountingDoFn, RangeEnd, StageResult, counted, in_global_window
from thresher.pipeline.graph.grouping import BUFFER_BYTES, READ_BYTES, OnDisk
from thresher.pipeline.graph.spill import SPILL_FOLDER
from thresher.transforms import stage as registry
from thresher.transforms.document import DOCUMENT_SCHEMA, Drop
from thresher.transforms.stage import Stage, StageContext


def enabled_stages(cfg: Config) -> list[Stage]:
    """The stages this run executes, in recipe order (``--only``/``--skip`` were applied to the config)."""
    return [s for s in registry.stages() if s.enabled(getattr(cfg.stages, s.name))]


def document_schema(stages: list[Stage], cfg: Config) -> pa.Schema:
    schema = DOCUMENT_SCHEMA
    for s in stages:
        for name, dtype in s.document_columns(getattr(cfg.stages, s.name)):
            if schema.get_field_index(name) < 0:  # both dedup stages add dup_count
                schema = schema.append(pa.field(name, dtype))
    return schema


def partition_column(stages: list[Stage], cfg: Config) -> str | None:
    """The column documents/ is partitioned by (Hive layout), if a stage asks for one."""
    for s in stages:
        if s.partition is not None and s.partition(getattr(cfg.stages, s.name)):
            return s.partition(getattr(cfg.stages, s.name))
    return None


@dataclass(frozen=True)
class PipelineContext:
    """What the Beam side of a stage gets: the run's config, where it writes, and the resources the
    driver resolved for the stages (a tokenizer's bytes)."""

    config: Config
    staging: str
    progress_dir: str | None = None
    resources: tuple = ()  # ((stage name, resource), ...)
    spill_files: bool = True  # bulk rows between stages through files (runner.spill)
    input_bytes: int = 0  # the input files' total size, known before the job
    resume: object = None  # graph/resume.py's ResumePlan: a resumable run (None: not one)

    @property
    def auto_shards(self) -> int:
        """Output files by the input's size, known before the job (a count computed from the data
        would make the runner hold every document until it is known): the same input and config
        give the same files on any runner, and a writer's memory stays bounded as corpora grow."""
        return max(1, math.ceil(self.input_bytes / 1e6 / self.config.write.shard_input_mb))

    @property
    def document_shards(self) -> int:
        return self.config.write.document_shards or self.auto_shards

    def spill(self, name: str) -> str | None:
        """The folder a writer spills `name` rows to, or None: the runner's shuffle carries them."""
        return f"{self.staging}/{SPILL_FOLDER}/{name}" if self.spill_files else None

    @property
    def read_once(self) -> bool:
        """Spill files are read once and go as soon as read: on the local runner, which retries no
        bundle (a failed bundle fails the run, and a rerun starts again from the input)."""
        return self.spill_files and self.config.runner.name in LOCAL_RUNNERS

    def groups(self, name: str) -> OnDisk | None:
        """How `name`'s groupings keep their values on disk (`grouping.GroupOnDisk`), or None: on a
        distributed runner, or with spill files off, the engine's own shuffle groups them."""
        if not self.read_once:
            return None
        share = self.config.runner.worker_memory_mb() * 2**20
        # A grouping's pickled bytes take about four times as much once loaded and grouped.
        return OnDisk(f"{self.staging}/{SPILL_FOLDER}/groups/{name}",
                      buffer_bytes=min(max(share // 8, 4 * 2**20), BUFFER_BYTES),
                      read_bytes=min(max(share // 6, 8 * 2**20), READ_BYTES))

    @property
    def common(self) -> dict:
        """The counting DoFns' settings (CountingDoFn's arguments)."""
        w = self.config.write
        return dict(rejected_sample=w.rejected_sample, seed=w.seed, text_chars=w.rejected_text_chars,
                    progress_dir=self.progress_dir)

    def resource(self, name: str):
        return dict(self.resources).get(name)

    def stage_context(self, name: str) -> StageContext:
        from apache_beam.io.filesystems import FileSystems

        return StageContext(self.config, self.resource(name), FileSystems.open)

    def params(self, name: str):
        return getattr(self.config.stages, name)


class StageDoFn(CountingDoFn):
    """Runs one stage's ``doc -> doc | Drop`` callable; an exception drops only that document.

    With ``batch`` > 0 the callable takes a list of documents and returns one outcome each; the
    DoFn buffers up to ``batch`` documents of a bundle (a failing batch is retried document by
    document, so one bad document still costs only itself).
    """

    def __init__(self, stage: Stage, params, context: StageContext, count_in: bool = True, batch: int = 0, **kw):
        super().__init__(**kw)
        self.stage = stage.name
        self.build = stage.build
        self.params = params
        self.context = context
        self.count_in = count_in
        self.batch = batch

    def setup(self):
        super().setup()
        self.fn = self.build(self.params, self.context)  # models and tables load once per worker
        self._pop_counters = getattr(self.fn, "pop_counters", None)

    def start_bundle(self):
        super().start_bundle()
        self._buffer: list[dict] = []

    def process(self, doc: dict):
        if isinstance(doc, RangeEnd):  # an input range's documents are all through (graph/resume.py)
            yield from self._flush()
            yield self.end_range(doc)
            return
        if self._range is not None:
            self._range.docs_in += 1
        if self.count_in:
            self.count((self.stage, "in"))
        if self.batch:
            self._buffer.append(doc)
            if len(self._buffer) >= self.batch:
                yield from self._flush()
            return
        start = time.perf_counter()
        try:
            out = self.fn(doc)
        except Exception as e:
            out = e
        self.count((self.stage, "seconds"), time.perf_counter() - start)
        yield from self._outcome(doc, out)

    def _flush(self):
        docs, self._buffer = self._buffer, []
        if not docs:
            return
        start = time.perf_counter()
        try:
            outs = self.fn(docs)
        except Exception:
            outs = []
            for d in docs:
                try:
                    outs.append(self.fn([d])[0])
                except Exception as e:
                    outs.append(e)
        self.count((self.stage, "seconds"), time.perf_counter() - start)
        for doc, out in zip(docs, outs):
            yield from self._outcome(doc, out)

    def _outcome(self, doc: dict, out):
        if self._pop_counters is not None:  # a stage's own counters (redactions, would-be drops)
            for name, n in self._pop_counters().items():
                self.count((self.stage, "counter", name), n)
        if isinstance(out, Drop):
            yield from self.reject(doc, self.stage, out.reason, out.detail, False)
        elif isinstance(out, Exception):
            yield from self.reject(doc, self.stage, "exception", f"{type(out).__name__}: {out}", True)
        else:
            self.count((self.stage, "kept"))
            if self._range is not None:
                self._range.docs_out += 1
            yield out

    def finish_bundle(self):
        for item in self._flush():
            yield in_global_window(item)
        yield from super().finish_bundle()


class RunDocumentStage(beam.PTransform):
    """A document stage over each branch of documents ({name: PCollection}); the branches stay apart (a Flatten before
    the stage would make the local runner materialise every raw payload between fused stages)."""

    def __init__(self, stage: Stage, ctx: PipelineContext):
        super().__init__()
        self.stage = stage
        self.ctx = ctx

    def expand(self, branches):
        params = self.ctx.params(self.stage.name)
        batch = getattr(params, self.stage.batch) if self.stage.batch else 0
        outs, counts, rejected = {}, [], []
        for branch, pcoll in branches.items():
            # in a resumable run every input range's documents are followed by its end (graph/resume.py)
            dofn = StageDoFn(self.stage, params, self.ctx.stage_context(self.stage.name),
                             count_in=self.stage.name != ReadRecords.STAGE, batch=batch, **self.ctx.common,
                             track_ranges=self.ctx.resume is not None)
            r = counted(pcoll, f"Run/{branch}", dofn)
            outs[branch] = r.docs
            counts += r.counts
            rejected += r.rejected
        return StageResult(outs, counts, rejected)


def stage_composite(path: str, stage: Stage, ctx: PipelineContext) -> beam.PTransform:
    """A stage's named Beam composite (a corpus stage, or a writer of extra output), built with the
    stage's parameters and the run's context."""
    return registry.resolve_object(path)(stage.name, ctx.params(stage.name), ctx)
