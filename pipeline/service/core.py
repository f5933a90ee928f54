"""What every handler of the service shares: its settings, the jobs table, the queue, the roots
jobs may touch, and the few operations on them the routers call (`Service`, reached through
`service(request)`)."""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field

from fastapi import HTTPException, Request

from thresher.pipeline.config import ConfigError
from thresher.pipeline.service import runs
from thresher.pipeline.service.jobs import JobQueue
from thresher.pipeline.service.specs import MAX_RECIPE_BYTES, JobSpec, Roots, check
from thresher.pipeline.service.store import QUEUED, RUNNING, JobStore

COOKIE = "thresher_session"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class Settings:
    home: str
    host: str = "127.0.0.1"
    port: int = 8080
    token: str = ""
    roots: list[str] = field(default_factory=list)  # besides home
    max_jobs: int = 2
    max_body: int = MAX_RECIPE_BYTES + 64 * 1024
    run_sample: bool = False  # queue a run of the embedded sample when the home holds no job yet

    def loopback(self) -> bool:
        return self.host in LOOPBACK


def session_cookie(token: str) -> str:
    return hmac.new(token.encode(), b"thresher-session", hashlib.sha256).hexdigest()


class Service:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.home = os.path.abspath(settings.home)
        os.makedirs(os.path.join(self.home, "runs"), exist_ok=True)
        os.makedirs(os.path.join(self.home, "jobs"), exist_ok=True)
        self.roots = Roots([self.home, *settings.roots])
        self.store = JobStore(os.path.join(self.home, "thresher.db"))
        self.queue = JobQueue(self.store, self.home, settings.max_jobs)
        self.session = session_cookie(settings.token) if settings.token else ""

    def authorized(self, request: Request) -> bool:
        token = self.settings.token
        if not token:
            return True
        auth = request.headers.get("authorization", "")
        given = auth[7:] if auth.lower().startswith("bearer ") else request.headers.get("x-thresher-token", "")
        if given and hmac.compare_digest(given.encode(), token.encode()):
            return True
        cookie = request.cookies.get(COOKIE, "")
        return bool(cookie) and hmac.compare_digest(cookie.encode(), self.session.encode())

    def job_or_404(self, job_id: str) -> dict:
        job = self.store.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        return job

    def public(self, job: dict) -> dict:
        out = {k: job[k] for k in ("id", "name", "state", "output", "created", "started", "finished", "attempts",
                                   "returncode", "error", "remote_job_id", "rerun_of")}
        out["spec"] = job["spec"]
        out["progress"] = self.queue.progress(job)
        out["run"] = "://" not in job["output"] and runs.is_run(job["output"])
        out["links"] = {"self": f"/api/jobs/{job['id']}", "log": f"/api/jobs/{job['id']}/log",
                        **({"report": f"/api/runs/{job['id']}/report", "page": f"/runs/{job['id']}"} if out["run"] else {})}
        return out

    def run_dir(self, job_id: str) -> str:
        job = self.job_or_404(job_id)
        out = job["output"]
        if "://" in out:
            raise HTTPException(409, f"job {job_id} writes to {out}, which this server does not read")
        if not runs.is_run(out):
            raise HTTPException(409, f"job {job_id} has no run directory yet (it is {job['state']})")
        return out

    def submit(self, spec: JobSpec, rerun_of: str | None = None) -> dict:
        try:
            check(spec, self.roots)
        except ConfigError as e:
            raise HTTPException(400, str(e)) from None
        store, queue = self.store, self.queue
        if spec.output:  # two jobs writing one run directory would replace each other's files
            busy = [j["id"] for state in (QUEUED, RUNNING) for j in store.in_state(state) if j["output"] == spec.output]
            if busy:
                raise HTTPException(409, f"job {busy[0]} is already writing {spec.output}")
        job = store.create(spec.name or "run", spec.to_dict(),
                           lambda job_id: spec.output or queue.default_output(job_id), rerun_of=rerun_of)
        os.makedirs(queue.job_dir(job["id"]), exist_ok=True)
        if spec.recipe:
            with open(os.path.join(queue.job_dir(job["id"]), "recipe.yaml"), "w", encoding="utf-8") as fh:
                fh.write(spec.recipe)
        queue.wake()
        return self.public(store.get(job["id"]))


def service(request: Request) -> Service:
    """The Service of the app handling `request` (a FastAPI dependency)."""
    return request.app.state.service
