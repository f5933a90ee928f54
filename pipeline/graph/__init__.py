"""The Beam graph: reading inputs, the document stages, parking documents around the corpus
stages' shuffles, dedup, the quality cut, writing documents, rejected rows, token shards and
stats, and the run directory's staging and publishing.

Imports Beam, `transforms/` and the shared modules of `pipeline/` (config, layout, stats,
progress, logs); never `engines/`, `tools/`, `service/` or `cli/`. Everything here is pickled
into the job and runs on the workers of any runner.
"""
