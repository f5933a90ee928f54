"""Texts named on the command line: a run directory's kept documents, a selection of them
(``RUN:lang=xx``) or of its dropped ones (``RUN:reason=stage.reason``), a JSONL file or a Parquet
file (or folder): what `thresher classifier train` learns from."""

from __future__ import annotations

import glob
import gzip
import json
import os

import pyarrow.parquet as pq

from thresher.pipeline.tools.sample import pick
from thresher.transforms.stage import ConfigError


def parse_source(src: str) -> tuple[str, dict]:
    """``RUN:reason=R`` / ``RUN:lang=L`` -> (RUN, {"reason": R} / {"lang": L}); anything else -> (src, {})."""
    head, sep, tail = src.rpartition(":")
    if sep and "=" in tail and os.path.isdir(head):
        key, _, value = tail.partition("=")
        if key not in ("reason", "lang"):
            raise ConfigError(f"{src}: a run selection is RUN:reason=REASON or RUN:lang=LANG, not {key}=")
        return head, {key: value}
    return src, {}


def read_texts(src: str, field: str = "text") -> list[str]:
    """Every non-empty text of the source, in a stable order."""
    path, selection = parse_source(src)
    if os.path.isdir(path) and os.path.exists(os.path.join(path, "stats.json")):
        rows = pick(path, reason=selection.get("reason"), lang=selection.get("lang"), n=2**62)
        texts = [r.get("text") for r in rows]
    elif os.path.isdir(path) or path.endswith(".parquet"):
        files = sorted(glob.glob(os.path.join(path, "**", "*.parquet"), recursive=True)) if os.path.isdir(path) else [path]
        if not files:
            raise ConfigError(f"{src}: no Parquet files there (and no stats.json: not a run directory)")
        texts = []
        for f in files:
            names = pq.read_schema(f).names
            if field not in names:
                raise ConfigError(f"{f}: no column {field!r} (columns: {', '.join(names)})")
            texts += pq.read_table(f, columns=[field]).column(field).to_pylist()
    elif path.endswith((".jsonl", ".jsonl.gz", ".json.gz", ".ndjson")):
        texts = []
        opener = gzip.open if path.endswith(".gz") else open
        try:
            with opener(path, "rt", encoding="utf-8") as fh:
                for i, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        texts.append(json.loads(line).get(field))
                    except (json.JSONDecodeError, AttributeError):
                        raise ConfigError(f"{path}:{i}: not a JSON object") from None
        except FileNotFoundError:
            raise ConfigError(f"{src}: no such file") from None
    elif not os.path.exists(path):
        raise ConfigError(f"{src}: no such file or run directory")
    else:
        raise ConfigError(f"{src}: a run directory (optionally :reason=... or :lang=...), JSONL or Parquet")
    return [t for t in texts if isinstance(t, str) and t.strip()]
