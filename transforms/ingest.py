"""Input records to documents: WARC/WET, JSONL and Parquet, streamed from a binary file object.

Every reader yields, in file order, either a document ``dict`` or a `Rejection` saying why a
record (or an unreadable span) did not become one. Nothing is skipped silently.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from dataclasses import dataclass, field
from functools import partial
from typing import BinaryIO, Iterator, Union

from thresher.transforms.document import Drop, make_id
from thresher.transforms.encoding import decode_page
from thresher.transforms.extract import control_char_ratio, looks_binary
from thresher.transforms.http_response import HttpError, parse_response
from thresher.transforms.stage import Stage, check, register
from thresher.transforms.warc import ReadError, WarcRecord, is_gzip, iter_warc, iter_warc_split

_SUFFIXES = (
    (".warc.gz", "warc"), (".warc", "warc"), (".wet.gz", "warc"), (".wet", "warc"),
    (".arc.gz", None), (".jsonl.gz", "jsonl"), (".jsonl.zst", "jsonl"), (".jsonl", "jsonl"),
    (".ndjson", "jsonl"), (".json.gz", "jsonl"), (".json", "jsonl"), (".parquet", "parquet"),
)


def detect_format(path: str) -> str | None:
    low = path.lower()
    for suffix, fmt in _SUFFIXES:
        if low.endswith(suffix):
            return fmt
    return None


def compression_of(path: str) -> str | None:
    low = path.lower()
    if low.endswith(".gz"):
        return "gzip"
    if low.endswith(".zst"):
        return "zstd"
    return None


@dataclass
class Rejection:
    reason: str
    detail: str
    errored: bool  # True: the input was broken; False: a policy decision
    doc: dict = field(default_factory=dict)


Item = Union[dict, Rejection]


@dataclass
class WarcOptions:
    keep_status: tuple[int, ...] = (200,)
    keep_content_types: tuple[str, ...] = ("text/html", "text/plain")
    max_record_bytes: int = 64 << 20


def _uri(headers: dict[str, str]) -> str | None:
    uri = headers.get("warc-target-uri")
    return uri.strip("<>") if uri else None


def read_warc(raw: BinaryIO, source: str, opts: WarcOptions = WarcOptions(),
              split: tuple[int, int] | None = None) -> Iterator[Item]:
    """Documents from response (WARC) and conversion (WET) records; drops for all others.

    With `split` = (start, end), only the records of a gzip WARC whose members start in that
    byte range (see `transforms.warc.iter_warc_split`); `raw` must then be seekable.
    """
    html_types = {t for t in opts.keep_content_types}
    if split is None:
        items = iter_warc(raw, opts.max_record_bytes)
    elif is_gzip(raw):
        items = iter_warc_split(raw, split[0], split[1], opts.max_record_bytes)
    elif split[0] == 0:
        items = iter_warc(raw, opts.max_record_bytes)  # not gzip after all: the first split reads it whole
    else:
        return
    for item in items:
        if isinstance(item, ReadError):
            detail = item.detail + (f" ({item.length} bytes skipped)" if item.length else "")
            doc = {"id": make_id(source, f"error@{item.offset}"), "url": None, "source": source, "offset": item.offset}
            yield Rejection(item.reason, detail, True, doc)
            continue
        yield _from_record(item, source, opts, html_types)


def _from_record(rec: WarcRecord, source: str, opts: WarcOptions, keep_types: set[str]) -> Item:
    h = rec.headers
    doc = {
        "id": make_id(source, rec.offset),
        "url": _uri(h),
        "source": source,
        "offset": rec.offset,
        "date": h.get("warc-date"),
        "warc_record_id": h.get("warc-record-id"),
    }
    if rec.type not in ("response", "conversion"):
        return Rejection("not_response", f"WARC-Type {rec.type or '(none)'}", False, doc)
    if rec.body is None:
        return Rejection("oversize", f"record of {rec.content_length} bytes > max_record_bytes {opts.max_record_bytes}", False, doc)
    if rec.type == "conversion":  # WET: text already extracted
        doc.update(content_type="text/plain", charset=None, payload=rec.body, format="text")
        return doc if rec.body.strip() else Rejection("empty_payload", "conversion record without text", False, doc)
    block_type = h.get("content-type", "application/http").split(";")[0].strip().lower()
    if block_type not in ("application/http", ""):
        return Rejection("not_response", f"response block of type {block_type}", False, doc)
    try:
        resp = parse_response(rec.body, opts.max_record_bytes)
    except HttpError as e:
        return Rejection(e.reason, e.detail, e.reason != "oversize" and e.reason != "content_encoding", doc)
    doc["content_type"] = resp.mime_type or None
    doc["charset"] = resp.charset
    if resp.status not in opts.keep_status:
        return Rejection("http_status", str(resp.status), False, doc)
    if (resp.mime_type or "text/html") not in keep_types:
        return Rejection("content_type", resp.mime_type, False, doc)
    if not resp.body.strip():
        return Rejection("empty_payload", "zero-byte HTTP body", False, doc)
    doc["payload"] = resp.body
    doc["format"] = "text" if resp.mime_type == "text/plain" else "html"
    return doc


def _metadata(obj: dict, skip: tuple[str, ...]) -> str | None:
    rest = {k: v for k, v in obj.items() if k not in skip}
    return json.dumps(rest, sort_keys=True, ensure_ascii=False, default=str) if rest else None


def _from_object(obj, source: str, offset: int) -> Item:
    doc = {"id": make_id(source, offset), "url": None, "source": source, "offset": offset}
    if not isinstance(obj, dict):
        return Rejection("bad_record", f"expected an object, got {type(obj).__name__}", True, doc)
    if obj.get("id") is not None:
        if not isinstance(obj["id"], (str, int)) or isinstance(obj["id"], bool):
            return Rejection("bad_record", f"'id' is {type(obj['id']).__name__}, not a string or integer", True, doc)
        doc["id"] = str(obj["id"])
    url = obj.get("url")
    if url is not None and not isinstance(url, str):
        return Rejection("bad_record", f"'url' is {type(url).__name__}, not a string", True, doc)
    doc["url"] = url
    text = obj.get("text")
    if not isinstance(text, str):
        reason = "no_text" if text is None else "bad_record"
        return Rejection(reason, "no 'text' field" if text is None else f"'text' is {type(text).__name__}", text is not None, doc)
    if not text.strip():
        return Rejection("empty_text", "blank 'text'", False, doc)
    doc["text"] = text
    if isinstance(obj.get("date"), str):
        doc["date"] = obj["date"]  # a capture date, as WARC-Date is for crawls (URL dedup keeps the newest)
    doc["metadata"] = _metadata(obj, ("id", "url", "text", "date"))
    return doc


def _decompressed(raw: BinaryIO, compression: str | None) -> BinaryIO:
    if compression == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if compression == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    return raw


def read_jsonl(raw: BinaryIO, source: str, compression: str | None = None) -> Iterator[Item]:
    """One document per line; ``offset`` is the 1-based line number."""
    # Small reads from a compressed stream: when it turns out truncated, the lines before the
    # damage have been delivered already.
    dec = _decompressed(raw, compression)
    stream = dec if compression == "gzip" else io.BufferedReader(dec, 1 << 16)
    lineno = 0
    while True:
        try:
            line = stream.readline()
        except (EOFError, OSError, zlib.error, ValueError) as e:  # truncated or corrupt compression
            doc = {"id": make_id(source, f"error@{lineno + 1}"), "url": None, "source": source, "offset": lineno + 1}
            yield Rejection("truncated_file", f"{type(e).__name__}: {e} after line {lineno}", True, doc)
            return
        if not line:
            return
        lineno += 1
        if not line.strip():
            continue  # blank lines are layout, not records
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError) as e:
            doc = {"id": make_id(source, lineno), "url": None, "source": source, "offset": lineno}
            yield Rejection("bad_json", f"line {lineno}: {str(e)[:200]}", True, doc)
            continue
        yield _from_object(obj, source, lineno)


def read_parquet(raw: BinaryIO, source: str, batch_rows: int = 1024) -> Iterator[Item]:
    """One document per row; ``offset`` is the 0-based row number."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(raw)
    except Exception as e:  # pyarrow raises several types for a non-Parquet file
        doc = {"id": make_id(source, "error@0"), "url": None, "source": source, "offset": 0}
        yield Rejection("bad_file", f"not a readable Parquet file: {e}", True, doc)
        return
    row = 0
    try:
        for batch in pf.iter_batches(batch_size=batch_rows):
            for obj in batch.to_pylist():
                yield _from_object(obj, source, row)
                row += 1
    except Exception as e:
        doc = {"id": make_id(source, f"error@{row}"), "url": None, "source": source, "offset": row}
        yield Rejection("bad_file", f"unreadable after row {row}: {e}", True, doc)


