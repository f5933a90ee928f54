"""The service's pages: small HTML shells whose scripts draw what the API returns (with
``textContent``: a crawled page's markup is text and never runs), and the few static files."""

from __future__ import annotations

import html
import os
from importlib import resources
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import HTMLResponse, Response

from thresher.pipeline.service import runs
from thresher.pipeline.service.core import Service, service
from thresher.pipeline.service.runs_api import compare_runs
from thresher.pipeline.service.store import SUCCEEDED
from thresher.pipeline.tools.inspection import script_json

router = APIRouter()


def _static(name: str) -> tuple[str, str]:
    """(text, media type) of the few files the pages load."""
    kinds = {".js": "text/javascript", ".css": "text/css"}
    if name in ("report.js", "report.css"):  # the static report's own, shared with `thresher inspect --html`
        path = resources.files("thresher.pipeline") / "data" / name
    else:
        path = resources.files("thresher.pipeline.service") / "static" / name
    ext = os.path.splitext(name)[1]
    if ext not in kinds or "/" in name or not path.is_file():
        raise HTTPException(404, "no such file")
    return path.read_text(encoding="utf-8"), kinds[ext]


def page(title: str, kind: str, data=None, report: bool = False, **attrs) -> HTMLResponse:
    """A page shell: the nav, an empty main the scripts fill, and the page's data as JSON."""
    extra = "".join(f' data-{k}="{html.escape(str(v))}"' for k, v in attrs.items())
    scripts = ('<script src="/static/report.js"></script>' if report else "") + '<script src="/static/service.js"></script>'
    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} · Thresher</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/static/report.css"><link rel="stylesheet" href="/static/service.css"></head>
<body data-page="{kind}"{extra}>
<nav><a href="/" class="brand">Thresher</a> <a href="/">Runs</a> <a href="/submit">Submit</a> <a href="/compare">Compare</a>
<a href="/openapi.json">API</a></nav>
<h1 id="title">{html.escape(title)}</h1><div class="sub" id="subtitle"></div>
<main id="page"></main><main id="report"></main>
<script id="report-data" type="application/json">{script_json(data if data is not None else {})}</script>
{scripts}
</body></html>"""
    return HTMLResponse(body)


@router.get("/static/{name}", include_in_schema=False)
def static(name: str) -> Response:
    text, media = _static(name)
    return Response(text, media_type=media, headers={"Cache-Control": "no-cache"})


@router.get("/", include_in_schema=False)
def jobs_page():
    return page("Runs", "jobs")


@router.get("/submit", include_in_schema=False)
def submit_page(svc: Service = Depends(service)):
    return page("Submit a run", "submit", {"roots": svc.roots.paths})


@router.get("/login", include_in_schema=False)
def login_page():
    return page("Sign in", "login")


@router.get("/jobs/{job_id}", include_in_schema=False)
def job_page(job_id: str, svc: Service = Depends(service)):
    job = svc.job_or_404(job_id)
    return page(f"Job {job['name']}", "job", job=job_id)


@router.get("/runs/{job_id}", include_in_schema=False)
def run_page(job_id: str, svc: Service = Depends(service)):
    job = svc.job_or_404(job_id)
    data = dict(runs.report(svc.run_dir(job_id)))
    base = f"/runs/{quote(job_id)}/documents?kind="
    data["links"] = {"reason": base + "dropped&reason=", "lang": base + "kept&lang="}
    return page(f"Run {job['name']}", "run", data, report=True, job=job_id)


@router.get("/runs/{job_id}/documents", include_in_schema=False)
def documents_page(job_id: str, svc: Service = Depends(service)):
    job = svc.job_or_404(job_id)
    r = runs.report(svc.run_dir(job_id))
    langs = [x["lang"] for x in r.get("languages", [])]
    reasons = [k for k in r.get("by_reason", {}) if k != "ingest.not_response"]
    return page(f"Documents of {job['name']}", "documents", {"languages": langs, "reasons": reasons}, job=job_id)


@router.get("/runs/{job_id}/signals", include_in_schema=False)
def signals_page(job_id: str, svc: Service = Depends(service)):
    job = svc.job_or_404(job_id)
    d = svc.run_dir(job_id)
    langs = [x["lang"] for x in runs.report(d).get("languages", [])]
    return page(f"Signals of {job['name']}", "signals", {"rules": runs.signal_rules(d), "languages": langs}, job=job_id)


@router.get("/compare", include_in_schema=False)
def compare_page(a: str | None = Query(None, max_length=100), b: str | None = Query(None, max_length=100),
                 svc: Service = Depends(service)):
    finished = [{"id": j["id"], "name": j["name"]} for j in svc.store.list(SUCCEEDED, limit=500)]
    if not (a and b):
        return page("Compare two runs", "compare-pick", {"runs": finished})
    data = {"compare": compare_runs(a, b, svc), "runs": finished, "ids": {"a": a, "b": b}}
    return page("Compare two runs", "compare", data, report=True)
