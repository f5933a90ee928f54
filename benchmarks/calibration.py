"""Translation parity before and after `thresher calibrate`, on the Debian handbook's translations.

The crawl (``../shared/data/crawl-sample.warc.gz``) holds the Debian handbook in 26 language
folders: the same pages in many languages, so an unbiased recipe keeps about the same share of
each language. This script

1. runs the default recipe on the crawl in annotate mode (every filter scores every document;
   dedup and tokenization off),
2. calibrates on the handbook's pages (reference English; both methods, with and without the
   significance gate) and reports each language's kept share divided by English's, before and
   after, from the recorded signals (the filters' own ``keep``),
3. does the same held out: pages split in two by a seeded hash of the page's file name (a page and
   its translations on the same side), calibrated on one half and evaluated on the other, and
4. checks the thresholds with two real runs of the crawl (default, then with the thresholds file
   laid on the recipe).

    python benchmarks/calibration.py [--crawl PATH] [--work DIR] [--min-docs 30] [--workers 2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow.dataset as ds

from thresher.pipeline.tools.calibrate import calibrate, kept, read_rows, thresholds_yaml

DEFAULT_CRAWL = Path(__file__).resolve().parents[2] / "shared" / "data" / "crawl-sample.warc.gz"
SITE = "/debian-handbook/"
FILTERS = ("gopher_repetition", "gopher_quality", "c4", "fineweb")


def half(url: str, seed: int = 0) -> int:
    """0 or 1 by the page's file name: a page and its translations land on the same side."""
    page = url.rstrip("/").rsplit("/", 1)[-1]
    return hashlib.blake2b(f"{seed}:{page}".encode(), digest_size=8).digest()[0] & 1


def thresher(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "thresher.pipeline", *args], check=True)


def write_config(path: Path, annotate: bool) -> None:
    stages = {name: {"annotate": annotate} for name in FILTERS}
    stages.update({"dedup_exact": {"enabled": False}, "dedup_minhash": {"enabled": False},
                   "tokenize": {"enabled": False}})
    path.write_text(json.dumps({"stages": stages}))  # JSON is YAML


def shares(rows: list[dict], filters) -> dict[str, float]:
    by: dict[str, list] = defaultdict(list)
    for r in rows:
        by[r["lang"]].append(kept(r, filters))
    return {lang: sum(v) / len(v) for lang, v in by.items()}


def real_run_shares(run_dir: Path) -> dict[str, float]:
    """Kept share per language among the handbook's pages that reached the quality filters."""
    kept_n, seen = Counter(), Counter()
    for r in ds.dataset(str(run_dir / "documents"), format="parquet", partitioning="hive").to_table(
            columns=["url", "lang"]).to_pylist():
        if SITE in (r["url"] or ""):
            kept_n[r["lang"]] += 1
            seen[r["lang"]] += 1
    for r in ds.dataset(str(run_dir / "rejected"), format="parquet").to_table(
            columns=["url", "stage", "signals"]).to_pylist():
        if r["stage"] in FILTERS and SITE in (r["url"] or ""):
            seen[json.loads(r["signals"])["lang"]] += 1
    return {lang: kept_n[lang] / n for lang, n in seen.items()}


def table(title: str, langs: list[str], columns: dict[str, dict[str, float]], counts: Counter) -> None:
    print(f"\n{title}")
    names = list(columns)
    print(f"{'lang':<6}{'pages':>6}" + "".join(f"{n:>22}" for n in names))
    for lang in langs:
        cells = []
        for n in names:
            s, ref = columns[n].get(lang), columns[n].get("en")
            cells.append(f"{s:>13.3f} ({s / ref:4.2f}x)" if s is not None and ref else f"{'-':>22}")
        print(f"{lang:<6}{counts[lang]:>6}" + "".join(f"{c:>22}" for c in cells))
    for n in names:
        ratios = [columns[n][lang] / columns[n]["en"] for lang in langs if lang != "en" and lang in columns[n]]
        if ratios:
            print(f"  {n}: ratio to English min {min(ratios):.2f}, max {max(ratios):.2f}, "
                  f"mean |1 - ratio| {statistics.mean(abs(1 - r) for r in ratios):.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crawl", default=str(DEFAULT_CRAWL))
    ap.add_argument("--work", default="/tmp/thresher-calibration")
    ap.add_argument("--min-docs", type=int, default=30, help="documents a language needs to be calibrated")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    common = ["--input", args.crawl, "--workers", str(args.workers), "-q", "--overwrite"]

    annotated = work / "annotate"
    if not (annotated / "stats.json").exists():
        write_config(work / "annotate.yaml", annotate=True)
        thresher("run", str(work / "annotate.yaml"), "--output", str(annotated), *common)
    rows, cfg = read_rows(str(annotated), SITE)
    base = [(name, getattr(cfg.stages, name)) for name in FILTERS]
    counts = Counter(r["lang"] for r in rows)
    print(f"handbook pages that reached the filters: {len(rows)}")

    # 1. Calibrated on every handbook page, evaluated on the same pages (what `thresher calibrate` prints).
    columns, filters_of = {"default": shares(rows, base)}, {}
    for method, z in (("marginal", 0.0), ("sequential", 0.0), ("sequential", 2.0)):
        name = f"{method} z>={z:g}"
        changes, report, new_filters = calibrate(rows, cfg, "en", args.min_docs, method, z)
        columns[name], filters_of[name] = shares(rows, new_filters), (changes, new_filters)
        print(f"{name}: {len(changes)} thresholds moved")
    langs = ["en"] + [r["lang"] for r in report[1:]]
    table("In sample: kept share and its ratio to English's (from the recorded signals)", langs, columns, counts)

    # 2. Held out: calibrated on one half of the pages, evaluated on the other, both ways.
    print("\nHeld out (calibrate on one half of the pages, evaluate on the other): mean |1 - ratio to English|")
    for side in (0, 1):
        fit = [r for r in rows if half(r["url"]) == side]
        held = [r for r in rows if half(r["url"]) != side]
        n_fit, n_held = Counter(r["lang"] for r in fit), Counter(r["lang"] for r in held)
        langs_h = [lang for lang in n_fit if lang and lang != "en" and n_fit[lang] >= 15 and n_held[lang] >= 15]
        cells = []
        for method, z in (("default", None), ("marginal", 0.0), ("sequential", 0.0), ("sequential", 2.0)):
            filters = base if z is None else calibrate(fit, cfg, "en", 15, method, z)[2]
            s = shares(held, filters)
            dev = statistics.mean(abs(1 - s[lang] / s["en"]) for lang in langs_h)
            cells.append(f"{method if z is None else f'{method} z>={z:g}'} {dev:.3f}")
        print(f"  half {side} -> {1 - side} ({len(langs_h)} languages): " + ", ".join(cells))

    # 3. Real runs: the default recipe, and the same with the sequential (z >= 2) thresholds laid on it.
    thresholds = work / "thresholds.yaml"
    thresholds.write_text(thresholds_yaml(filters_of["sequential z>=2"][0], str(annotated), "en"))
    write_config(work / "recipe.yaml", annotate=False)
    thresher("run", str(work / "recipe.yaml"), "--output", str(work / "default"), *common)
    thresher("run", str(work / "recipe.yaml"), str(thresholds), "--output", str(work / "calibrated"), *common)
    table("Real runs: kept share of the handbook's pages and its ratio to English's", langs,
          {"default run": real_run_shares(work / "default"), "calibrated run": real_run_shares(work / "calibrated")},
          counts)
    print(f"\nthresholds: {thresholds}")


if __name__ == "__main__":
    main()