def splittable(path: str) -> bool:
    """Can the file be read in byte ranges by several workers? (gzip WARC: member by member.)"""
    return detect_format(path) == "warc" and compression_of(path) == "gzip"


def plan_splits(path: str, size: int, split_bytes: int) -> list[tuple[int, int]]:
    if not splittable(path) or size <= split_bytes:
        return [(0, max(size, 1))]
    return [(a, min(a + split_bytes, size)) for a in range(0, size, split_bytes)]


def read_records(raw: BinaryIO, path: str, source: str, warc: WarcOptions = WarcOptions(),
                 split: tuple[int, int] | None = None) -> Iterator[Item]:
    fmt = detect_format(path)
    if fmt == "warc":
        return read_warc(raw, source, warc, split if splittable(path) else None)
    if fmt == "jsonl":
        return read_jsonl(raw, source, compression_of(path))
    if fmt == "parquet":
        return read_parquet(raw, source)
    raise ValueError(f"{path}: unknown input format (expected .warc[.gz], .wet[.gz], .jsonl[.gz|.zst] or .parquet)")


def decode_payload(doc: dict, max_control_ratio: float = 0.05, html_field: str = "html"):
    """Payload bytes to ``html`` (for the extract stage) or ``text``, dropping payloads that are
    not text at all. With ``html_field="text"`` (extraction switched off) pages become text as they are."""

    payload = doc.pop("payload", None)
    if payload is None:
        return doc
    if looks_binary(payload):
        return Drop("binary_payload", f"{doc.get('content_type')} payload starts like binary data")
    text, codec = decode_page(payload, doc.get("charset"))
    doc["charset"] = codec
    if control_char_ratio(text) > max_control_ratio:
        return Drop("binary_payload", f"more than {max_control_ratio:.0%} control characters after decoding as {codec}")
    doc[html_field if doc.pop("format", "html") == "html" else "text"] = text
    return doc


