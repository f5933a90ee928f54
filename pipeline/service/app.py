"""`thresher serve`'s HTTP face: the JSON API (its OpenAPI schema at /openapi.json) and the pages.

Handlers that read run directories are plain functions, which the framework runs in its thread
pool: one slow report never stalls the others. Pages are small HTML shells; what they show is
drawn by their scripts from the API with ``textContent``, and the Content-Security-Policy allows
scripts from this server only, so a crawled page's markup is text and never runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import html
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from thresher.pipeline import __version__
from thresher.pipeline.config import ConfigError
from thresher.pipeline.inspect import script_json
from thresher.pipeline.service import runs
from thresher.pipeline.service.jobs import JobQueue, tail
from thresher.pipeline.service.specs import MAX_RECIPE_BYTES, JobSpec, Roots, check
from thresher.pipeline.service.store import QUEUED, RUNNING, STATES, SUCCEEDED, JobStore

COOKIE = "thresher_session"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


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


class JobRequest(BaseModel):
    """A curation job: `thresher run` with these arguments."""

    name: str = Field("", max_length=200, description="a label for the runs list")
    recipe: str = Field("", max_length=MAX_RECIPE_BYTES, description="recipe YAML (empty: the built-in defaults)")
    inputs: list[str] = Field(default_factory=list, max_length=1000,
                              description="input paths or globs under the service's roots (empty: the recipe's, "
                                          "or the embedded sample)")
    output: str = Field("", description="run directory under a root (empty: HOME/runs/<job id>)")
    runner: str = Field("", description="direct (default), portable, spark, flink, DataflowRunner, ...")
    workers: int = Field(0, ge=0, le=64)
    only: str = ""
    skip: str = ""
    options: list[str] = Field(default_factory=list, max_length=100,
                               description="Beam pipeline options, e.g. --job_endpoint=localhost:8099")
    overwrite: bool = False


class Login(BaseModel):
    token: str = Field(..., max_length=1000)


def _hostname(host: str) -> str:
    """The name in a Host header: ``[::1]:8080`` -> ``::1``, ``localhost:8080`` -> ``localhost``."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _session(token: str) -> str:
    return hmac.new(token.encode(), b"thresher-session", hashlib.sha256).hexdigest()


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


