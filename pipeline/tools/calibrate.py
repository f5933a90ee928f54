"""`thresher calibrate`: per-language thresholds from an annotate-mode run (FineWeb-2's idea).

Thresholds tuned on English misjudge other languages: punctuation counts as words without letters,
scripts repeat characters differently. For each language with enough documents and each rule a
filter declares calibratable (its ``RULES``: threshold field -> (signal, "<" or ">")), the new
threshold removes the same share of that language's documents as the rule, at the run's threshold,
removes of the reference language's. The kept shares before and after are computed by the filters'
own ``keep`` over the signals the run recorded, so they are what a run with the thresholds keeps
(up to annotate mode's one difference: C4's line removal does not change what later filters see).
"""

from __future__ import annotations

import dataclasses
import glob
import math
import os

import pyarrow.dataset as ds
import yaml

from thresher.pipeline.config import load
from thresher.transforms import stage as registry
from thresher.transforms.filters.base import Filter
from thresher.transforms.stage import ConfigError


@dataclasses.dataclass
class Change:
    stage: str
    field: str
    lang: str
    old: float
    new: float
    ref_share: float  # share of the reference language the rule removes
    old_share: float  # share of this language it removed at the old threshold
    new_share: float


def enabled_filters(cfg) -> list[tuple[str, Filter]]:
    """(stage, params) of the enabled filters with calibratable rules."""
    out = []
    for s in registry.stages():
        params = getattr(cfg.stages, s.name)
        if isinstance(params, Filter) and params.RULES and s.enabled(params):
            out.append((s.name, params))
    return out


def read_rows(run_dir: str, url_contains: str | None = None) -> tuple[list[dict], object]:
    """The run's documents (their signals, language and URL; not the text) and its config."""
    if not os.path.exists(os.path.join(run_dir, "stats.json")):
        raise ConfigError(f"{run_dir}: no stats.json (is it a run directory?)")
    cfg = load(os.path.join(run_dir, "config.yaml"))
    filters = enabled_filters(cfg)
    not_annotated = [name for name, p in filters if not p.annotate]
    if not_annotated:
        raise ConfigError(f"{run_dir}: calibration needs an annotate-mode run (every document scored by every "
                          f"filter), but {', '.join(not_annotated)} dropped documents: rerun with annotate: true")
    if not glob.glob(os.path.join(run_dir, "documents", "**", "*.parquet"), recursive=True):
        raise ConfigError(f"{run_dir}: no documents/*.parquet")
    dataset = ds.dataset(os.path.join(run_dir, "documents"), format="parquet", partitioning="hive")
    prefixes = tuple(f"{name}_" for name, _ in filters)
    columns = [c for c in dataset.schema.names if c in ("lang", "url") or c.startswith(prefixes)]
    rows = dataset.to_table(columns=columns).to_pylist()
    if url_contains:
        rows = [r for r in rows if url_contains in (r.get("url") or "")]
    return rows, cfg


def signals(row: dict, stage: str) -> dict:
    n = len(stage) + 1
    return {k[n:]: v for k, v in row.items() if k.startswith(f"{stage}_") and k != f"{stage}_reason"}


def fires(value, op: str, limit) -> bool:
    return value is not None and (value < limit if op == "<" else value > limit)


def active(limit) -> bool:
    """A threshold of 0 or below switches its rule off (as the filters read it)."""
    return bool(limit) and limit > 0