# --- the `ingest` stage ------------------------------------------------------------------------


@dataclass
class IngestParams:
    keep_status: list[int] = field(default_factory=lambda: [200])
    keep_content_types: list[str] = field(default_factory=lambda: ["text/html", "text/plain"])
    max_record_bytes: int = 64 * 1024 * 1024  # larger records are dropped as `oversize`, never loaded
    max_control_ratio: float = 0.05  # decoded pages with more control characters are `binary_payload`
    # gzip WARC files are read in byte ranges of this size, in parallel; the records of files read
    # whole (JSONL, Parquet, plain WARC) are spread over the workers in chunks of about this size
    split_bytes: int = 4 * 1024 * 1024

    def validate(self, path: str) -> None:
        check(self.max_record_bytes > 0, f"{path}.max_record_bytes", "must be > 0")
        check(self.split_bytes >= 65536, f"{path}.split_bytes", "must be >= 65536")
        check(0 <= self.max_control_ratio <= 1, f"{path}.max_control_ratio", "must be within [0, 1]")
        check(bool(self.keep_content_types), f"{path}.keep_content_types", "must name at least one type")

    def warc_options(self) -> WarcOptions:
        return WarcOptions(tuple(self.keep_status), tuple(self.keep_content_types), self.max_record_bytes)


def _build_decode(params: IngestParams, ctx):
    # Pages become `html` for the extract stage, or `text` as they are when extraction is off.
    html_field = "html" if ctx.stage_enabled("extract") else "text"
    return partial(decode_payload, max_control_ratio=params.max_control_ratio, html_field=html_field)


register(Stage(
    name="ingest", order=0, params=IngestParams, build=_build_decode, optional=False,
    description="read WARC/WET/JSONL/Parquet records; keep HTTP 200 text responses; decode charsets",
    details=("reads records (gzip WARC in parallel byte ranges, one gzip member at a time; other "
             "files streamed whole); keeps WARC `response` records with HTTP 200 and `text/html` "
             "or `text/plain`, and WET `conversion` records; decodes the page's charset (BOM, "
             "valid UTF-8, HTTP header, `<meta>`, then detection)"),
    reasons=("not_response", "http_status", "content_type", "content_encoding", "empty_payload", "oversize",
             "binary_payload", "empty_text", "no_text"),
    errors=("garbage", "gzip_corrupt", "gzip_truncated", "truncated_record", "bad_header", "bad_content_length",
            "bad_http_header", "bad_chunked_encoding", "bad_content_encoding", "bad_json", "bad_record",
            "truncated_file", "bad_file", "unreadable_file", "reader_error")))
