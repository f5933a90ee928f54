"""A streaming WARC reader that survives broken files.

Reads plain or gzip-compressed WARC (one member per record, as crawlers write it, or one
stream for the whole file) from any binary file object, holding one record in memory at a
time. Damage never stops the reader: every unreadable span is reported as a `ReadError`
with its byte offset and the reader resynchronises on the next gzip member or the next
``WARC/1.x`` header line.

Why our own reader rather than warcio or FastWARC: both stop (or raise) at the first corrupt
gzip member, garbage between records or lying Content-Length, and neither tells where the
damage is. A curation job must count such spans, not die on them, and must say which bytes of
which file it could not read.

Who reports what: the decompression layer reports damage to the compressed stream (one
``gzip_corrupt`` or ``gzip_truncated`` per damaged member); the record layer reports damage to
the record framing (``garbage``, ``bad_header``, ``bad_content_length``, ``truncated_record``).
A record that loses bytes to a damaged member is covered by the member's report, so each
incident is counted once.
"""

from __future__ import annotations

import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import BinaryIO, Iterator, Union

GZIP_MAGIC = b"\x1f\x8b\x08"
WARC_MAGIC = b"WARC/1."
READ_CHUNK = 1 << 20
MAX_HEADER_BYTES = 64 * 1024


@dataclass
class WarcRecord:
    offset: int  # file offset of the record (of its gzip member, for compressed files)
    headers: dict[str, str]  # WARC header names lower-cased
    content_length: int
    body: bytes | None  # None when the record was larger than max_record_bytes (not loaded)

    @property
    def type(self) -> str:
        return self.headers.get("warc-type", "").lower()


@dataclass
class ReadError:
    offset: int
    reason: str
    detail: str
    length: int | None = None  # bytes skipped, where known


Item = Union[WarcRecord, ReadError]


@dataclass
class _Stream:
    """Decompressed bytes with their file offsets, discontinuities and read errors."""

    pieces: Iterator[tuple]
    buf: bytearray = field(default_factory=bytearray)
    start: int = 0  # decompressed position of buf[0]
    end_of_data: bool = False
    members: deque = field(default_factory=deque)  # (decompressed pos, file offset) of member starts
    breaks: list = field(default_factory=list)  # decompressed positions where data is discontinuous
    errors: deque = field(default_factory=deque)

    @property
    def end(self) -> int:
        return self.start + len(self.buf)

    def fill(self, upto: int) -> bool:
        """Make data up to decompressed position `upto` available; False if the stream ends first."""
        while self.end < upto and not self.end_of_data:
            self._pull()
        return self.end >= upto

    def _pull(self) -> None:
        try:
            piece = next(self.pieces)
        except StopIteration:
            self.end_of_data = True
            return
        kind = piece[0]
        if kind == "data":
            self.buf += piece[1]
        elif kind == "member":
            self.members.append((self.end, piece[1]))
        elif kind == "break":
            self.breaks.append(self.end)
        elif kind == "error":
            self.errors.append(piece[1])

    def find(self, pattern: bytes, frm: int, limit: int | None = None) -> int:
        """Position of `pattern` at or after `frm` (before `limit`), pulling data as needed; -1 if absent."""
        scan = frm
        while True:
            stop = self.end if limit is None else min(self.end, limit)
            i = self.buf.find(pattern, scan - self.start, stop - self.start)
            if i >= 0:
                return self.start + i
            if (limit is not None and self.end >= limit) or self.end_of_data:
                return -1
            scan = max(frm, self.end - len(pattern) + 1)
            self._pull()

    def get(self, a: int, b: int) -> bytes:
        return bytes(self.buf[a - self.start : b - self.start])

    def discard_before(self, pos: int) -> None:
        if pos > self.start:
            cut = min(pos, self.end) - self.start
            del self.buf[:cut]
            self.start += cut
        while len(self.members) > 1 and self.members[1][0] <= pos:
            self.members.popleft()
        self.breaks = [b for b in self.breaks if b >= pos]

    def skip_to(self, pos: int) -> bool:
        """Advance to `pos` without keeping the bytes (for records too large to load)."""
        while self.end < pos and not self.end_of_data:
            self.discard_before(self.end)
            self._pull()
        self.discard_before(min(pos, self.end))
        return self.end >= pos

    def file_offset(self, pos: int) -> int:
        off = pos
        for dpos, foff in self.members:
            if dpos <= pos:
                off = foff
            else:
                break
        return off

    def break_in(self, a: int, b: int) -> bool:
        return any(a < x <= b for x in self.breaks)

    def at_line_start(self, pos: int) -> bool:
        return (
            pos == 0
            or pos in self.breaks
            or any(d == pos for d, _ in self.members)
            or (pos - 1 >= self.start and self.buf[pos - 1 - self.start] == 0x0A)
        )


