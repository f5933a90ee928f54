"""Cut the embedded sample (pipeline/data/sample.warc.gz) from the shared crawl.

The sample is real bytes: whole gzip members copied from ``crawl-sample.warc.gz``, the
warcinfo record first, then request/response pairs chosen by a seeded draw stratified by site
and language folder, so every site, many languages, the EUC-KR pages of the Apache manual,
its copied English pages, some 404s and non-HTML responses are in it.

    python benchmarks/make_sample.py ../shared/data/crawl-sample.warc.gz pipeline/data/sample.warc.gz
"""

from __future__ import annotations

import argparse
import random
from collections import defaultdict
from pathlib import Path


from thresher.transforms.http_response import HttpError, parse_response  # noqa: E402
from thresher.transforms.warc import WarcRecord, iter_warc  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--pages", type=int, default=420)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    records = []
    with open(args.src, "rb") as fh:
        for item in iter_warc(fh):
            if isinstance(item, WarcRecord):
                records.append(item)
    size = Path(args.src).stat().st_size
    bounds = {r.offset: (records[i + 1].offset if i + 1 < len(records) else size) for i, r in enumerate(records)}
    request_of = {r.headers.get("warc-record-id"): r for r in records if r.type == "request"}

    strata = defaultdict(list)  # (site, language folder or kind) -> responses
    for r in records:
        if r.type != "response":
            continue
        url = r.headers.get("warc-target-uri", "")
        parts = url.split("/", 3)[3].split("/") if url.count("/") >= 3 else [""]
        site = parts[0]
        try:
            resp = parse_response(r.body)
        except HttpError:
            continue
        kind = "html" if resp.mime_type == "text/html" and resp.status == 200 else f"{resp.status}-{resp.mime_type}"
        sub = parts[1] if len(parts) > 2 else ""
        strata[(site, kind, sub if kind == "html" else "")].append(r)

    rng = random.Random(args.seed)
    keys = sorted(strata)
    chosen: list[WarcRecord] = []
    # one of each stratum first (every site, language folder and odd response kind), then fill
    for k in keys:
        chosen.append(rng.choice(strata[k]))
    rest = [r for k in keys for r in strata[k] if r not in chosen]
    rng.shuffle(rest)
    chosen += rest[: max(0, args.pages - len(chosen))]
    chosen = sorted(chosen[: args.pages], key=lambda r: r.offset)

    picked = [r for r in records if r.type == "warcinfo"][:1]
    for r in chosen:
        req = request_of.get(r.headers.get("warc-concurrent-to"))
        if req is not None:
            picked.append(req)
        picked.append(r)
    with open(args.src, "rb") as src, open(args.dst, "wb") as out:
        for r in picked:
            src.seek(r.offset)
            out.write(src.read(bounds[r.offset] - r.offset))
    print(f"{len(chosen)} responses, {len(picked)} records, {Path(args.dst).stat().st_size / 1e6:.2f} MB -> {args.dst}")


if __name__ == "__main__":
    main()
