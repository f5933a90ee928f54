"""Builds WARC files in tests: well-formed records, and the ways real ones break."""

from __future__ import annotations

import gzip
import uuid


def http_response(body: bytes, status: int = 200, content_type: str | None = "text/html; charset=utf-8",
                  extra: str = "") -> bytes:
    head = f"HTTP/1.1 {status} {'OK' if status == 200 else 'Status'}\r\n"
    if content_type is not None:
        head += f"Content-Type: {content_type}\r\n"
    head += f"Content-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode("latin-1") + body


def record(block: bytes, warc_type: str = "response", uri: str = "http://example.com/",
           content_length: int | None = None, extra_headers: dict | None = None, drop: tuple = ()) -> bytes:
    headers = {
        "WARC-Type": warc_type,
        "WARC-Record-ID": f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, uri + warc_type)}>",
        "WARC-Date": "2026-01-01T00:00:00Z",
        "WARC-Target-URI": uri,
        "Content-Type": "application/http;msgtype=response" if warc_type == "response" else "text/plain",
        "Content-Length": str(len(block) if content_length is None else content_length),
    }
    headers.update(extra_headers or {})
    for name in drop:
        headers.pop(name, None)
    head = "WARC/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return head.encode() + block + b"\r\n\r\n"


def page(n: int, text: str | None = None) -> bytes:
    text = text or f"Page number {n}. This paragraph is the main content of the page and has enough words."
    html = f"<html><head><title>Page {n}</title></head><body><article><h1>Title {n}</h1><p>{text}</p></article></body></html>"
    return record(http_response(html.encode()), uri=f"http://example.com/{n}.html")


def gz(*records: bytes) -> bytes:
    """Each record its own gzip member, as crawlers write WARC."""
    return b"".join(gzip.compress(r, mtime=0) for r in records)
