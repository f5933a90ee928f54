"""The ``quality_classifier`` stage in Beam (declared in thresher.transforms.classifier): keep the
parked references whose score reaches the cut-off.

The cut-off is ``min_score``, or with ``keep_top`` the ``1 - keep_top`` quantile of every
document's score: Beam's approximate quantiles (exact while the corpus fits in their buffers),
computed once over the whole corpus and read by every worker as a side input. Either way it is
recorded in stats.json (``stages.quality_classifier.cutoff``).
"""

from __future__ import annotations

import apache_beam as beam

from thresher.pipeline.graph.counting import COUNTS, REJECTED, CountingDoFn, StageResult
from thresher.transforms.classifier import REASON_COLUMN, SCORE


def cutoff_of(quantiles: list[float], keep_top: float) -> float:
    """The score at the ``1 - keep_top`` quantile (quantiles[0] is the minimum, [-1] the maximum)."""
    if not quantiles:
        return 0.0
    last = len(quantiles) - 1
    return float(quantiles[min(last, max(0, round((1.0 - keep_top) * last)))])


class KeepScored(CountingDoFn):
    """A reference stays when its score reaches the cut-off; in annotate mode every one stays, with
    the reason it would have gone for."""

    def __init__(self, stage: str, annotate: bool, rule: str, **kw):
        super().__init__(**kw)
        self.stage = stage
        self.annotate = annotate
        self.rule = rule  # how the cut-off was chosen, for the detail

    def process(self, ref: dict, cutoff: float):
        self.count((self.stage, "in"))
        score = ref.get(SCORE)
        low = score is None or score < cutoff
        if self.annotate:
            ref[REASON_COLUMN] = "low_quality_score" if low else None
            if low:
                self.count((self.stage, "counter", "would_drop:low_quality_score"))
        elif low:
            detail = f"{SCORE} {score:.4g} < {cutoff:.4g} ({self.rule})"
            yield from self.reject(ref, self.stage, "low_quality_score", detail, False)
            return
        self.count((self.stage, "kept"))
        yield ref


class QualityCut(beam.PTransform):
    """The ``quality_classifier`` stage over parked references (their scores computed at parking)."""

    def __init__(self, stage: str, params, ctx):
        super().__init__()
        self.stage = stage
        self.c = params
        self.common = ctx.common

    def expand(self, refs):
        c, stage = self.c, self.stage
        if c.keep_top > 0:
            quantiles = (refs
                         | "Scores" >> beam.Map(lambda r: float(r.get(SCORE) or 0.0))
                         | "Quantiles" >> beam.ApproximateQuantiles.Globally(c.quantiles + 1))
            cutoff = quantiles | "Cutoff" >> beam.Map(cutoff_of, c.keep_top)
            rule = f"the top {c.keep_top:g} of the corpus"
        else:
            cutoff = refs.pipeline | "MinScore" >> beam.Create([float(c.min_score)])
            rule = "min_score"
        info = cutoff | "RecordCutoff" >> beam.Map(lambda v: {(stage, "info", "cutoff"): v})
        out = refs | "KeepScored" >> beam.ParDo(
            KeepScored(stage, c.annotate, rule, **self.common), cutoff=beam.pvalue.AsSingleton(cutoff)
        ).with_outputs(COUNTS, REJECTED, main="docs")
        return StageResult(out.docs, [out[COUNTS], info], [out[REJECTED]])
