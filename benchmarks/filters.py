"""The curation filter chain beside datatrove's, on the same extracted texts, in one run.

Texts: the pages of ``../shared/data/crawl-sample.warc.gz`` after Thresher's ingest and
extraction (all other stages off). Both tools then run, single-threaded, on the same texts:

- each filter on every text (documents/s per core), and the whole chain (language ID, Gopher
  repetition, Gopher quality, C4, FineWeb; a document leaves the chain at its first drop);
- Thresher: ``transforms/`` (``LanguageStage`` with lid.176 + langid.py, ``GopherRepetition``,
  ``GopherQuality``, ``C4Quality``, ``FineWebQuality``);
- datatrove: ``LanguageFilter``, ``GopherRepetitionFilter``, ``GopherQualityFilter``,
  ``C4QualityFilter``, ``FineWebQualityFilter`` with their defaults, run in datatrove's own
  virtualenv (``--datatrove-python``) by calling each filter's ``filter(doc)``; its language model
  is pointed at the same local ``lid.176.ftz`` (no download).

Decisions are compared on the English documents (lid.176 says ``en`` for both), filter by filter
with equal thresholds, and for the quality chain (the four filters in order, C4 rewriting the text
the next one sees) and the whole chain; disagreements are printed by rule. (``quality_chain`` leaves
language ID out: Thresher's language scores deliberately differ where langid.py is consulted.) Target: >= 2x datatrove's chain
throughput and >= 99% equal decisions.

    python benchmarks/filters.py [--crawl PATH] [--datatrove-python /tmp/dtvenv/bin/python]

datatrove's virtualenv: ``python3 -m venv /tmp/dtvenv && /tmp/dtvenv/bin/pip install
"datatrove[processing]" fasttext-numpy2-wheel spacy``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path


DEFAULT_CRAWL = Path(__file__).resolve().parents[2] / "shared" / "data" / "crawl-sample.warc.gz"
FILTERS = ("langid", "gopher_repetition", "gopher_quality", "c4", "fineweb")

DATATROVE_WORKER = r'''
import json, sys, time
from datatrove.data import Document
from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                        GopherRepetitionFilter, LanguageFilter)
from fasttext.FastText import _FastText

texts = [json.loads(l)["text"] for l in open(sys.argv[1], encoding="utf-8")]
lang = LanguageFilter()
lang.model._model = _FastText(sys.argv[2])  # the local lid.176.ftz, not a download
filters = {"langid": lang, "gopher_repetition": GopherRepetitionFilter(), "gopher_quality": GopherQualityFilter(),
           "c4": C4QualityFilter(), "fineweb": FineWebQualityFilter()}

def decide(f, doc):
    out = f.filter(doc)
    if out is True or (isinstance(out, bool) and out):
        return None
    return out[1] if isinstance(out, tuple) else "dropped"

# warm-up: load models and tokenizers outside the timings
for f in filters.values():
    decide(f, Document(text="Warm up text. " * 20, id="w"))
result = {"per_filter": {}, "seconds": {}, "langs": []}
for name, f in filters.items():
    t0 = time.perf_counter()
    out = []
    for i, t in enumerate(texts):
        doc = Document(text=t, id=str(i))
        out.append(decide(f, doc))
        if name == "langid":
            result["langs"].append(doc.metadata.get("language"))
    result["seconds"][name] = time.perf_counter() - t0
    result["per_filter"][name] = out
for key, names in (("chain", list(filters)), ("quality_chain", list(filters)[1:])):
    t0 = time.perf_counter()
    chain = []
    for i, t in enumerate(texts):
        doc = Document(text=t, id=str(i))
        reason = None
        for name in names:
            reason = decide(filters[name], doc)
            if reason:
                reason = f"{name}.{reason}"
                break
        chain.append(reason)
    result["seconds"][key] = time.perf_counter() - t0
    result[key] = chain
json.dump(result, sys.stdout)
'''


def extracted_pages(crawl: str, work: str, columns: tuple[str, ...] = ("text",)) -> list[dict]:
    """The crawl's pages after Thresher's ingest and extraction only (every other stage off)."""
    from thresher.pipeline.config import Config
    from thresher.pipeline.engines.run import run
    from thresher.transforms import stage as registry
    import pyarrow.parquet as pq

    cfg = Config()
    cfg.input = [crawl]
    cfg.output = os.path.join(work, "extracted")
    for s in registry.stages():  # every stage after extraction off
        if s.optional and s.order > registry.get("extract").order:
            getattr(cfg.stages, s.name).enabled = False
    run(cfg)
    rows = []
    for f in sorted(glob.glob(os.path.join(cfg.output, "documents", "*.parquet"))):
        rows += pq.read_table(f, columns=list(columns)).to_pylist()
    return rows


def thresher(texts: list[str]) -> dict:
    from thresher.transforms.filters.base import FilterStage
    from thresher.transforms.filters.c4 import C4Quality
    from thresher.transforms.filters.fineweb import FineWebQuality
    from thresher.transforms.filters.gopher import GopherQuality, GopherRepetition
    from thresher.transforms.filters.langid import LanguageStage
    from thresher.transforms.lid_models import LanguageIdentifier
    from thresher.transforms.document import Drop

    stages = {"langid": LanguageStage(LanguageIdentifier()),
              "gopher_repetition": FilterStage(GopherRepetition()), "gopher_quality": FilterStage(GopherQuality()),
              "c4": FilterStage(C4Quality()), "fineweb": FilterStage(FineWebQuality())}
    for s in stages.values():
        s({"id": "w", "text": "Warm up text. " * 20})
    result = {"per_filter": {}, "seconds": {}, "langs": []}
    for name, stage in stages.items():
        t0 = time.perf_counter()
        out = []
        for i, t in enumerate(texts):
            doc = {"id": str(i), "text": t}
            r = stage(doc)
            out.append(r.reason if isinstance(r, Drop) else None)
            if name == "langid":
                result["langs"].append(doc.get("lang"))
        result["seconds"][name] = time.perf_counter() - t0
        result["per_filter"][name] = out
    for key, names in (("chain", list(stages)), ("quality_chain", list(stages)[1:])):
        t0 = time.perf_counter()
        chain = []
        for i, t in enumerate(texts):
            doc = {"id": str(i), "text": t}
            reason = None
            for name in names:
                r = stages[name](doc)
                if isinstance(r, Drop):
                    reason = f"{name}.{r.reason}"
                    break
            chain.append(reason)
        result["seconds"][key] = time.perf_counter() - t0
        result[key] = chain
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crawl", default=str(DEFAULT_CRAWL))
    ap.add_argument("--datatrove-python", default=os.environ.get("DATATROVE_PYTHON", "/tmp/dtvenv/bin/python"))
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="filters-bench-")
    texts = [r["text"] for r in extracted_pages(args.crawl, work)]
    path = os.path.join(work, "texts.jsonl")
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts)
    mb = sum(len(t.encode()) for t in texts) / 1e6
    print(f"{len(texts)} extracted texts ({mb:.1f} MB) from {args.crawl}\n")

    from thresher.transforms.lid_models import model_path

    worker = os.path.join(work, "dt_worker.py")
    Path(worker).write_text(DATATROVE_WORKER)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([args.datatrove_python, worker, path, model_path()], capture_output=True, text=True, env=env)
    if proc.returncode:
        sys.exit(f"datatrove run failed:\n{proc.stderr[-3000:]}")
    dt = json.loads(proc.stdout)
    ours = thresher(texts)

    print("| filter            | Thresher docs/s | datatrove docs/s | ratio |")
    print("| ----------------- | --------------: | ---------------: | ----: |")
    for name in (*FILTERS, "chain", "quality_chain"):
        a, b = len(texts) / ours["seconds"][name], len(texts) / dt["seconds"][name]
        print(f"| {name:17} | {a:15,.0f} | {b:16,.0f} | {a / b:4.2f}x |")

    english = [i for i, (a, b) in enumerate(zip(ours["langs"], dt["langs"])) if a == b == "en"]
    print(f"\nagreement on the {len(english)} English documents (each filter on the same original text):\n")
    print("| filter            | same decision | disagreements (Thresher -> datatrove) |")
    print("| ----------------- | ------------: | -------------------------------------- |")
    for name in FILTERS[1:]:
        same = sum((ours["per_filter"][name][i] is None) == (dt["per_filter"][name][i] is None) for i in english)
        diff = Counter(f"{ours['per_filter'][name][i] or 'keep'} -> {dt['per_filter'][name][i] or 'keep'}"
                       for i in english
                       if (ours["per_filter"][name][i] is None) != (dt["per_filter"][name][i] is None))
        print(f"| {name:17} | {same / max(1, len(english)):12.1%} | "
              f"{', '.join(f'{k} ({v})' for k, v in diff.most_common(6)) or '-'} |")
    for key in ("quality_chain", "chain"):
        same = sum((ours[key][i] is None) == (dt[key][i] is None) for i in english)
        diff = Counter(f"{ours[key][i] or 'keep'} -> {dt[key][i] or 'keep'}" for i in english
                       if (ours[key][i] is None) != (dt[key][i] is None))
        print(f"| {key:17} | {same / max(1, len(english)):12.1%} | "
              f"{', '.join(f'{k} ({v})' for k, v in diff.most_common(4)) or '-'} |")
    kept = Counter(r is None for r in ours["chain"])
    kept_dt = Counter(r is None for r in dt["chain"])
    print(f"\nkept by the chain, all languages: Thresher {kept[True]}, datatrove {kept_dt[True]} of {len(texts)}")


if __name__ == "__main__":
    main()
