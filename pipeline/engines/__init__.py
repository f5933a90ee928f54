"""Running the graph: `run.py` checks a job, builds the graph (`graph/`), runs it on a runner and
publishes the run directory; `runners.py` and `options.py` turn `--runner` and Beam's flags into
a runner and its options; `jobserver.py` starts Beam's Spark and Flink job servers and a worker
pool; `worker.py` is the local SDK worker process.

Imports Beam, `graph/`, `tools/` (the dataset card) and the shared modules; never `service/` or
`cli/`.
"""
