"""`thresher inspect`: what a run directory holds, as text, JSON or a self-contained HTML page."""

from __future__ import annotations

import glob
import html
import json
import os
import re
from collections import Counter
from importlib import resources
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from thresher.pipeline.config import ConfigError
from thresher.pipeline.layout import partition_values
from thresher.pipeline.tools.report import row_details, tokens_by_language
from thresher.pipeline.stats import accounting_problems
from thresher.transforms import stage as stage_registry
from thresher.transforms.dedup import DUP_COUNT
from thresher.transforms.tokenization import extra_copies
from thresher.transforms.shards import MANIFEST, open_shard, read_manifest, shard_tokens, verify

PERCENTILES = (5, 25, 50, 75, 95, 99)


def _percentiles(values: np.ndarray) -> dict:
    if len(values) == 0:
        return {}
    out = {f"p{p}": float(np.percentile(values, p)) for p in PERCENTILES}
    out.update(min=float(values.min()), max=float(values.max()), mean=round(float(values.mean()), 1),
               total=int(values.sum()))
    return out


def _histogram(values: np.ndarray, bins: int = 30) -> dict:
    """Log-spaced bins: document lengths span orders of magnitude."""
    if len(values) == 0:
        return {"edges": [], "counts": []}
    lo, hi = max(1.0, float(values.min())), max(2.0, float(values.max()))
    edges = np.unique(np.round(np.geomspace(lo, hi + 1, bins + 1)))
    counts, edges = np.histogram(values, bins=edges)
    return {"edges": [int(e) for e in edges], "counts": [int(c) for c in counts]}


def _site(url: str | None) -> str:
    if not url:
        return "(no url)"
    parts = urlsplit(url)
    return parts.hostname or "(no host)"


def _section(url: str | None) -> str:
    if not url:
        return "(no url)"
    parts = urlsplit(url)
    first = parts.path.strip("/").split("/", 1)[0]
    return f"{parts.hostname}/{first}" if first else (parts.hostname or "(no host)")


def _top(counter: Counter, n: int = 25) -> dict:
    items = counter.most_common()
    top = dict(items[:n])
    if len(items) > n:
        top["(other)"] = sum(c for _, c in items[n:])
    return top


