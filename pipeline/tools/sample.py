"""`thresher sample`: look at a rule's victims, or at what was kept, to judge the rule.

Rows are picked by a seeded hash of their id (the same documents on every call with the same
seed), read column-pruned from the run's Parquet files.
"""

from __future__ import annotations

import glob
import json
import os
import textwrap

import pyarrow.parquet as pq

from thresher.pipeline.layout import partition_values
from thresher.transforms.hashing import seeded_fraction


def _files(run_dir: str, folder: str) -> list[str]:
    return sorted(glob.glob(os.path.join(run_dir, folder, "**", "*.parquet"), recursive=True))


def reasons(run_dir: str) -> dict[str, int]:
    with open(os.path.join(run_dir, "stats.json"), encoding="utf-8") as fh:
        return json.load(fh)["totals"]["by_reason"]


def pick(run_dir: str, reason: str | None = None, lang: str | None = None, n: int = 5,
         seed: int = 0) -> list[dict]:
    """``n`` rejected rows whose reason is ``reason`` (``c4.curly_bracket`` or ``curly_bracket``),
    or, without a reason, ``n`` kept documents (of language ``lang`` if given)."""
    rows = []
    if reason:
        stage, _, name = reason.rpartition(".")
        for f in _files(run_dir, "rejected"):
            t = pq.read_table(f)
            for r in t.to_pylist():
                if r["reason"] == name and (not stage or r["stage"] == stage):
                    if lang and (json.loads(r["signals"] or "{}").get("lang") != lang):
                        continue
                    rows.append(r)
    else:
        for f in _files(run_dir, "documents"):
            schema = pq.read_schema(f)
            cols = [c for c in ("id", "url", "text", "lang", "lang_score") if c in schema.names]
            folder = partition_values(f)  # documents/lang=xx/: the language is in the path
            for r in pq.read_table(f, columns=cols).to_pylist():
                r.update(folder)
                if lang and r.get("lang") != lang:
                    continue
                rows.append(r)
    rows.sort(key=lambda r: (seeded_fraction(str(r["id"]), seed), str(r["id"])))
    return rows[:n]


def render(rows: list[dict], chars: int = 600) -> str:
    out = []
    for r in rows:
        head = f"── {r['id']}  {r.get('url') or ''}"
        lines = [head]
        if "reason" in r:
            lines.append(f"   {r['stage']}.{r['reason']}")
            if r.get("detail"):  # a filter's: the signal that crossed its threshold (`alpha_words 0.779 < 0.8`)
                lines.append(f"   >> {r['detail']}")
            signals = json.loads(r.get("signals") or "{}")
            if signals:
                own = f"{r['stage']}_"  # the dropping stage's signals first, then the earlier stages'
                order = sorted(signals, key=lambda k: (not k.startswith(own), k))
                shown = ", ".join(f"{k}={_fmt(signals[k])}" for k in order)
                lines.append(textwrap.fill(shown, 100, initial_indent="   ", subsequent_indent="   "))
        elif r.get("lang") is not None:
            lines.append(f"   lang={r['lang']} lang_score={_fmt(r.get('lang_score'))}")
        text = (r.get("text") or "").strip()
        excerpt = text[:chars] + (" …" if len(text) > chars else "")
        lines.append(textwrap.indent(excerpt, "   │ "))
        out.append("\n".join(lines))
    return "\n\n".join(out)


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)