def matching_threshold(values: list[float], share: float, op: str, old, integer: bool):
    """The threshold nearest `old` at which the rule ``value op threshold`` removes `share` of
    `values` (k = share x n of them; as near as ties allow). Every threshold between the k-th and
    the (k+1)-th value removes the same documents, so `old` stays when it already does; otherwise
    the new one is the bound nearest it, or the midpoint when that bound is exclusive."""
    v = sorted(float(x) for x in values)
    n = len(v)
    k = min(n, round(share * n))
    inf = math.inf
    if op == "<":  # removes v < t: k of them for t in (v[k-1], v[k]]
        lo, hi = (v[k - 1] if k else -inf), (v[k] if k < n else inf)
        if integer:
            lo, hi = (math.floor(lo) + 1 if lo > -inf else -inf), (math.ceil(hi) if hi < inf else inf)
            return int(old if lo <= old <= hi else (hi if old > hi else lo))
        if lo < old <= hi:
            return old
        return hi if old > hi else (lo + hi) / 2 if hi < inf else lo + 1e-9
    # ">": removes v > t: k of them for t in [v[n-1-k], v[n-k])
    lo, hi = (v[n - 1 - k] if k < n else -inf), (v[n - k] if k else inf)
    if integer:
        lo, hi = (math.floor(lo) if lo > -inf else -inf), (math.ceil(hi) - 1 if hi < inf else inf)
        return int(old if lo <= old <= hi else (lo if old < lo else hi))
    if lo <= old < hi:
        return old
    return lo if old < lo else (lo + hi) / 2 if lo > -inf else hi - 1e-9


def kept(row: dict, filters: list[tuple[str, Filter]]) -> bool:
    lang = row.get("lang")
    return all(p.for_lang(lang).keep(signals(row, name), lang) is None for name, p in filters)


METHODS = ("sequential", "marginal")