def build_report(run_dir: str, details: bool = True) -> dict:
    """The report on a run directory. `details` adds what is read from the rows themselves
    (`report.row_details`: languages, examples per reason, lengths kept and dropped, largest
    clusters, tokens per language), which the console report does without."""
    if not os.path.isdir(run_dir):
        raise ConfigError(f"{run_dir}: no such run directory")
    if not os.path.exists(os.path.join(run_dir, "stats.json")):
        raise ConfigError(f"{run_dir}: not a run directory (no stats.json)")
    report: dict = {"dir": os.path.abspath(run_dir)}
    stats_path = os.path.join(run_dir, "stats.json")
    if os.path.exists(stats_path):
        with open(stats_path) as fh:
            stats = json.load(fh)
        report["funnel"] = [
            {"stage": name, "in": s["in"], "kept": s["kept"], "dropped": s["dropped"], "errored": s["errored"],
             **({"seconds": s["seconds"]} if "seconds" in s else {})}
            for name, s in stats["stages"].items()
        ]
        report["not_pages"] = stats["totals"].get("by_reason", {}).get(NOT_PAGES, 0)
        report["totals"] = {k: v for k, v in stats["totals"].items() if k != "by_reason"}
        report["by_reason"] = stats["totals"].get("by_reason", {})
        report["run"] = stats.get("run", {})
        # Dedup: the dedup stages' removals, and the clustering of the one that clusters.
        deduplicating = {s.name for s in stage_registry.stages() if s.dedup}
        dedup = {name: s for name, s in stats["stages"].items() if name in deduplicating}
        clustering = next((s for s in dedup.values() if "cluster_sizes" in s or "rounds_used" in s), None)
        if clustering is not None:
            report["dedup"] = {k: clustering.get(k) for k in ("clusters", "cluster_sizes", "rounds_used", "converged")}
            report["dedup"]["removed"] = {name: sum(s["dropped"].values()) for name, s in dedup.items()}

    doc_files = sorted(glob.glob(os.path.join(run_dir, "documents", "**", "*.parquet"), recursive=True))
    if doc_files:
        langs: Counter = Counter()
        sites: Counter = Counter()
        sections: Counter = Counter()
        char_lengths = []
        dup_buckets: Counter = Counter()
        for f in doc_files:
            cols = [c for c in ("url", "text", "lang", DUP_COUNT) if c in pq.read_schema(f).names]
            t = pq.read_table(f, columns=cols)
            if DUP_COUNT in cols:
                dup_buckets.update(dup_count_bucket(n or 1) for n in t.column(DUP_COUNT).to_pylist())
            char_lengths.append(pc.utf8_length(t.column("text")).to_numpy(zero_copy_only=False))
            for url in t.column("url").to_pylist():
                sites[_site(url)] += 1
                sections[_section(url)] += 1
            if "lang" in cols:
                langs.update(x or "(none)" for x in t.column("lang").to_pylist())
            elif "lang" in partition_values(f):  # documents/lang=xx/ (langid.partition)
                langs[partition_values(f)["lang"]] += t.num_rows
            else:
                langs["(no langid stage)"] += t.num_rows
        chars = np.concatenate(char_lengths) if char_lengths else np.zeros(0)
        report["documents"] = {
            "rows": int(len(chars)),
            "files": len(doc_files),
            "chars": _percentiles(chars),
            "chars_histogram": _histogram(chars),
            "languages": _top(langs),
            "sites": _top(sites),
            "sections": _top(sections),
        }
        if dup_buckets:  # the documents each kept one stands for (its duplicate cluster's size)
            report["documents"]["dup_count"] = {k: dup_buckets[k] for k in sorted(dup_buckets, key=_bucket_low)}

    if details and "funnel" in report:
        report.update(row_details(run_dir, stats))
        config_path = os.path.join(run_dir, "config.yaml")
        if os.path.exists(config_path):
            with open(config_path, encoding="utf-8") as fh:
                report["config"] = fh.read()
    shard_dir = os.path.join(run_dir, "shards")
    if os.path.exists(os.path.join(shard_dir, MANIFEST)):
        m = read_manifest(shard_dir)
        lengths, unreadable, tables = [], [], []
        fmt = m.default_format
        for s in m.shards:
            if not s.file_of(fmt) or not all(os.path.exists(os.path.join(shard_dir, f["file"])) for f in s.file_of(fmt)):
                continue
            try:
                flat, offsets = shard_tokens(shard_dir, s, fmt)
                if offsets is None:  # flat files keep no boundaries: documents end in EOS
                    ends = np.flatnonzero(np.asarray(flat) == m.tokenizer.get("eos_id"))
                    offsets = np.concatenate([[0], ends + 1])
                if fmt == "arrow":
                    tables.append(open_shard(os.path.join(shard_dir, s.file)))
            except (pa.ArrowException, OSError, ValueError):  # --verify says what is wrong with it
                unreadable.append(s.file_of(fmt)[0]["file"])
                continue
            lengths.append(np.diff(offsets))
        toks = np.concatenate(lengths) if lengths else np.zeros(0)
        by_format = m.bytes_by_format()
        report["shards"] = {
            "tokenizer": m.tokenizer,
            "dtype": m.dtype,
            "seed": m.seed,
            "shard_tokens": m.shard_tokens,
            "count": len(m.shards),
            "rows": m.rows,
            "tokens": m.tokens,
            "bytes": sum(by_format.values()),
            "formats": {f: {"bytes": b, "bytes_per_token": round(b / m.tokens, 3) if m.tokens else None}
                        for f, b in by_format.items()},
            "per_shard": [{"file": s.file or s.files[0]["file"], "rows": s.rows, "tokens": s.tokens,
                           "bytes": sum(f["bytes"] for f in s.files)} for s in m.shards],
            "doc_tokens": _percentiles(toks),
            "tokens_histogram": _histogram(toks),
            "unreadable": unreadable,
        }
        if "megatron" in m.formats:  # what a Megatron-LM user passes as --data-path
            report["shards"]["megatron_data_path"] = m.blend(os.path.abspath(shard_dir))
        if details:
            report["shards"]["tokens_by_lang"] = tokens_by_language(tables)
    return report


def verify_run(run_dir: str) -> list[str]:
    """Shard checks (transforms.shards.verify) plus the run's own identities."""
    problems = []
    stats_path = os.path.join(run_dir, "stats.json")
    stats = None
    if os.path.exists(stats_path):
        with open(stats_path) as fh:
            stats = json.load(fh)
        problems += [f"stats.json: {p}" for p in accounting_problems(stats)]
    docs = sorted(glob.glob(os.path.join(run_dir, "documents", "**", "*.parquet"), recursive=True))
    rows = sum(pq.read_metadata(f).num_rows for f in docs)
    if stats is not None and rows != stats["totals"]["kept"]:
        problems.append(f"documents/: {rows} rows, stats.json says {stats['totals']['kept']} kept")
    problems += _duplicate_ids(docs)
    shard_dir = os.path.join(run_dir, "shards")
    if os.path.isdir(shard_dir):
        problems += [f"shards/{p}" for p in verify(shard_dir)]
        try:
            m = read_manifest(shard_dir)
            if stats is not None and m.rows != stats["totals"]["kept"] + extra_copies(stats):
                problems.append(f"shards/{MANIFEST}: {m.rows} rows, stats.json says {stats['totals']['kept']} kept"
                                + (f" and {extra_copies(stats)} rehydrated copies" if extra_copies(stats) else ""))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # already reported by verify()
    return problems


