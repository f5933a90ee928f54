"""The document record that flows between stages, and the outcome of a stage.

A document is a plain ``dict`` (cheap to pickle and encode in Beam): ``id``, ``url``,
``source``, ``offset`` and, depending on how far it got, ``payload`` (bytes), ``html`` or
``text``, plus metadata and signals. A stage is a callable ``doc -> doc | Drop``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pyarrow as pa

# The base columns of documents/*.parquet, in order; stages add their signal columns after these.
DOCUMENT_SCHEMA = pa.schema([
    ("id", pa.string()),
    ("url", pa.string()),
    ("text", pa.string()),
    ("source", pa.string()),
    ("offset", pa.int64()),
    ("date", pa.string()),
    ("content_type", pa.string()),
    ("charset", pa.string()),
    ("warc_record_id", pa.string()),
    ("metadata", pa.string()),
])


@dataclass(frozen=True)
class Drop:
    """A stage's decision to drop a document, with a reason a curator can filter on."""

    reason: str
    detail: str = ""


def make_id(source: str, offset: int | str) -> str:
    """A stable document id from the input file's `source` name and the record's place in it.

    `source` is the file's path relative to the run's input root (see `source_names`): unique
    among a run's inputs, the same on every run, machine and runner, and unchanged when the whole
    crawl moves to another bucket or folder.
    """
    return hashlib.blake2b(f"{source}\x00{offset}".encode(), digest_size=16).hexdigest()


def input_root(paths: list[str]) -> str:
    """The deepest folder holding every path (``gs://b/crawl`` for ``gs://b/crawl/{a,b}/x.gz``),
    or "" when they share none (inputs in two buckets)."""
    folders = [p.rstrip("/").rsplit("/", 1)[0].split("/") if "/" in p else [] for p in paths]
    common: list[str] = []
    for parts in zip(*folders):
        if any(x != parts[0] for x in parts):
            break
        common.append(parts[0])
    root = "/".join(common)
    return "" if root in ("", "gs:", "s3:") or root.endswith(":/") else root


def source_names(paths: list[str], root: str | None = None) -> dict[str, str]:
    """Each input path -> its `source`: the path relative to `root` (by default `input_root`), or
    the whole path where it is not under it. Two files of the same name in different folders
    (``CC-MAIN-2024-10/000.parquet``, ``CC-MAIN-2024-18/000.parquet``) get different sources,
    and so different ids."""
    root = (input_root(paths) if root is None else root).rstrip("/")
    return {p: p[len(root) + 1:] if root and p.startswith(root + "/") else p for p in paths}
