"""`thresher serve`: submit, watch, inspect and compare curation runs over HTTP and in a browser.

A thin layer over the commands a user types: each job is a `thresher run` process (jobs.py), its
state a row in SQLite under ``--home`` (store.py), a job is checked by the config module's own
rules (specs.py), and run pages read run directories through `thresher inspect`'s own code
(runs.py). app.py puts the app together from its routers: jobs_api.py, runs_api.py, pages.py;
core.py holds what they share.

Imports FastAPI, `tools/` and the shared modules of `pipeline/`; never Beam, `graph/`, `engines/`
or `cli/` (a job's Beam options are checked in a process of their own).
"""

from __future__ import annotations

import os
import sys


def serve(settings) -> int:
    import uvicorn

    from thresher.pipeline.service.app import check_bind, create_app

    check_bind(settings)
    app = create_app(settings)
    where = f"http://{'[' + settings.host + ']' if ':' in settings.host else settings.host}:{settings.port}/"
    print(f"thresher serve: {where} (home {os.path.abspath(settings.home)}; "
          f"{'token required' if settings.token else 'loopback only, no token'}; Ctrl-C stops)", file=sys.stderr, flush=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", timeout_graceful_shutdown=10)
    return 0
