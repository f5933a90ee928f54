"""The runs API: what `thresher inspect` reports of a job's run directory, by part, and
`inspect --compare` of two runs."""

from __future__ import annotations

import json
import os

from fastapi import APIRouter, Depends, HTTPException, Query

from thresher.pipeline.config import ConfigError
from thresher.pipeline.service import runs
from thresher.pipeline.service.core import Service, service

router = APIRouter()


@router.get("/api/runs/{job_id}/report", tags=["runs"])
def run_report(job_id: str, svc: Service = Depends(service)) -> dict:
    """`thresher inspect --json`'s report: funnel, languages, examples, lengths, dedup, shards, config."""
    return runs.report(svc.run_dir(job_id))


@router.get("/api/runs/{job_id}/stats", tags=["runs"])
def run_stats(job_id: str, svc: Service = Depends(service)) -> dict:
    with open(os.path.join(svc.run_dir(job_id), "stats.json"), encoding="utf-8") as fh:
        return json.load(fh)


@router.get("/api/runs/{job_id}/funnel", tags=["runs"])
def run_funnel(job_id: str, svc: Service = Depends(service)) -> dict:
    r = runs.report(svc.run_dir(job_id))
    return {k: r.get(k) for k in ("totals", "not_pages", "funnel", "by_reason")}


@router.get("/api/runs/{job_id}/languages", tags=["runs"])
def run_languages(job_id: str, svc: Service = Depends(service)) -> dict:
    r = runs.report(svc.run_dir(job_id))
    return {"languages": r.get("languages", []), "tokens_by_lang": (r.get("shards") or {}).get("tokens_by_lang", {})}


@router.get("/api/runs/{job_id}/sources", tags=["runs"])
def run_sources(job_id: str, svc: Service = Depends(service)) -> dict:
    d = runs.report(svc.run_dir(job_id)).get("documents") or {}
    return {"sites": d.get("sites", {}), "sections": d.get("sections", {})}


@router.get("/api/runs/{job_id}/histograms", tags=["runs"])
def run_histograms(job_id: str, svc: Service = Depends(service)) -> dict:
    r = runs.report(svc.run_dir(job_id))
    return {"chars_kept_dropped": r.get("lengths"), "chars_kept": (r.get("documents") or {}).get("chars_histogram"),
            "tokens": (r.get("shards") or {}).get("tokens_histogram")}


@router.get("/api/runs/{job_id}/shards", tags=["runs"])
def run_shards(job_id: str, svc: Service = Depends(service)) -> dict:
    d = svc.run_dir(job_id)
    manifest = os.path.join(d, "shards", "manifest.json")
    if not os.path.exists(manifest):
        return {"shards": None, "manifest": None}
    with open(manifest, encoding="utf-8") as fh:
        return {"shards": runs.report(d).get("shards"), "manifest": json.load(fh)}


@router.get("/api/runs/{job_id}/dedup", tags=["runs"])
def run_dedup(job_id: str, svc: Service = Depends(service)) -> dict:
    r = runs.report(svc.run_dir(job_id))
    return {"dedup": r.get("dedup"), "largest_clusters": r.get("largest_clusters", [])}


@router.get("/api/runs/{job_id}/documents", tags=["runs"])
def run_documents(job_id: str, kind: str = Query("dropped", pattern="^(kept|dropped)$"),
                  stage: str | None = Query(None, max_length=100), reason: str | None = Query(None, max_length=200),
                  lang: str | None = Query(None, max_length=50), offset: int = Query(0, ge=0),
                  limit: int = Query(20, ge=1, le=runs.MAX_PAGE), svc: Service = Depends(service)) -> dict:
    """Kept documents (by language) or dropped ones (by stage, reason ``stage.reason``, language), a page at a time."""
    return runs.documents(svc.run_dir(job_id), kind, stage, reason, lang, offset, limit)


@router.get("/api/runs/{job_id}/signals", tags=["runs"])
def run_signals(job_id: str, svc: Service = Depends(service)) -> dict:
    """The filters' rules whose signal the run's documents carry (all documents in annotate mode)."""
    return {"rules": runs.signal_rules(svc.run_dir(job_id))}


@router.get("/api/runs/{job_id}/signals/{stage}/{rule}", tags=["runs"])
def run_signal(job_id: str, stage: str, rule: str, lang: str | None = Query(None, max_length=50),
               bins: int = Query(40, ge=2, le=200), svc: Service = Depends(service)) -> dict:
    try:
        return runs.signal_distribution(svc.run_dir(job_id), stage, rule, lang, bins)
    except ConfigError as e:
        raise HTTPException(404, str(e)) from None


@router.get("/api/compare", tags=["runs"])
def compare_runs(a: str = Query(..., max_length=100), b: str = Query(..., max_length=100), svc: Service = Depends(service)) -> dict:
    """inspect --compare: funnel and per-reason differences, documents kept by one run and not the other."""
    from thresher.pipeline.tools.report import compare

    da, db = svc.run_dir(a), svc.run_dir(b)
    return compare(da, db, runs.report(da), runs.report(db))
