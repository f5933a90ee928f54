"""The parts of `thresher inspect`'s report read from the rows, not from stats.json: per-language
kept and dropped counts, example drops per reason, kept and dropped lengths, the largest
near-duplicate clusters and tokens per language; and ``--compare``, the differences between two
runs. No Beam here: inspect starts in about a second.

Rejected rows carry the signals computed before the drop, ``lang`` among them once langid has
run, so a drop's language is read from its signals; drops before langid count under
``(before langid)``. Examples are picked by a seeded hash of the id: the same ones every time.
"""

from __future__ import annotations

import glob
import json
import os
from collections import Counter, defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from thresher.pipeline.layout import partition_values
from thresher.transforms.hashing import seeded_fraction

EXAMPLES = 3  # per drop reason
SNIPPET = 600  # characters of an example's text
BEFORE_LANGID = "(before langid)"
_LANG = r'"lang":\s*"(?P<lang>[^"]*)"'


def files(run_dir: str, folder: str) -> list[str]:
    return sorted(glob.glob(os.path.join(run_dir, folder, "**", "*.parquet"), recursive=True))


def _read(f: str, want: tuple[str, ...]) -> pa.Table:
    names = pq.read_schema(f).names
    t = pq.read_table(f, columns=[c for c in want if c in names])
    for key, value in partition_values(f).items():  # documents/lang=xx/
        if key in want and key not in t.column_names:
            t = t.append_column(key, pa.array([value] * t.num_rows, pa.string()))
    return t


def _strings(col) -> list:
    if pa.types.is_dictionary(col.type):
        col = col.cast(pa.string())
    return col.to_pylist()


def _lengths(tables: list[pa.Table]) -> np.ndarray:
    parts = [pc.utf8_length(pc.drop_null(t.column("text"))).to_numpy(zero_copy_only=False)
             for t in tables if "text" in t.column_names]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def shared_histograms(series: dict[str, np.ndarray], bins: int = 30) -> dict:
    """Histograms of several series over the same log-spaced edges, so their shapes compare."""
    values = [v for v in series.values() if len(v)]
    if not values:
        return {"edges": [], **{k: [] for k in series}}
    lo = max(1.0, float(min(v.min() for v in values)))
    hi = max(lo + 1, float(max(v.max() for v in values)))
    edges = np.unique(np.round(np.geomspace(lo, hi + 1, bins + 1)))
    out = {"edges": [int(e) for e in edges]}
    for name, v in series.items():
        out[name] = [int(c) for c in np.histogram(np.clip(v, lo, None), bins=edges)[0]] if len(v) else [0] * (len(edges) - 1)
    return out


def row_details(run_dir: str, stats: dict, seed: int = 0) -> dict:
    """Per-language counts, examples per reason, kept/dropped lengths, largest clusters."""
    out: dict = {}
    kept_langs: Counter = Counter()
    kept_tables = []
    for f in files(run_dir, "documents"):
        t = _read(f, ("text", "lang"))
        kept_tables.append(t)
        langs = _strings(t.column("lang")) if "lang" in t.column_names else ["(no langid stage)"] * t.num_rows
        kept_langs.update(x or "(none)" for x in langs)

    dropped_langs: dict[str, Counter] = defaultdict(Counter)
    candidates: dict[str, list] = defaultdict(list)
    dropped_tables = []
    for f in files(run_dir, "rejected"):
        t = _read(f, ("id", "url", "stage", "reason", "detail", "errored", "text", "signals"))
        if "signals" in t.column_names:
            langs = pc.struct_field(pc.extract_regex(t.column("signals").fill_null(""), _LANG), "lang")
            langs = _strings(langs)
        else:
            langs = [None] * t.num_rows
        keys = [f"{s}.{r}" for s, r in zip(_strings(t.column("stage")), _strings(t.column("reason")))]
        not_pages = [k == "ingest.not_response" for k in keys]
        dropped_tables.append(t.filter(pa.array([not x for x in not_pages], pa.bool_())))
        for i, (key, lang) in enumerate(zip(keys, langs)):
            if not_pages[i]:
                continue
            dropped_langs[lang or BEFORE_LANGID][key] += 1
            candidates[key].append((seeded_fraction(str(t.column("id")[i]), seed), f, i))

    languages = []
    for lang in sorted(set(kept_langs) | set(dropped_langs), key=lambda x: -(kept_langs[x] + sum(dropped_langs[x].values()))):
        d = dropped_langs.get(lang, Counter())
        total = kept_langs[lang] + sum(d.values())
        languages.append({"lang": lang, "kept": kept_langs[lang], "dropped": sum(d.values()),
                          "kept_share": round(kept_langs[lang] / total, 4) if total else 0.0,
                          "top_reasons": dict(d.most_common(3))})
    out["languages"] = languages

    examples: dict[str, list] = {}
    cache: dict[str, pa.Table] = {}
    for key in sorted(candidates, key=lambda k: -len(candidates[k])):
        rows = []
        for _, f, i in sorted(candidates[key])[:EXAMPLES]:
            if f not in cache:
                cache[f] = pq.read_table(f)
            r = cache[f].slice(i, 1).to_pylist()[0]
            signals = json.loads(r.get("signals") or "{}")
            text = r.get("text") or ""
            rows.append({"id": r["id"], "url": r.get("url"), "detail": r.get("detail") or "",
                         "errored": bool(r.get("errored")), "text": text[:SNIPPET],
                         "truncated": len(text) > SNIPPET, "signals": signals,
                         "fired": fired_signal(r["stage"], r.get("detail") or "", signals)})
        examples[key] = rows
    out["examples"] = examples
    out["lengths"] = shared_histograms({"kept": _lengths(kept_tables), "dropped": _lengths(dropped_tables)})

    clusters = os.path.join(run_dir, "dedup", "clusters.parquet")
    if os.path.exists(clusters) and pq.read_metadata(clusters).num_rows:
        t = pq.read_table(clusters, columns=["id", "cluster_id"])
        sizes = Counter(_strings(t.column("cluster_id")))
        largest = sizes.most_common(10)
        urls = _urls(run_dir, {c for c, _ in largest})
        out["largest_clusters"] = [{"cluster_id": c, "size": n, "url": urls.get(c)} for c, n in largest]
    return out


