"""What the service reads from a run directory, beyond `thresher inspect`'s report: documents a
page at a time (kept ones by language, dropped ones by stage, reason and language) and the
distribution of a filter's signal with its threshold, from an annotate-mode run.

The report itself is inspect's (pipeline/tools/inspection.py ``build_report``), cached per run directory
until its stats.json changes. Rows are located from the few columns a filter needs; only the
rows of the page asked for are read whole.
"""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from thresher.pipeline.tools.calibrate import enabled_filters
from thresher.pipeline.config import ConfigError, load
from thresher.pipeline.tools.inspection import NOT_PAGES, build_report
from thresher.pipeline.layout import partition_values
from thresher.pipeline.tools.report import _read, _strings, files, fired_signal

TEXT_CHARS = 5000  # of a document's text in a page of documents
MAX_PAGE = 100

_cache: dict = {}
_cache_lock = threading.Lock()


def is_run(run_dir: str) -> bool:
    return os.path.exists(os.path.join(run_dir, "stats.json"))


def report(run_dir: str) -> dict:
    """inspect's full report (as `thresher inspect --json`), built once per version of stats.json."""
    key = (run_dir, os.stat(os.path.join(run_dir, "stats.json")).st_mtime_ns)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    r = build_report(run_dir, details=True)
    with _cache_lock:
        if len(_cache) > 32:
            _cache.clear()
        _cache[key] = r
    return r


def _lang_of(signals: str | None) -> str | None:
    try:
        return json.loads(signals or "{}").get("lang")
    except ValueError:
        return None


def documents(run_dir: str, kind: str, stage: str | None = None, reason: str | None = None, lang: str | None = None,
              offset: int = 0, limit: int = 20, text_chars: int = TEXT_CHARS) -> dict:
    """A page of kept (``kind="kept"``) or dropped (``"dropped"``) documents, in the files' order."""
    if kind not in ("kept", "dropped"):
        raise ConfigError(f"kind must be kept or dropped, not {kind!r}")
    limit = max(1, min(int(limit), MAX_PAGE))
    offset = max(0, int(offset))
    if reason and "." in reason and not stage:
        stage, reason = reason.rsplit(".", 1)
    matches: list[tuple[str, int]] = []
    for f in files(run_dir, "documents" if kind == "kept" else "rejected"):
        if kind == "kept":
            t = _read(f, ("lang",))
            n = pq.read_metadata(f).num_rows
            if lang is None:
                idx = range(n)
            elif "lang" in t.column_names:
                idx = [i for i, x in enumerate(_strings(t.column("lang"))) if x == lang]
            else:
                idx = []
        else:
            t = _read(f, ("stage", "reason", "signals"))
            stages, reasons = _strings(t.column("stage")), _strings(t.column("reason"))
            sig = _strings(t.column("signals")) if "signals" in t.column_names else [None] * t.num_rows
            idx = [i for i in range(t.num_rows)
                   if f"{stages[i]}.{reasons[i]}" != NOT_PAGES
                   and (stage is None or stages[i] == stage) and (reason is None or reasons[i] == reason)
                   and (lang is None or _lang_of(sig[i]) == lang)]
        matches += [(f, i) for i in idx]
    page = matches[offset:offset + limit]
    rows = []
    by_file: dict[str, list[int]] = {}
    for f, i in page:
        by_file.setdefault(f, []).append(i)
    read = {}
    for f, idx in by_file.items():
        t = pq.read_table(f).take(idx)
        folder = partition_values(f)
        for i, r in zip(idx, t.to_pylist()):
            r.update({k: v for k, v in folder.items() if k not in r})
            read[(f, i)] = r
    for key in page:
        rows.append(_row(read[key], kind, text_chars))
    return {"kind": kind, "stage": stage, "reason": reason, "lang": lang, "total": len(matches), "offset": offset,
            "limit": limit, "rows": rows}


def _row(r: dict, kind: str, text_chars: int) -> dict:
    text = r.pop("text", None) or ""
    out = {"id": r.pop("id", None), "url": r.pop("url", None), "text": text[:text_chars],
           "truncated": len(text) > text_chars, "chars": len(text)}
    if kind == "dropped":
        signals = {}
        try:
            signals = json.loads(r.get("signals") or "{}")
        except ValueError:
            pass
        out.update(stage=r.get("stage"), reason=r.get("reason"), detail=r.get("detail") or "",
                   errored=bool(r.get("errored")), signals=signals,
                   fired=fired_signal(r.get("stage") or "", r.get("detail") or "", signals))
    else:
        for k in ("tokens", "html"):
            r.pop(k, None)
        out["lang"] = r.pop("lang", None)
        out["fields"] = {k: v for k, v in r.items() if isinstance(v, (str, int, float, bool)) or v is None}
    return out


# ----------------------------------------------------------------------------------------------
# signals and thresholds


def _columns(run_dir: str) -> set[str]:
    cols: set[str] = set()
    for f in files(run_dir, "documents"):
        cols.update(pq.read_schema(f).names)
    return cols


def signal_rules(run_dir: str) -> list[dict]:
    """Each calibratable rule of the run's filters whose signal the documents carry."""
    cols = _columns(run_dir)
    out = []
    for stage, params in enabled_filters(load(os.path.join(run_dir, "config.yaml"))):
        for field, rule in params.RULES.items():
            signal, op = rule[0], rule[1]
            column = f"{stage}_{signal}"
            if column in cols:
                out.append({"stage": stage, "rule": field, "signal": signal, "column": column, "op": op,
                            "threshold": getattr(params, field), "annotate": bool(params.annotate),
                            "languages": {lang: o[field] for lang, o in params.languages.items() if field in o}})
    return out


def signal_distribution(run_dir: str, stage: str, rule: str, lang: str | None = None, bins: int = 40) -> dict:
    """The histogram of a rule's signal over the run's documents (of one language if asked), the
    threshold (the language's own when it has one) and the share of documents the rule fires on."""
    found = next((r for r in signal_rules(run_dir) if r["stage"] == stage and r["rule"] == rule), None)
    if found is None:
        raise ConfigError(f"{stage}.{rule}: no such rule, or the run's documents do not carry its signal")
    values = []
    for f in files(run_dir, "documents"):
        t = _read(f, (found["column"], "lang"))
        if found["column"] not in t.column_names:
            continue
        if lang is not None:
            if "lang" not in t.column_names:
                continue
            t = t.filter(pc.equal(t.column("lang"), lang))
        col = pc.drop_null(t.column(found["column"]))
        values.append(col.to_numpy(zero_copy_only=False).astype(np.float64))
    v = np.concatenate(values) if values else np.zeros(0)
    threshold = found["languages"].get(lang, found["threshold"]) if lang else found["threshold"]
    out = {**found, "lang": lang, "threshold": threshold, "documents": int(len(v)),
           "note": "every document (annotate mode)" if found["annotate"] else "kept documents only: the run dropped the others"}
    if len(v) == 0:
        return {**out, "edges": [], "counts": [], "fires": 0}
    lo, hi = float(min(v.min(), threshold)), float(max(v.max(), threshold))
    if hi <= lo:
        hi = lo + 1.0
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
    fires = int((v < threshold).sum() if found["op"] == "<" else (v > threshold).sum())
    return {**out, "edges": [float(e) for e in edges], "counts": [int(c) for c in counts], "fires": fires,
            "fires_share": round(fires / len(v), 4)}
