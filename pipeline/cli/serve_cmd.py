"""`thresher serve`: the service (a job queue, a JSON API and web pages)."""

from __future__ import annotations

import importlib.util
import os

from thresher.pipeline.config import ConfigError

NAME = "serve"
HELP = "the service: submit, watch, inspect and compare runs in a browser and over HTTP"
PARSER = {"description": "Start the service (pip install 'thresher[serve]'): a job queue running `thresher "
                         "run` processes, a JSON API (/openapi.json) and web pages. Jobs and runs live under --home."}


def add_arguments(p) -> None:
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default: %(default)s, this machine only; any other needs a token)")
    p.add_argument("--port", type=int, default=8080, help="(default: %(default)s)")
    p.add_argument("--home", default="thresher-home", metavar="DIR",
                   help="the jobs database, logs and run directories (default: ./%(default)s)")
    p.add_argument("--root", action="append", default=[], metavar="DIR",
                   help="a folder (or gs://, s3:// prefix) jobs may read inputs from and write runs to, besides "
                        "--home (repeatable); paths elsewhere are refused")
    p.add_argument("--token-file", metavar="FILE",
                   help="a file holding the access token (or set THRESHER_TOKEN); required to bind beyond loopback")
    p.add_argument("--max-jobs", type=int, default=2, metavar="N", help="jobs running at once (default: %(default)s)")
    p.add_argument("--run-sample", action="store_true",
                   help="queue a run of the embedded sample on the first start (a home without jobs)")


def main(args, rest) -> int:
    if not all(importlib.util.find_spec(m) for m in ("fastapi", "uvicorn")):
        raise ConfigError("thresher serve needs the [serve] extra: pip install 'thresher[serve]'")
    from thresher.pipeline.service import serve
    from thresher.pipeline.service.app import Settings

    token = os.environ.get("THRESHER_TOKEN", "")
    if args.token_file:
        try:
            with open(args.token_file, encoding="utf-8") as fh:
                token = fh.read().strip()
        except OSError as e:
            raise ConfigError(f"--token-file: {e}") from None
    return serve(Settings(home=args.home, host=args.host, port=args.port, token=token, roots=args.root,
                          max_jobs=args.max_jobs, run_sample=args.run_sample))