def fired_signal(stage: str, detail: str, signals: dict) -> str | None:
    """The signal a filter's drop detail names (``alpha_words 0.779 < 0.8`` -> the stage's
    ``gopher_quality_alpha_words``), if it is among the row's signals."""
    name = detail.split(" ", 1)[0] if detail else ""
    for key in (f"{stage}_{name}", name):
        if name and key in signals:
            return key
    return None


def _urls(run_dir: str, ids: set) -> dict:
    found = {}
    for f in files(run_dir, "documents"):
        t = pq.read_table(f, columns=["id", "url"])
        for i, u in zip(t.column("id").to_pylist(), t.column("url").to_pylist()):
            if i in ids:
                found[i] = u
    return found


def tokens_by_language(shard_tables: list[pa.Table]) -> dict[str, int]:
    counts: Counter = Counter()
    for t in shard_tables:
        lengths = pc.list_value_length(t.column("tokens")).to_numpy(zero_copy_only=False)
        for lang, n in zip(_strings(t.column("lang")), lengths):
            counts[lang or "(none)"] += int(n)
    return dict(counts.most_common())


# ----------------------------------------------------------------------------------------------
# --compare


def _ids(run_dir: str, folder: str, cols: tuple[str, ...]) -> dict[str, dict]:
    rows = {}
    for f in files(run_dir, folder):
        for r in _read(f, cols).to_pylist():
            rows.setdefault(r["id"], r)
    return rows


def stage_order(names: list[str]) -> list[str]:
    """Stage names in recipe order (the registry's); names it does not know (a stage of a plugin
    not loaded here) keep their place at the end."""
    from thresher.transforms import stage as registry

    order = {name: i for i, name in enumerate(registry.names())}
    return sorted(names, key=lambda n: (order.get(n, len(order)), names.index(n)))


