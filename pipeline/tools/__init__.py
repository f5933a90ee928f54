"""Tools that read finished runs, without Beam: `inspection.py` and `report.py` (thresher inspect:
the funnel, languages, shards, --compare, --html), `sample.py` and `texts.py` (documents of a
run), `calibrate.py` (per-language thresholds), `card.py` (a run's dataset card), `ablate.py`
(curate recipes with `thresher run` processes, train on each, compare), and `training.py`, the
one module that imports the trainer.

Imports `transforms/`, the shared modules of `pipeline/` and pyarrow; never Beam, `graph/`,
`engines/`, `service/` or `cli/`. torch only through `training.py`.
"""
