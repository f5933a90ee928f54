"""The whole curation chain beside datatrove's, from the WARC file to the last filter, per core.

Both tools read the same crawl (``../shared/data/crawl-sample.warc.gz`` by default) and run
extraction, language ID, Gopher repetition, Gopher quality, C4 and FineWeb, one worker, every
language kept, nothing else (no URL filter, PII, dedup or tokenization):

- datatrove: its own pipeline (``WarcReader`` -> ``Trafilatura`` -> ``LanguageFilter`` ->
  ``GopherRepetitionFilter`` -> ``GopherQualityFilter`` -> ``C4QualityFilter`` ->
  ``FineWebQualityFilter``, defaults) on ``LocalPipelineExecutor`` with one task, in its own
  virtualenv (``--datatrove-python``); its language model is pointed at the same local
  ``lid.176.ftz`` (no download). Its time per step comes from its ``stats.json``.
- Thresher: ``thresher run`` on the local runner with the same stages, with resiliparse (the
  default) and with trafilatura, one worker; then resiliparse with two workers. Its time per stage
  comes from ``stats.json`` (worker seconds inside each stage).

It prints pages/s of the whole chain (pages that reach extraction over the wall time), ms per
document entering each stage, and the ratios the targets are stated in:

- filter chain after extraction <= 5 ms per page;
- whole chain with resiliparse >= 8x datatrove's pages/s, with trafilatura on both sides >= 2x;
- 2 local workers >= 1.8x one worker.

    python benchmarks/chain.py [--crawl PATH] [--datatrove-python /tmp/dtvenv/bin/python] [--runs 1] [--scale N]

datatrove's virtualenv: ``python3 -m venv /tmp/dtvenv && /tmp/dtvenv/bin/pip install
"datatrove[processing]" fasttext-numpy2-wheel spacy lxml_html_clean warcio faust-cchardet python-magic``
(its WARC reader needs the last three; trafilatura needs ``lxml_html_clean`` with lxml 5.2 and later). ``--skip-datatrove`` runs Thresher only.
With ``--runs 3`` every configuration runs three times and the median wall is reported. ``--scale 4``
also runs one and two workers on the crawl four times over (links under distinct names), where the
workers' start-up (a few seconds of imports per process) weighs a quarter as much.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_CRAWL = Path(__file__).resolve().parents[2] / "shared" / "data" / "crawl-sample.warc.gz"
CHAIN = ("extract", "langid", "gopher_repetition", "gopher_quality", "c4", "fineweb")
FILTERS = CHAIN[1:]

DATATROVE_WORKER = r'''
import json, sys, time
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.extractors import Trafilatura
from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                        GopherRepetitionFilter, LanguageFilter)
from datatrove.pipeline.readers import WarcReader
import datatrove.utils.lid

crawl, model, logs = sys.argv[1:4]
datatrove.utils.lid.cached_asset_path_or_download = lambda *a, **k: model  # the local lid.176.ftz, not a download
lang = LanguageFilter()
folder, name = crawl.rsplit("/", 1)
steps = [WarcReader(folder, glob_pattern=name), Trafilatura(), lang, GopherRepetitionFilter(), GopherQualityFilter(), C4QualityFilter(), FineWebQualityFilter()]
t0 = time.perf_counter()
LocalPipelineExecutor(pipeline=steps, tasks=1, workers=1, logging_dir=logs).run()
wall = time.perf_counter() - t0
print(json.dumps({"wall": wall, "stats": json.load(open(logs + "/stats.json"))}))
'''
DATATROVE_NAMES = {"Trafilatura": "extract", "Language ID": "langid", "Gopher Repetition": "gopher_repetition",
                   "Gopher Quality": "gopher_quality", "C4 Quality": "c4", "FineWeb Quality": "fineweb"}


def copies(crawl: str, work: str, n: int) -> list[str]:
    """The crawl n times, as links under distinct names (distinct sources: distinct document ids)."""
    folder = os.path.join(work, f"copies-{n}")
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i in range(n):
        path = os.path.join(folder, f"copy{i}-{os.path.basename(crawl)}")
        if not os.path.exists(path):
            os.symlink(os.path.abspath(crawl), path)
        paths.append(path)
    return paths


def thresher_run(crawl: str | list[str], work: str, backend: str, workers: int) -> dict:
    """One run of the chain; {wall, pages, stage: (docs in, seconds)}."""
    from thresher.pipeline.config import Config
    from thresher.pipeline.engines.run import run
    from thresher.transforms import stage as registry

    cfg = Config()
    cfg.input = [crawl] if isinstance(crawl, str) else crawl
    cfg.output = tempfile.mkdtemp(prefix=f"{backend}-{workers}-", dir=work)
    cfg.runner.workers = workers
    cfg.stages.extract.backend = backend
    for s in registry.stages():
        if s.optional and s.name not in CHAIN:
            getattr(cfg.stages, s.name).enabled = False
    t0 = time.perf_counter()
    stats = run(cfg).stats
    wall = time.perf_counter() - t0
    stages = {name: (stats["stages"][name]["in"], stats["stages"][name]["seconds"]) for name in CHAIN}
    return {"wall": wall, "pages": stages["extract"][0], "stages": stages}


def datatrove_run(python: str, crawl: str, work: str) -> dict:
    from thresher.transforms.lid_models import model_path

    worker = os.path.join(work, "dt_chain.py")
    Path(worker).write_text(DATATROVE_WORKER)
    logs = tempfile.mkdtemp(prefix="dt-logs-", dir=work)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([python, worker, os.path.abspath(crawl), model_path(), logs], capture_output=True, text=True,
                          env=env)
    if proc.returncode:
        sys.exit(f"datatrove run failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    stages = {}
    for step in out["stats"]:
        name = next((ours for theirs, ours in DATATROVE_NAMES.items() if theirs in step.get("name", "")), None)
        if name is None:
            continue
        counts = step.get("stats", {})
        docs_in = counts.get("total", counts.get("forwarded", 0) + counts.get("dropped", 0))
        stages[name] = (docs_in, step["time_stats"]["total"])
    return {"wall": out["wall"], "pages": stages["extract"][0], "stages": stages}


def median_run(fn, runs: int) -> dict:
    results = [fn() for _ in range(runs)]
    results.sort(key=lambda r: r["wall"])
    return results[len(results) // 2]


def ms(r: dict, stage: str) -> float:
    n, s = r["stages"].get(stage, (0, 0.0))
    return 1000 * s / n if n else float("nan")


def filter_ms_per_page(r: dict) -> float:
    """Worker time in the filters after extraction per page that reached language ID."""
    pages = r["stages"]["langid"][0]
    return 1000 * sum(r["stages"][f][1] for f in FILTERS) / pages if pages else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crawl", default=str(DEFAULT_CRAWL))
    ap.add_argument("--datatrove-python", default=os.environ.get("DATATROVE_PYTHON", "/tmp/dtvenv/bin/python"))
    ap.add_argument("--skip-datatrove", action="store_true")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--scale", type=int, default=0, metavar="N",
                    help="also run one and two workers (resiliparse) on the crawl N times over: a job long "
                         "enough that the workers' start-up weighs less")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    work = tempfile.mkdtemp(prefix="chain-bench-")
    runs = {}
    if not args.skip_datatrove:
        runs["datatrove"] = median_run(lambda: datatrove_run(args.datatrove_python, args.crawl, work), args.runs)
    runs["Thresher (trafilatura)"] = median_run(lambda: thresher_run(args.crawl, work, "trafilatura", 1), args.runs)
    runs["Thresher (resiliparse)"] = median_run(lambda: thresher_run(args.crawl, work, "resiliparse", 1), args.runs)
    runs["Thresher (resiliparse, 2 workers)"] = median_run(lambda: thresher_run(args.crawl, work, "resiliparse", 2),
                                                           args.runs)

    names = list(runs)
    print(f"\n{args.crawl}: pages reaching extraction: "
          + ", ".join(f"{n} {r['pages']:,}" for n, r in runs.items()) + "\n")
    print("| | " + " | ".join(names) + " |")
    print("| --- |" + " ---: |" * len(names))
    base = runs.get("datatrove")

    def rate(r):
        return r["pages"] / r["wall"]

    print("| whole chain, pages/s | " + " | ".join(  # ratios per core: one-worker runs only
        f"{rate(r):.1f}" + (f" ({rate(r) / rate(base):.1f}x)" if base and r is not base and "2 workers" not in n else "")
        for n, r in runs.items()) + " |")
    for stage in CHAIN:
        print(f"| {stage}, ms/doc | " + " | ".join(f"{ms(r, stage):.2f}" for r in runs.values()) + " |")
    print("| filters after extraction, ms/page | " + " | ".join(f"{filter_ms_per_page(r):.2f}" for r in runs.values())
          + " |")
    print("\n(ms per document entering each stage, worker time; 2 workers: summed over both.)\n")

    one, two = runs["Thresher (resiliparse)"], runs["Thresher (resiliparse, 2 workers)"]
    traf = runs["Thresher (trafilatura)"]
    targets = [("filter chain after extraction <= 5 ms/page (resiliparse run)", f"{filter_ms_per_page(one):.2f} ms",
                filter_ms_per_page(one) <= 5),
               ("2 workers >= 1.8x one worker (resiliparse)", f"{rate(two) / rate(one):.2f}x", rate(two) / rate(one) >= 1.8)]
    if base:
        targets[1:1] = [("resiliparse >= 8x datatrove pages/s", f"{rate(one) / rate(base):.2f}x", rate(one) / rate(base) >= 8),
                        ("trafilatura on both sides >= 2x", f"{rate(traf) / rate(base):.2f}x", rate(traf) / rate(base) >= 2)]
    print("| target | measured | met |")
    print("| --- | ---: | :-: |")
    for label, value, ok in targets:
        print(f"| {label} | {value} | {'yes' if ok else 'no'} |")
    walls = {n: round(r["wall"], 1) for n, r in runs.items()}
    print(f"\nwall seconds: {walls} (median of {args.runs})")
    if args.scale:
        inputs = copies(args.crawl, work, args.scale)
        big = {w: median_run(lambda: thresher_run(inputs, work, "resiliparse", w), args.runs) for w in (1, 2)}
        print(f"\nThe crawl {args.scale} times over ({big[1]['pages']:,} pages), resiliparse: one worker "
              f"{rate(big[1]):.1f} pages/s ({big[1]['wall']:.1f} s), two workers {rate(big[2]):.1f} pages/s "
              f"({big[2]['wall']:.1f} s): {rate(big[2]) / rate(big[1]):.2f}x")


if __name__ == "__main__":
    main()