def compare(a_dir: str, b_dir: str, a: dict, b: dict, n_examples: int = 5, seed: int = 0) -> dict:
    """Differences between runs A and B (their inspect reports `a` and `b`): the funnel stage by
    stage, drops reason by reason, and the documents one kept and the other did not (with why the
    other dropped them, when its rejected rows say)."""
    funnel = []
    fa = {s["stage"]: s for s in a.get("funnel", [])}
    fb = {s["stage"]: s for s in b.get("funnel", [])}
    for stage in stage_order(list(fa) + [s for s in fb if s not in fa]):
        x, y = fa.get(stage, {}), fb.get(stage, {})
        row = {"stage": stage}
        for k in ("in", "kept"):
            row[k] = [x.get(k), y.get(k)]
        for k in ("dropped", "errored"):
            row[k] = [sum((x.get(k) or {}).values()) if x else None, sum((y.get(k) or {}).values()) if y else None]
        row["kept_delta"] = (y.get("kept") or 0) - (x.get("kept") or 0)
        funnel.append(row)
    ra, rb = a.get("by_reason", {}), b.get("by_reason", {})
    reasons = [{"reason": k, "a": ra.get(k, 0), "b": rb.get(k, 0), "delta": rb.get(k, 0) - ra.get(k, 0)}
               for k in sorted(set(ra) | set(rb), key=lambda k: (-abs(rb.get(k, 0) - ra.get(k, 0)), k))]
    kept_a = _ids(a_dir, "documents", ("id", "url"))
    kept_b = _ids(b_dir, "documents", ("id", "url"))
    only_a = sorted(set(kept_a) - set(kept_b), key=lambda i: (seeded_fraction(i, seed), i))
    only_b = sorted(set(kept_b) - set(kept_a), key=lambda i: (seeded_fraction(i, seed), i))
    rej = {"a": _ids(a_dir, "rejected", ("id", "stage", "reason", "detail")),
           "b": _ids(b_dir, "rejected", ("id", "stage", "reason", "detail"))}

    def why(doc_id: str, other: str) -> str | None:
        r = rej[other].get(doc_id)
        if r is None:
            return None
        return f"{r['stage']}.{r['reason']}" + (f" ({r['detail']})" if r.get("detail") else "")

    def dropped_by(ids: list[str], other: str) -> dict:
        counts: Counter = Counter()
        for i in ids:
            r = rej[other].get(i)
            counts[f"{r['stage']}.{r['reason']}" if r else "not in rejected/"] += 1
        return dict(counts.most_common())

    return {
        "a": a.get("dir"), "b": b.get("dir"),
        "totals": {"a": a.get("totals"), "b": b.get("totals")},
        "funnel": funnel,
        "reasons": [r for r in reasons if r["delta"]] + [r for r in reasons if not r["delta"]],
        "documents": {
            "both": len(set(kept_a) & set(kept_b)), "only_a": len(only_a), "only_b": len(only_b),
            "only_a_dropped_in_b_by": dropped_by(only_a, "b"), "only_b_dropped_in_a_by": dropped_by(only_b, "a"),
            "only_a_examples": [{"id": i, "url": kept_a[i].get("url"), "b": why(i, "b")} for i in only_a[:n_examples]],
            "only_b_examples": [{"id": i, "url": kept_b[i].get("url"), "a": why(i, "a")} for i in only_b[:n_examples]],
        },
    }


def render_compare_console(c: dict) -> str:
    out = [f"A {c['a']}", f"B {c['b']}", ""]
    w = max([len(r["stage"]) for r in c["funnel"]] + [5])

    def n(v):
        return "-" if v is None else f"{v:,}"

    out.append(f"  {'stage':<{w}} {'in A':>9} {'in B':>9} {'kept A':>9} {'kept B':>9} {'B - A':>8}")
    for r in c["funnel"]:
        out.append(f"  {r['stage']:<{w}} {n(r['in'][0]):>9} {n(r['in'][1]):>9} {n(r['kept'][0]):>9} "
                   f"{n(r['kept'][1]):>9} {r['kept_delta']:>+8,}")
    changed = [r for r in c["reasons"] if r["delta"]]
    if changed:
        w = max(len(r["reason"]) for r in changed)
        out += ["", "  drops that changed:", f"    {'reason':<{w}} {'A':>8} {'B':>8} {'B - A':>8}"]
        out += [f"    {r['reason']:<{w}} {r['a']:>8,} {r['b']:>8,} {r['delta']:>+8,}" for r in changed]
    else:
        out += ["", "  drops: the same counts for every reason"]
    d = c["documents"]
    out += ["", f"  documents kept by both {d['both']:,}, only by A {d['only_a']:,}, only by B {d['only_b']:,}"]
    for side, other in (("a", "b"), ("b", "a")):
        by = d[f"only_{side}_dropped_in_{other}_by"]
        if by:
            out.append(f"  kept only by {side.upper()}, dropped in {other.upper()} by: "
                       + ", ".join(f"{k} {v:,}" for k, v in list(by.items())[:8]))
        examples = d[f"only_{side}_examples"]
        if examples and len(examples) < d[f"only_{side}"]:
            out.append(f"  {len(examples)} of the {d[f'only_{side}']:,} kept only by {side.upper()}, picked by a seeded "
                       "hash of the id (--json lists the same; every id: the two runs' documents/):")
        for e in examples:
            out.append(f"    {e['id']}  {e.get('url') or ''}  ({other.upper()}: {e.get(other) or 'not in its rejected/'})")
    return "\n".join(out)
