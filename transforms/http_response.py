"""HTTP response blocks as crawlers store them in WARC ``response`` records."""

from __future__ import annotations

import zlib
from dataclasses import dataclass


class HttpError(ValueError):
    """A response block that cannot be parsed; ``reason`` names the drop."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]  # names lower-cased; repeated headers joined with ", "
    body: bytes

    @property
    def mime_type(self) -> str:
        return parse_content_type(self.headers.get("content-type", ""))[0]

    @property
    def charset(self) -> str | None:
        return parse_content_type(self.headers.get("content-type", ""))[1]


def parse_content_type(value: str) -> tuple[str, str | None]:
    """``'text/html; charset=EUC-KR'`` -> ``('text/html', 'euc-kr')``."""
    parts = value.split(";")
    mime = parts[0].strip().lower()
    charset = None
    for p in parts[1:]:
        k, _, v = p.partition("=")
        if k.strip().lower() == "charset":
            charset = v.strip().strip("\"'").lower() or None
    return mime, charset


def _dechunk(body: bytes) -> bytes:
    out = bytearray()
    pos = 0
    while True:
        eol = body.find(b"\r\n", pos)
        if eol < 0:
            raise HttpError("bad_chunked_encoding", "chunk size line missing")
        size_txt = body[pos:eol].split(b";")[0].strip()
        try:
            size = int(size_txt, 16)
        except ValueError:
            raise HttpError("bad_chunked_encoding", f"bad chunk size {size_txt[:20]!r}") from None
        if size == 0:
            return bytes(out)
        start = eol + 2
        if start + size > len(body):
            raise HttpError("bad_chunked_encoding", "chunk runs past the end of the body")
        out += body[start : start + size]
        pos = start + size + 2


def _decode_content(body: bytes, encoding: str, max_bytes: int) -> bytes:
    enc = encoding.strip().lower()
    if enc in ("", "identity"):
        return body
    if enc in ("gzip", "x-gzip", "deflate"):
        wbits = 47 if enc != "deflate" else 15  # 47: gzip or zlib header, auto-detected
        try:
            d = zlib.decompressobj(wbits)
            out = d.decompress(body, max_bytes + 1)
        except zlib.error:
            if enc == "deflate":  # raw deflate, as some servers send it
                try:
                    d = zlib.decompressobj(-15)
                    out = d.decompress(body, max_bytes + 1)
                except zlib.error as e:
                    raise HttpError("bad_content_encoding", str(e)) from None
            else:
                raise HttpError("bad_content_encoding", f"{enc} body does not inflate") from None
        if len(out) > max_bytes:
            raise HttpError("oversize", f"decoded body larger than {max_bytes} bytes")
        return out
    raise HttpError("content_encoding", f"unsupported Content-Encoding {enc!r}")


def parse_response(block: bytes, max_body_bytes: int = 64 << 20) -> HttpResponse:
    """Split a raw HTTP response into status, headers and the decoded body."""
    end = block.find(b"\r\n\r\n")
    sep = 4
    if end < 0:
        end = block.find(b"\n\n")
        sep = 2
    if end < 0:
        raise HttpError("bad_http_header", "no end of HTTP headers")
    head = block[:end].decode("latin-1").replace("\r\n", "\n").split("\n")
    status_line = head[0].split(None, 2)
    if len(status_line) < 2 or not status_line[0].startswith("HTTP/"):
        raise HttpError("bad_http_header", f"bad status line {head[0][:60]!r}")
    try:
        status = int(status_line[1])
    except ValueError:
        raise HttpError("bad_http_header", f"bad status code {status_line[1][:10]!r}") from None
    headers: dict[str, str] = {}
    for line in head[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            continue
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    body = block[end + sep :]
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _dechunk(body)
    if "content-encoding" in headers:
        body = _decode_content(body, headers["content-encoding"], max_body_bytes)
    return HttpResponse(status, headers, body)
