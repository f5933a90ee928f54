"""`thresher jobserver`: Beam's Spark or Flink job server (built from Maven Central) and a worker pool."""

from __future__ import annotations

import os
import sys
import time

NAME = "jobserver"
HELP = "run Beam's Spark or Flink job server (built from Maven Central) and a worker pool"
PARSER = {"description": "Start Beam's job server for an engine, on its embedded master or a given one, "
                         "and a Python worker pool of this interpreter; print the flags that submit to them; stop "
                         "both on Ctrl-C. The job server's jars are resolved with Maven once and cached."}


def add_arguments(p) -> None:
    p.add_argument("engine", choices=["spark", "flink"])
    p.add_argument("--master", help="Spark: spark://HOST:PORT, local[N] (default local[WORKERS]) or standalone (a "
                   "master and a worker started here, on loopback); Flink: HOST:PORT or [local] (default)")
    p.add_argument("--workers", type=int, default=2, metavar="N", help="local[N] / Flink parallelism (default 2)")
    p.add_argument("--resolve", action="store_true", help="only resolve and cache the classpath, then exit")


def main(args, rest) -> int:
    from thresher.pipeline.engines import jobserver

    def log(message: str) -> None:
        print(message, file=sys.stderr)

    if args.resolve:
        jars = jobserver.classpath(args.engine, log=log)
        size = sum(os.path.getsize(j) for j in jars)
        print(f"{args.engine} job server (Beam {jobserver.BEAM_JOB_SERVER_VERSION}): {len(jars)} jars, "
              f"{size / 1e6:,.0f} MB, cached in {jobserver.cache_dir()}")
        return 0
    try:
        with jobserver.engine(args.engine, args.workers, args.master, log=log) as flags:
            print("submit with: thresher run --runner portable " + " ".join(flags), flush=True)
            print("(Ctrl-C stops the job server and the worker pool)", file=sys.stderr)
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        print("thresher jobserver: stopped", file=sys.stderr)
        return 0