def z_score(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-proportion z statistic (pooled): how many standard errors apart k1/n1 and k2/n2 are."""
    pooled = (k1 + k2) / (n1 + n2)
    var = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    diff = abs(k1 / n1 - k2 / n2)
    return math.inf if var == 0 and diff else 0.0 if var == 0 else diff / math.sqrt(var)


def calibrate(rows: list[dict], cfg, reference: str = "en", min_docs: int = 50, method: str = "sequential",
              min_z: float = 2.0):
    """-> (changes, per-language report rows, the filters with the new overrides).

    ``marginal``: each rule removes the share of a language's documents it removes of the
    reference's. ``sequential``: the rules in recipe order, each matching the share the rule removes
    of the reference documents that passed the rules before it, among the language's documents that
    passed its own (new) rules before it; rules that remove the same documents in the reference
    (alpha words and C4's sentences on code pages) then do not add up in another language, and the
    calibrated rules together keep the reference's share of every language.

    A threshold moves only where the language's share differs from the reference's by at least
    `min_z` standard errors (a two-proportion z test): with a few dozen documents a language, a
    smaller difference is as likely noise, and matching it made held-out parity worse
    (benchmarks/calibration.py)."""
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    filters = enabled_filters(cfg)
    by_lang: dict[str, list[dict]] = {}
    for r in rows:
        by_lang.setdefault(r.get("lang"), []).append(r)
    ref = by_lang.get(reference, [])
    if len(ref) < min_docs:
        raise ConfigError(f"reference language {reference!r} has {len(ref)} documents in the run, fewer than "
                          f"--min-docs {min_docs}")
    langs = sorted(lang for lang, rs in by_lang.items() if lang and lang != reference and len(rs) >= min_docs)
    sequential = method == "sequential"
    survivors = {lang: by_lang[lang] for lang in [reference] + langs}
    changes: list[Change] = []
    new_filters = []
    for name, params in filters:
        numeric = params.numeric_fields()
        overrides = {lang: dict(o) for lang, o in params.languages.items()}
        for field, (signal, op, *exempt) in params.RULES.items():
            ref_limit = getattr(params.for_lang(reference), field)
            if not active(ref_limit):
                continue
            column = f"{name}_{signal}"

            def applies(r: dict) -> bool:
                return r.get(column) is not None and not any(r.get(f"{name}_{e}") for e in exempt)

            ref_values = [r[column] for r in survivors[reference] if applies(r)]
            if not ref_values:
                continue
            ref_hits = sum(fires(v, op, ref_limit) for v in ref_values)
            share = ref_hits / len(ref_values)
            limits = {reference: ref_limit}
            for lang in langs:
                values = [r[column] for r in survivors[lang] if applies(r)]
                old = getattr(params.for_lang(lang), field)
                limits[lang] = old
                if not values or not params.decides_with(field, lang):
                    continue
                hits = sum(fires(v, op, old) for v in values)
                if z_score(hits, len(values), ref_hits, len(ref_values)) < min_z:
                    continue  # not distinguishable from the reference's share
                new = matching_threshold(values, share, op, old, numeric[field] is int)
                if new == old:
                    continue
                limits[lang] = new
                changes.append(Change(name, field, lang, old, new, share,
                                      sum(fires(v, op, old) for v in values) / len(values),
                                      sum(fires(v, op, new) for v in values) / len(values)))
                overrides.setdefault(lang, {})[field] = new
            if sequential:
                survivors = {lang: [r for r in rs if not (applies(r) and fires(r[column], op, limits[lang]))]
                             for lang, rs in survivors.items()}
        new_params = dataclasses.replace(params, languages=overrides)
        new_filters.append((name, new_params))
        if sequential:  # what reaches the next filter: what this one keeps, by all its rules
            survivors = {lang: [r for r in rs if new_params.for_lang(lang).keep(signals(r, name), lang) is None]
                         for lang, rs in survivors.items()}
    report = []
    for lang in [reference] + langs:
        rs = by_lang[lang]
        report.append({"lang": lang, "documents": len(rs),
                       "kept_before": sum(kept(r, filters) for r in rs) / len(rs),
                       "kept_after": sum(kept(r, new_filters) for r in rs) / len(rs)})
    ref_row = report[0]
    for row in report:
        row["ratio_before"] = row["kept_before"] / ref_row["kept_before"] if ref_row["kept_before"] else math.nan
        row["ratio_after"] = row["kept_after"] / ref_row["kept_after"] if ref_row["kept_after"] else math.nan
    return changes, report, new_filters


def thresholds_yaml(changes: list[Change], run_dir: str, reference: str) -> str:
    """A config fragment: ``stages.<filter>.languages.<lang>.<field>`` for every moved threshold."""
    stages: dict = {}
    for c in sorted(changes, key=lambda c: (c.stage, c.lang, c.field)):
        stages.setdefault(c.stage, {"languages": {}})["languages"].setdefault(c.lang, {})[c.field] = c.new
    head = (f"# thresher calibrate {run_dir} --reference {reference}: per-language thresholds that remove\n"
            f"# the share of each language's documents that each rule removes of {reference!r}'s.\n"
            "# Use it after a recipe: thresher run recipe.yaml thresholds.yaml\n")
    return head + yaml.safe_dump({"stages": stages}, sort_keys=False, allow_unicode=True)


def render(changes: list[Change], report: list[dict], reference: str) -> str:
    lines = [f"{'language':<9}{'docs':>6}  {'kept before':>11}  {'/ ' + reference:>7}  {'kept after':>10}  {'/ ' + reference:>7}"]
    for r in report:
        lines.append(f"{r['lang']:<9}{r['documents']:>6}  {r['kept_before']:>11.3f}  {r['ratio_before']:>7.2f}  "
                     f"{r['kept_after']:>10.3f}  {r['ratio_after']:>7.2f}")
    lines.append("")
    if not changes:
        lines.append("no threshold moved")
        return "\n".join(lines)
    lines.append(f"{'rule':<44}{'lang':<6}{'old':>9}{'new':>10}  removes ({reference}: share)")
    for c in sorted(changes, key=lambda c: (c.stage, c.field, c.lang)):
        lines.append(f"{c.stage + '.' + c.field:<44}{c.lang:<6}{c.old:>9.4g}{c.new:>10.4g}  "
                     f"{c.old_share:.3f} -> {c.new_share:.3f} ({c.ref_share:.3f})")
    return "\n".join(lines)