def _duplicate_ids(files: list[str]) -> list[str]:
    """Document ids must be unique in a run: ids that repeat, with where the first two come from."""
    seen: dict = {}
    repeats: dict = {}
    for f in files:
        t = pq.read_table(f, columns=["id", "source"])
        for doc_id, source in zip(t.column("id").to_pylist(), t.column("source").to_pylist()):
            if doc_id in seen:
                repeats.setdefault(doc_id, [seen[doc_id]]).append(source)
            else:
                seen[doc_id] = source
    if not repeats:
        return []
    first, sources = next(iter(sorted(repeats.items())))
    return [f"documents/: {len(repeats)} id(s) appear more than once, e.g. {first} from "
            f"{' and '.join(map(str, sources[:2]))}"]


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return str(n)


NOT_PAGES = "ingest.not_response"  # WARC request, metadata and warcinfo records: never pages


def plural(n: int, word: str) -> str:
    """``1 document``, ``2 documents``."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def funnel_lines(stats: dict, limit: int = 12, drops: bool = True) -> list[str]:
    """The funnel in words: records that are not pages apart from the documents that entered
    curation, kept as a share of those, drops and errors listed apart, columns aligned to the
    longest reason. ``stats.json``'s identity (read = kept + dropped + errored) is unchanged."""
    t = stats["totals"]
    by_reason = t.get("by_reason") or {}
    not_pages = by_reason.get(NOT_PAGES, 0)
    docs = t["read"] - not_pages
    errored = {f"{name}.{r}": n for name, st in stats["stages"].items() for r, n in (st.get("errored") or {}).items()}
    dropped = {k: n for k, n in by_reason.items() if k not in errored and k != NOT_PAGES}
    lines = []
    if not_pages:
        lines.append(f"  {not_pages:,} WARC records are not pages (request, metadata, warcinfo); "
                     f"{plural(docs, 'document')} entered curation")
    share = f"  ({t['kept'] / docs:.1%} of {plural(docs, 'document')})" if docs else ""
    width = len(f"{max(t['kept'], t['dropped'], t['errored'], docs):,}")
    lines += [f"  kept     {t['kept']:>{width},}{share}",
              f"  dropped  {t['dropped'] - not_pages:>{width},}",
              f"  errored  {t['errored']:>{width},}"]
    # annotate mode drops nothing: what its rules would have dropped is counted apart
    would = {f"{name}.{k.split(':', 1)[1]}": n for name, st in stats["stages"].items()
             for k, n in (st.get("counters") or {}).items() if k.startswith("would_drop:")}
    for title, items, most in (("dropped by reason", dropped if drops else {}, limit), ("errors by reason", errored, None),
                               ("would be dropped (annotate mode), by reason", would, limit)):
        items = sorted(items.items(), key=lambda kv: (-kv[1], kv[0]))
        if not items:
            continue
        shown = items[:most] if most else items
        w = max(len(k) for k, _ in shown)
        lines.append(f"  {title}:")
        lines += [f"    {k:<{w}}  {n:>{width},}" for k, n in shown]
        if len(items) > len(shown):
            lines.append(f"    ... {len(items) - len(shown)} more in stats.json")
    return lines


def dup_count_bucket(n: int) -> str:
    """Cluster sizes in powers of two: 1, 2, 3-4, 5-8, 9-16, ..."""
    if n <= 2:
        return str(n)
    high = 1 << (n - 1).bit_length()
    return f"{high // 2 + 1}-{high}"


def _bucket_low(bucket: str) -> int:
    return int(bucket.split("-")[0])


