"""The jobs API: submit, list, watch, cancel, resume and rerun `thresher run` jobs."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field

from thresher.pipeline import __version__
from thresher.pipeline.service.core import COOKIE, Service, service
from thresher.pipeline.service.jobs import tail
from thresher.pipeline.service.specs import JobSpec
from thresher.pipeline.service.store import STATES

router = APIRouter()


class Login(BaseModel):
    token: str = Field(..., max_length=1000)


@router.get("/api/health", tags=["service"])
def health(svc: Service = Depends(service)) -> dict:
    return {"ok": True, "version": __version__, "jobs": svc.store.counts(), "max_jobs": svc.queue.max_jobs}


@router.post("/api/login", tags=["service"])
def login(body: Login, svc: Service = Depends(service)) -> Response:
    token = svc.settings.token
    if not token:
        return JSONResponse({"ok": True, "detail": "this server needs no token"})
    if not hmac.compare_digest(body.token.encode(), token.encode()):
        raise HTTPException(401, "wrong token")
    resp = JSONResponse({"ok": True})
    resp.set_cookie(COOKIE, svc.session, httponly=True, samesite="strict", secure=False)
    return resp


@router.post("/api/jobs", status_code=201, tags=["jobs"])
def create_job(body: JobSpec, svc: Service = Depends(service)) -> dict:
    """Check and queue a job (400 with the CLI's error when the recipe, a field or a path is wrong)."""
    return svc.submit(body)


@router.get("/api/jobs", tags=["jobs"])
def list_jobs(state: str | None = Query(None, description="one of " + ", ".join(STATES)),
              name: str | None = Query(None, max_length=200), limit: int = Query(100, ge=1, le=1000),
              offset: int = Query(0, ge=0), svc: Service = Depends(service)) -> dict:
    if state and state not in STATES:
        raise HTTPException(400, f"state must be one of {', '.join(STATES)}")
    jobs = svc.store.list(state, name, limit, offset)
    return {"jobs": [svc.public(j) for j in jobs], "counts": svc.store.counts(), "limit": limit, "offset": offset}


@router.get("/api/jobs/{job_id}", tags=["jobs"])
def get_job(job_id: str, svc: Service = Depends(service)) -> dict:
    return svc.public(svc.job_or_404(job_id))


@router.post("/api/jobs/{job_id}/cancel", tags=["jobs"])
def cancel_job(job_id: str, svc: Service = Depends(service)) -> dict:
    svc.job_or_404(job_id)
    return svc.public(svc.queue.cancel(job_id))


@router.post("/api/jobs/{job_id}/resume", tags=["jobs"])
def resume_job(job_id: str, svc: Service = Depends(service)) -> dict:
    """Queue an interrupted, failed or cancelled job again into its own run directory."""
    job = svc.job_or_404(job_id)
    resumed = svc.queue.resume(job_id)
    if resumed is None:
        raise HTTPException(409, f"job {job_id} is {job['state']}: only interrupted, failed or cancelled jobs resume")
    return svc.public(resumed)


@router.post("/api/jobs/{job_id}/rerun", status_code=201, tags=["jobs"])
def rerun_job(job_id: str, svc: Service = Depends(service)) -> dict:
    """The same job again as a new job, into a new run directory."""
    spec = dict(svc.job_or_404(job_id)["spec"])
    spec["output"] = ""
    return svc.submit(JobSpec(**spec), rerun_of=job_id)


@router.get("/api/jobs/{job_id}/log", response_class=PlainTextResponse, tags=["jobs"])
def job_log(job_id: str, max_bytes: int = Query(64 * 1024, ge=1, le=4 * 1024 * 1024),
            svc: Service = Depends(service)) -> str:
    svc.job_or_404(job_id)
    return tail(svc.queue.log_path(job_id), max_bytes)