def _plain_pieces(raw: BinaryIO) -> Iterator[tuple]:
    while chunk := raw.read(READ_CHUNK):
        yield ("data", chunk)


def _gzip_pieces(raw: BinaryIO) -> Iterator[tuple]:
    """Inflate gzip members one after another, resynchronising on the magic after damage."""
    buf = b""
    base = 0  # file offset of buf[0]
    eof = False

    def more() -> bool:
        nonlocal buf, eof
        if eof:
            return False
        chunk = raw.read(READ_CHUNK)
        if not chunk:
            eof = True
            return False
        buf += chunk
        return True

    while True:
        while len(buf) < len(GZIP_MAGIC) and more():
            pass
        if not buf:
            return
        if not buf.startswith(GZIP_MAGIC):
            # bytes outside any member: skip to the next magic
            skipped_from = base
            while (i := buf.find(GZIP_MAGIC, 1)) < 0:
                keep = len(GZIP_MAGIC) - 1
                base += max(0, len(buf) - keep)
                buf = buf[-keep:]
                if not more():
                    base += len(buf)
                    buf = b""
                    break
            else:
                base += i
                buf = buf[i:]
            length = base - skipped_from
            yield ("error", ReadError(skipped_from, "garbage", "bytes outside any gzip member", length))
            yield ("break",)
            continue
        member_start = base
        yield ("member", member_start)
        d = zlib.decompressobj(31)
        produced = 0
        while True:
            try:
                out = d.decompress(buf)
            except zlib.error as e:
                yield ("error", ReadError(member_start, "gzip_corrupt", str(e)))
                yield ("break",)
                # resync on the next magic after this member's start
                base += 1
                buf = buf[1:] if buf else b""
                # discard up to the next magic candidate (handled by the outer loop)
                i = buf.find(GZIP_MAGIC)
                if i > 0:
                    base += i
                    buf = buf[i:]
                elif i < 0:
                    keep = len(GZIP_MAGIC) - 1
                    base += max(0, len(buf) - keep)
                    buf = buf[-keep:]
                break
            if out:
                produced += len(out)
                yield ("data", out)
            if d.eof:
                used = len(buf) - len(d.unused_data)
                base += used
                buf = d.unused_data
                break
            base += len(buf)
            buf = b""
            if not more():
                yield (
                    "error",
                    ReadError(member_start, "gzip_truncated", f"file ends inside a gzip member after {produced} bytes"),
                )
                yield ("break",)
                return


def _parse_headers(raw: bytes) -> dict[str, str] | None:
    lines = raw.decode("utf-8", "replace").split("\r\n")
    if not lines[0].startswith("WARC/1."):
        return None
    headers: dict[str, str] = {}
    last = None
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t" and last:  # folded continuation line
            headers[last] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep:
            return None
        last = name.strip().lower()
        headers[last] = value.strip()
    return headers