def render_console(r: dict) -> str:
    out = [f"Run directory {r['dir']}"]
    if "totals" in r:
        t = r["totals"]
        out.append(f"\nFunnel: {plural(t['read'], 'record')} read -> {t['kept']:,} kept")
        out += funnel_lines({"totals": {**t, "by_reason": r.get("by_reason", {})},
                             "stages": {s["stage"]: s for s in r["funnel"]}}, drops=False)
        w = max(len(s["stage"]) for s in r["funnel"])
        out.append(f"  {'stage':<{w}} {'in':>10} {'kept':>10}  dropped / errored by reason")
        for s in r["funnel"]:
            reasons = ", ".join([f"{k} {v:,}" for k, v in s["dropped"].items()]
                                + [f"{k} {v:,} (error)" for k, v in s["errored"].items()])
            out.append(f"  {s['stage']:<{w}} {s['in']:>10,} {s['kept']:>10,}  {reasons}".rstrip())
    dd = r.get("dedup")
    if dd:
        sizes = {int(k): v for k, v in (dd.get("cluster_sizes") or {}).items()}
        removed = " and ".join(f"{n:,} by {name}" for name, n in dd["removed"].items())
        out.append(f"\nDedup: {removed} removed; "
                   f"{dd.get('clusters') or 0:,} clusters (largest {max(sizes) if sizes else 0}); "
                   f"components converged in {plural(dd.get('rounds_used') or 0, 'round')}" + ("" if dd.get("converged") else " (NOT converged)"))
    d = r.get("documents")
    if d:
        c = d["chars"]
        out.append(f"\nDocuments: {d['rows']:,} in {plural(d['files'], 'file')}")
        if c:
            out.append("  characters: " + "  ".join(f"p{p} {c[f'p{p}']:,.0f}" for p in PERCENTILES)
                       + f"  max {c['max']:,.0f}  total {c['total']:,}")
        if d.get("dup_count"):
            out.append("  documents each stands for (dup_count): "
                       + ", ".join(f"{k} {v:,}" for k, v in d["dup_count"].items()))
        for title, key in (("languages", "languages"), ("sites", "sites"), ("sections (site/first path segment)", "sections")):
            items = list(d[key].items())
            out.append(f"  {title}: " + ", ".join(f"{k} {v:,}" for k, v in items[:15])
                       + (f", ... ({len(items) - 15} more)" if len(items) > 15 else ""))
    s = r.get("shards")
    if s:
        tk = s["tokenizer"]
        formats = s.get("formats") or {"arrow": {"bytes": s["bytes"]}}
        out.append(f"\nShards: {s['count']} ({s['dtype']}), {plural(s['rows'], 'document')}, {s['tokens']:,} tokens, "
                   + ", ".join(f"{f} {_fmt_bytes(v['bytes'])}" for f, v in formats.items())
                   + f"; tokenizer {tk['name']} (vocab {tk['vocab_size']:,}, EOS {tk['eos_id']}, "
                   f"sha256 {tk['sha256'][:12]}), seed {s['seed']}")
        dt = s["doc_tokens"]
        if dt:
            out.append("  tokens per document: " + "  ".join(f"p{p} {dt[f'p{p}']:,.0f}" for p in PERCENTILES)
                       + f"  max {dt['max']:,.0f}")
        out.append(f"  {'shard':<20} {'rows':>10} {'tokens':>14} {'bytes':>12}" + ("  (all formats)" if len(formats) > 1 else ""))
        for row in s["per_shard"]:
            out.append(f"  {row['file']:<20} {row['rows']:>10,} {row['tokens']:>14,} {_fmt_bytes(row['bytes']):>12}")
        if s.get("megatron_data_path"):
            out.append("  Megatron-LM: --data-path " + s["megatron_data_path"])
    v = r.get("verify")
    if v is not None:
        out.append("\nVerify: OK" if v["ok"] else "\nVerify: FAILED\n  " + "\n  ".join(v["problems"]))
    return "\n".join(out)


def render_html(report: dict) -> str:
    """One self-contained page (no network): the report as JSON, drawn by the page's own script.
    A report with a ``compare`` key is drawn as the comparison of two runs."""
    data = resources.files("thresher.pipeline") / "data"
    page = (data / "report.html").read_text(encoding="utf-8")
    title = report["compare"]["a"] + " vs " + report["compare"]["b"] if "compare" in report else report["dir"]
    values = {"TITLE": html.escape(title), "SCRIPT": (data / "report.js").read_text(encoding="utf-8"),
              "STYLE": (data / "report.css").read_text(encoding="utf-8"), "DATA": script_json(report)}
    # one pass: a document's text holding "@@SCRIPT@@" stays text
    return re.sub(r"@@(TITLE|STYLE|SCRIPT|DATA)@@", lambda m: values[m.group(1)], page)


def script_json(value) -> str:
    """JSON to embed in a <script type="application/json"> element: no "<" at all, so neither
    "</script" nor "<!--" can end or change the element (JSON reads the escape as the same text)."""
    return json.dumps(value).replace("<", "\\u003c")