def create_app(settings: Settings) -> FastAPI:
    home = os.path.abspath(settings.home)
    os.makedirs(os.path.join(home, "runs"), exist_ok=True)
    os.makedirs(os.path.join(home, "jobs"), exist_ok=True)
    roots = Roots([home, *settings.roots])
    store = JobStore(os.path.join(home, "thresher.db"))
    queue = JobQueue(store, home, settings.max_jobs)
    session = _session(settings.token) if settings.token else ""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        queue.start()
        if settings.run_sample and not store.list(limit=1):
            submit(JobSpec(name="embedded sample"))
        try:
            yield
        finally:  # a clean stop (Ctrl-C, SIGTERM): running jobs are stopped and marked interrupted
            queue.stop()
            store.close()

    # no /docs: Swagger's page loads its scripts from a CDN; the schema is at /openapi.json
    app = FastAPI(title="Thresher", version=__version__, docs_url=None, redoc_url=None, lifespan=lifespan,
                  description="Submit, watch, inspect and compare Thresher curation runs.")
    app.state.store, app.state.queue, app.state.settings = store, queue, settings

    def authorized(request: Request) -> bool:
        if not settings.token:
            return True
        auth = request.headers.get("authorization", "")
        given = auth[7:] if auth.lower().startswith("bearer ") else request.headers.get("x-thresher-token", "")
        if given and hmac.compare_digest(given.encode(), settings.token.encode()):
            return True
        cookie = request.cookies.get(COOKIE, "")
        return bool(cookie) and hmac.compare_digest(cookie.encode(), session.encode())

    @app.middleware("http")
    async def guard(request: Request, call_next):
        path = request.url.path
        # DNS rebinding: a page of another site whose name resolves to 127.0.0.1
        if settings.loopback() and _hostname(request.headers.get("host") or "") not in LOOPBACK:
            return PlainTextResponse("unknown host", status_code=421)
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            length = request.headers.get("content-length")
            if length is None and request.headers.get("transfer-encoding"):
                return JSONResponse({"detail": "a request body needs a Content-Length"}, status_code=411)
            if length is not None and (not length.isdigit() or int(length) > settings.max_body):
                return JSONResponse({"detail": f"request body larger than {settings.max_body:,} bytes"}, status_code=413)
            # a form on another site cannot send JSON without the browser asking us first (CORS)
            if not request.headers.get("content-type", "").startswith("application/json"):
                return JSONResponse({"detail": "send JSON (Content-Type: application/json)"}, status_code=415)
        public = path in ("/login", "/api/login") or path.startswith("/static/")
        if not public and not authorized(request):
            if path.startswith("/api/") or path == "/openapi.json":
                return JSONResponse({"detail": "a token is required (Authorization: Bearer TOKEN)"}, status_code=401)
            return RedirectResponse("/login?next=" + quote(path), status_code=303)
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        return response

    # --- helpers -------------------------------------------------------------------------------
    def job_or_404(job_id: str) -> dict:
        job = store.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id}")
        return job

    def public(job: dict) -> dict:
        out = {k: job[k] for k in ("id", "name", "state", "output", "created", "started", "finished", "attempts",
                                   "returncode", "error", "remote_job_id", "rerun_of")}
        out["spec"] = job["spec"]
        out["progress"] = queue.progress(job)
        out["run"] = "://" not in job["output"] and runs.is_run(job["output"])
        out["links"] = {"self": f"/api/jobs/{job['id']}", "log": f"/api/jobs/{job['id']}/log",
                        **({"report": f"/api/runs/{job['id']}/report", "page": f"/runs/{job['id']}"} if out["run"] else {})}
        return out

    def run_dir(job_id: str) -> str:
        job = job_or_404(job_id)
        out = job["output"]
        if "://" in out:
            raise HTTPException(409, f"job {job_id} writes to {out}, which this server does not read")
        if not runs.is_run(out):
            raise HTTPException(409, f"job {job_id} has no run directory yet (it is {job['state']})")
        return out

    def bad_request(e: Exception):
        return HTTPException(400, str(e))

    def submit(spec: JobSpec, rerun_of: str | None = None) -> dict:
        try:
            check(spec, roots)
        except ConfigError as e:
            raise bad_request(e) from None
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
        return public(store.get(job["id"]))

    # --- the API -------------------------------------------------------------------------------
    @app.get("/api/health", tags=["service"])
    def health() -> dict:
        return {"ok": True, "version": __version__, "jobs": store.counts(), "max_jobs": queue.max_jobs}

    @app.post("/api/login", tags=["service"])
    def login(body: Login) -> Response:
        if not settings.token:
            return JSONResponse({"ok": True, "detail": "this server needs no token"})
        if not hmac.compare_digest(body.token.encode(), settings.token.encode()):
            raise HTTPException(401, "wrong token")
        resp = JSONResponse({"ok": True})
        resp.set_cookie(COOKIE, session, httponly=True, samesite="strict", secure=False)
        return resp

    @app.post("/api/jobs", status_code=201, tags=["jobs"])
    def create_job(body: JobRequest) -> dict:
        """Check and queue a job (400 with the CLI's error when the recipe or a path is wrong)."""
        return submit(JobSpec(**body.model_dump()))

    @app.get("/api/jobs", tags=["jobs"])
    def list_jobs(state: str | None = Query(None, description="one of " + ", ".join(STATES)),
                  name: str | None = Query(None, max_length=200), limit: int = Query(100, ge=1, le=1000),
                  offset: int = Query(0, ge=0)) -> dict:
        if state and state not in STATES:
            raise HTTPException(400, f"state must be one of {', '.join(STATES)}")
        jobs = store.list(state, name, limit, offset)
        return {"jobs": [public(j) for j in jobs], "counts": store.counts(), "limit": limit, "offset": offset}

    @app.get("/api/jobs/{job_id}", tags=["jobs"])
    def get_job(job_id: str) -> dict:
        return public(job_or_404(job_id))

    @app.post("/api/jobs/{job_id}/cancel", tags=["jobs"])
    def cancel_job(job_id: str) -> dict:
        job_or_404(job_id)
        return public(queue.cancel(job_id))

    @app.post("/api/jobs/{job_id}/resume", tags=["jobs"])
    def resume_job(job_id: str) -> dict:
        """Queue an interrupted, failed or cancelled job again into its own run directory."""
        job = job_or_404(job_id)
        resumed = queue.resume(job_id)
        if resumed is None:
            raise HTTPException(409, f"job {job_id} is {job['state']}: only interrupted, failed or cancelled jobs resume")
        return public(resumed)

    @app.post("/api/jobs/{job_id}/rerun", status_code=201, tags=["jobs"])
    def rerun_job(job_id: str) -> dict:
        """The same job again as a new job, into a new run directory."""
        spec = dict(job_or_404(job_id)["spec"])
        spec["output"] = ""
        return submit(JobSpec(**spec), rerun_of=job_id)

    @app.get("/api/jobs/{job_id}/log", response_class=PlainTextResponse, tags=["jobs"])
    def job_log(job_id: str, max_bytes: int = Query(64 * 1024, ge=1, le=4 * 1024 * 1024)) -> str:
        job_or_404(job_id)
        return tail(queue.log_path(job_id), max_bytes)

    @app.get("/api/runs/{job_id}/report", tags=["runs"])
    def run_report(job_id: str) -> dict:
        """`thresher inspect --json`'s report: funnel, languages, examples, lengths, dedup, shards, config."""
        return runs.report(run_dir(job_id))

    @app.get("/api/runs/{job_id}/stats", tags=["runs"])
    def run_stats(job_id: str) -> dict:
        with open(os.path.join(run_dir(job_id), "stats.json"), encoding="utf-8") as fh:
            return json.load(fh)

    @app.get("/api/runs/{job_id}/funnel", tags=["runs"])
    def run_funnel(job_id: str) -> dict:
        r = runs.report(run_dir(job_id))
        return {k: r.get(k) for k in ("totals", "not_pages", "funnel", "by_reason")}

    @app.get("/api/runs/{job_id}/languages", tags=["runs"])
    def run_languages(job_id: str) -> dict:
        r = runs.report(run_dir(job_id))
        return {"languages": r.get("languages", []), "tokens_by_lang": (r.get("shards") or {}).get("tokens_by_lang", {})}

    @app.get("/api/runs/{job_id}/sources", tags=["runs"])
    def run_sources(job_id: str) -> dict:
        d = runs.report(run_dir(job_id)).get("documents") or {}
        return {"sites": d.get("sites", {}), "sections": d.get("sections", {})}

    @app.get("/api/runs/{job_id}/histograms", tags=["runs"])
    def run_histograms(job_id: str) -> dict:
        r = runs.report(run_dir(job_id))
        return {"chars_kept_dropped": r.get("lengths"), "chars_kept": (r.get("documents") or {}).get("chars_histogram"),
                "tokens": (r.get("shards") or {}).get("tokens_histogram")}

    @app.get("/api/runs/{job_id}/shards", tags=["runs"])
    def run_shards(job_id: str) -> dict:
        d = run_dir(job_id)
        manifest = os.path.join(d, "shards", "manifest.json")
        if not os.path.exists(manifest):
            return {"shards": None, "manifest": None}
        with open(manifest, encoding="utf-8") as fh:
            return {"shards": runs.report(d).get("shards"), "manifest": json.load(fh)}

    @app.get("/api/runs/{job_id}/dedup", tags=["runs"])
    def run_dedup(job_id: str) -> dict:
        r = runs.report(run_dir(job_id))
        return {"dedup": r.get("dedup"), "largest_clusters": r.get("largest_clusters", [])}

    @app.get("/api/runs/{job_id}/documents", tags=["runs"])
    def run_documents(job_id: str, kind: str = Query("dropped", pattern="^(kept|dropped)$"),
                      stage: str | None = Query(None, max_length=100), reason: str | None = Query(None, max_length=200),
                      lang: str | None = Query(None, max_length=50), offset: int = Query(0, ge=0),
                      limit: int = Query(20, ge=1, le=runs.MAX_PAGE)) -> dict:
        """Kept documents (by language) or dropped ones (by stage, reason ``stage.reason``, language), a page at a time."""
        return runs.documents(run_dir(job_id), kind, stage, reason, lang, offset, limit)

    @app.get("/api/runs/{job_id}/signals", tags=["runs"])
    def run_signals(job_id: str) -> dict:
        """The filters' rules whose signal the run's documents carry (all documents in annotate mode)."""
        return {"rules": runs.signal_rules(run_dir(job_id))}

    @app.get("/api/runs/{job_id}/signals/{stage}/{rule}", tags=["runs"])
    def run_signal(job_id: str, stage: str, rule: str, lang: str | None = Query(None, max_length=50),
                   bins: int = Query(40, ge=2, le=200)) -> dict:
        try:
            return runs.signal_distribution(run_dir(job_id), stage, rule, lang, bins)
        except ConfigError as e:
            raise HTTPException(404, str(e)) from None

    @app.get("/api/compare", tags=["runs"])
    def compare_runs(a: str = Query(..., max_length=100), b: str = Query(..., max_length=100)) -> dict:
        """inspect --compare: funnel and per-reason differences, documents kept by one run and not the other."""
        from thresher.pipeline.report import compare

        da, db = run_dir(a), run_dir(b)
        return compare(da, db, runs.report(da), runs.report(db))

    # --- pages ---------------------------------------------------------------------------------
    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        text, media = _static(name)
        return Response(text, media_type=media, headers={"Cache-Control": "no-cache"})

    @app.get("/", include_in_schema=False)
    def jobs_page():
        return page("Runs", "jobs")

    @app.get("/submit", include_in_schema=False)
    def submit_page():
        return page("Submit a run", "submit", {"roots": roots.paths})

    @app.get("/login", include_in_schema=False)
    def login_page():
        return page("Sign in", "login")

    @app.get("/jobs/{job_id}", include_in_schema=False)
    def job_page(job_id: str):
        job = job_or_404(job_id)
        return page(f"Job {job['name']}", "job", job=job_id)

    @app.get("/runs/{job_id}", include_in_schema=False)
    def run_page(job_id: str):
        job = job_or_404(job_id)
        data = dict(runs.report(run_dir(job_id)))
        base = f"/runs/{quote(job_id)}/documents?kind="
        data["links"] = {"reason": base + "dropped&reason=", "lang": base + "kept&lang="}
        return page(f"Run {job['name']}", "run", data, report=True, job=job_id)

    @app.get("/runs/{job_id}/documents", include_in_schema=False)
    def documents_page(job_id: str):
        job = job_or_404(job_id)
        r = runs.report(run_dir(job_id))
        langs = [x["lang"] for x in r.get("languages", [])]
        reasons = [k for k in r.get("by_reason", {}) if k != "ingest.not_response"]
        return page(f"Documents of {job['name']}", "documents", {"languages": langs, "reasons": reasons}, job=job_id)

    @app.get("/runs/{job_id}/signals", include_in_schema=False)
    def signals_page(job_id: str):
        job = job_or_404(job_id)
        d = run_dir(job_id)
        langs = [x["lang"] for x in runs.report(d).get("languages", [])]
        return page(f"Signals of {job['name']}", "signals", {"rules": runs.signal_rules(d), "languages": langs}, job=job_id)

    @app.get("/compare", include_in_schema=False)
    def compare_page(a: str | None = Query(None, max_length=100), b: str | None = Query(None, max_length=100)):
        finished = [{"id": j["id"], "name": j["name"]} for j in store.list(SUCCEEDED, limit=500)]
        if not (a and b):
            return page("Compare two runs", "compare-pick", {"runs": finished})
        data = {"compare": compare_runs(a, b), "runs": finished, "ids": {"a": a, "b": b}}
        return page("Compare two runs", "compare", data, report=True)

    @app.exception_handler(ConfigError)
    def config_error(request: Request, exc: ConfigError):
        return JSONResponse({"detail": str(exc)}, status_code=400)

    return app


def check_bind(settings: Settings) -> None:
    """Any bind but loopback needs a token: the API runs jobs and reads run directories."""
    if not settings.loopback() and not settings.token:
        raise ConfigError(f"thresher serve: binding to {settings.host} exposes the service beyond this machine: "
                          "set a token (--token-file FILE or THRESHER_TOKEN) or bind to 127.0.0.1")
    if settings.token and len(settings.token) < 16:
        raise ConfigError("thresher serve: the token must be at least 16 characters")
