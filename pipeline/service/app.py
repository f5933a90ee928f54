"""`thresher serve`'s HTTP face: the JSON API (its OpenAPI schema at /openapi.json) and the pages.

This module puts the app together: the request guard (host, body size, JSON only, the token),
the security headers, and the routers (jobs_api.py, runs_api.py, pages.py), which reach the
shared state through `core.Service`. Handlers that read run directories are plain functions,
which the framework runs in its thread pool: one slow report never stalls the others. The
Content-Security-Policy allows scripts from this server only.
"""

from __future__ import annotations

import contextlib
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse

from thresher.pipeline import __version__
from thresher.pipeline.config import ConfigError
from thresher.pipeline.service import jobs_api, pages, runs_api
from thresher.pipeline.service.core import LOOPBACK, Service, Settings
from thresher.pipeline.service.specs import JobSpec

__all__ = ["Settings", "check_bind", "create_app"]

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def _hostname(host: str) -> str:
    """The name in a Host header: ``[::1]:8080`` -> ``::1``, ``localhost:8080`` -> ``localhost``."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def create_app(settings: Settings) -> FastAPI:
    svc = Service(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        svc.queue.start()
        if settings.run_sample and not svc.store.list(limit=1):
            svc.submit(JobSpec(name="embedded sample"))
        try:
            yield
        finally:  # a clean stop (Ctrl-C, SIGTERM): running jobs are stopped and marked interrupted
            svc.queue.stop()
            svc.store.close()

    # no /docs: Swagger's page loads its scripts from a CDN; the schema is at /openapi.json
    app = FastAPI(title="Thresher", version=__version__, docs_url=None, redoc_url=None, lifespan=lifespan,
                  description="Submit, watch, inspect and compare Thresher curation runs.")
    app.state.service = svc  # the routers reach it through core.service

    @app.middleware("http")
    async def guard(request: Request, call_next):
        path = request.url.path
        # DNS rebinding: a page of another site whose name resolves to 127.0.0.1
        if svc.settings.loopback() and _hostname(request.headers.get("host") or "") not in LOOPBACK:
            return PlainTextResponse("unknown host", status_code=421)
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            length = request.headers.get("content-length")
            if length is None and request.headers.get("transfer-encoding"):
                return JSONResponse({"detail": "a request body needs a Content-Length"}, status_code=411)
            if length is not None and (not length.isdigit() or int(length) > svc.settings.max_body):
                return JSONResponse({"detail": f"request body larger than {svc.settings.max_body:,} bytes"}, status_code=413)
            # a form on another site cannot send JSON without the browser asking us first (CORS)
            if not request.headers.get("content-type", "").startswith("application/json"):
                return JSONResponse({"detail": "send JSON (Content-Type: application/json)"}, status_code=415)
        public = path in ("/login", "/api/login") or path.startswith("/static/")
        if not public and not svc.authorized(request):
            if path.startswith("/api/") or path == "/openapi.json":
                return JSONResponse({"detail": "a token is required (Authorization: Bearer TOKEN)"}, status_code=401)
            return RedirectResponse("/login?next=" + quote(path), status_code=303)
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        return response

    for module in (jobs_api, runs_api, pages):
        app.include_router(module.router)

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