def iter_warc(raw: BinaryIO, max_record_bytes: int = 64 << 20) -> Iterator[Item]:
    """Yield every record and every unreadable span of a WARC file, in file order."""
    head = raw.read(len(GZIP_MAGIC))
    rest = raw

    class _Prefixed:
        def __init__(self):
            self.head = head

        def read(self, n: int) -> bytes:
            if self.head:
                out, self.head = self.head, b""
                return out + rest.read(max(0, n - len(out)))
            return rest.read(n)

    src = _Prefixed()
    pieces = _gzip_pieces(src) if head.startswith(GZIP_MAGIC) else _plain_pieces(src)
    s = _Stream(pieces)
    pos = 0

    def drain_errors():
        while s.errors:
            yield s.errors.popleft()

    while True:
        s.fill(pos + len(WARC_MAGIC))
        yield from drain_errors()
        if pos >= s.end and s.end_of_data:
            return
        if not (s.get(pos, pos + len(WARC_MAGIC)) == WARC_MAGIC and s.at_line_start(pos)):
            nxt = pos
            while True:
                nxt = s.find(WARC_MAGIC, nxt + 1)
                if nxt < 0 or s.at_line_start(nxt):
                    break
            stop = nxt if nxt >= 0 else s.end
            skipped = s.get(pos, stop)
            if skipped.strip(b"\r\n\t \x00"):
                yield ReadError(s.file_offset(pos), "garbage", "bytes outside any WARC record", stop - pos)
            yield from drain_errors()
            if nxt < 0:
                s.discard_before(s.end)
                s.fill(s.end + 1)
                yield from drain_errors()
                if s.end_of_data and s.end <= stop:
                    return
                pos = stop
                continue
            s.discard_before(nxt)
            pos = nxt
            continue

        offset = s.file_offset(pos)
        hdr_end = s.find(b"\r\n\r\n", pos, pos + MAX_HEADER_BYTES)
        yield from drain_errors()
        if hdr_end < 0 or s.break_in(pos, hdr_end):
            if s.end_of_data and s.end < pos + MAX_HEADER_BYTES and not s.break_in(pos, s.end):
                yield ReadError(offset, "truncated_record", "file ends inside a WARC header")
            elif not s.break_in(pos, s.end):
                yield ReadError(offset, "bad_header", "no end of WARC header within 64 KiB")
            pos += 1
            continue
        headers = _parse_headers(s.get(pos, hdr_end))
        try:
            length = int(headers["content-length"]) if headers else -1
        except (KeyError, ValueError):
            length = -1
        if headers is None or length < 0 or "warc-type" not in headers:
            what = "unparseable header line" if headers is None else (
                "no WARC-Type" if headers and "warc-type" not in headers and length >= 0 else "missing or bad Content-Length"
            )
            yield ReadError(offset, "bad_header", what)
            pos = hdr_end
            continue
        body_start = hdr_end + 4
        body_end = body_start + length
        if length > max_record_bytes:
            complete = s.skip_to(body_end) and s.fill(body_end + 4)
            yield from drain_errors()
            if not complete:
                if not s.breaks:
                    yield ReadError(offset, "truncated_record", f"file ends inside a {length}-byte record")
                return
            if s.get(body_end, body_end + 4) != b"\r\n\r\n":
                yield ReadError(offset, "bad_content_length", f"Content-Length {length} does not end the record")
                pos = body_end
                continue
            yield WarcRecord(offset, headers, length, None)
            pos = body_end + 4
            continue

        complete = s.fill(body_end + 4)
        s.fill(body_end + 5)  # completes the member: a CRC error surfaces before we yield
        yield from drain_errors()
        if s.break_in(pos, body_end + 4):
            # bytes of this record were lost with a damaged member, already reported
            pos = next(b for b in s.breaks if b > pos)
            continue
        if not complete:
            if s.end_of_data and not s.break_in(pos, s.end):
                yield ReadError(offset, "truncated_record", f"file ends inside a {length}-byte record")
            s.discard_before(s.end)
            pos = s.end
            continue
        if s.get(body_end, body_end + 4) != b"\r\n\r\n":
            yield ReadError(offset, "bad_content_length", f"Content-Length {length} does not end the record")
            pos = body_start  # resync inside the claimed body: a following record may hide there
            continue
        yield WarcRecord(offset, headers, length, s.get(body_start, body_end))
        pos = body_end + 4
        s.discard_before(pos)
