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
    """A stable document id from the input file's name and the record's place in it.

    The same file gives the same ids on every run, machine and runner; the file's name,
    not its directory, is hashed, so moving a crawl between buckets keeps its ids.
    """
    return hashlib.blake2b(f"{source}\x00{offset}".encode(), digest_size=16).hexdigest()


def source_name(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]
