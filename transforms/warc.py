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
HEADER_STARTS = (b"WARC/1.0\r\n", b"WARC/1.1\r\n")
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
    base: int = 0  # file offset of decompressed position 0 (plain files read from a split)
    end_offset: int | None = None  # a split's end: records of members starting here or later are not ours
    boundary: int | None = None  # file offset of the first member starting at or after end_offset
    buf: bytearray = field(default_factory=bytearray)
    start: int = 0  # decompressed position of buf[0]
    end_of_data: bool = False
    members: deque = field(default_factory=deque)  # (decompressed pos, file offset) of member starts
    # Damaged gzip members as (start, end) decompressed positions: their output [start, end) is
    # unreliable and bytes are missing at `end`.
    damaged: list = field(default_factory=list)
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
            if self.end_offset is not None and piece[1] >= self.end_offset and self.boundary is None:
                self.boundary = piece[1]
        elif kind == "damage":
            start = self.members[-1][0] if self.members else 0
            self.damaged.append((start, self.end))
        elif kind == "error":
            if self.boundary is None or piece[1].offset < self.boundary:
                self.errors.append(piece[1])  # errors past the boundary belong to the next split

    def find(self, pattern: bytes, frm: int, limit: int | None = None) -> int:
        """Position of `pattern` at or after `frm` (before `limit`), pulling data as needed; -1 if absent."""
        frm = max(frm, self.start)
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
        self.damaged = [d for d in self.damaged if d[1] >= pos]

    def skip_to(self, pos: int) -> bool:
        """Advance to `pos` without keeping the bytes (for records too large to load)."""
        while self.end < pos and not self.end_of_data:
            self.discard_before(self.end)
            self._pull()
        self.discard_before(min(pos, self.end))
        return self.end >= pos

    def file_offset(self, pos: int) -> int:
        off = self.base + pos
        for dpos, foff in self.members:
            if dpos <= pos:
                off = foff
            else:
                break
        return off

    def damage_in(self, a: int, b: int) -> int | None:
        """End of the first damaged member overlapping the span [a, b), or None."""
        for start, end in self.damaged:
            if a < end and b > start:
                return end
        return None


def _plain_pieces(raw: BinaryIO) -> Iterator[tuple]:
    while chunk := raw.read(READ_CHUNK):
        yield ("data", chunk)


def is_member_start(data: bytes) -> bool:
    """Does `data` begin a gzip member that inflates to a WARC header? (Resync and split points.)"""
    if not data.startswith(GZIP_MAGIC):
        return False
    try:
        return zlib.decompressobj(31).decompress(data[:65536], 16).startswith(WARC_MAGIC)
    except zlib.error:
        return False


def _gzip_pieces(raw: BinaryIO, base: int = 0, seekable: bool = False) -> Iterator[tuple]:
    """Inflate gzip members one after another, resynchronising on the next member start after damage.

    A member start is a gzip magic whose first inflated bytes are a WARC header: the same rule
    `find_member_start` uses to align a split, so split readers agree on where records begin.
    A damaged member's deflate stream can run on through the members after it before zlib notices
    (or until the file ends); with a seekable `raw` (positioned at file offset `base`), reading
    therefore resumes at the first member start after the damaged member's own start, where a
    split reader would begin, so no record a split reader finds is lost to a whole-file reader.
    """
    origin = raw.tell() - base if seekable else 0  # raw position of file offset 0
    buf = b""
    eof = False
    look = 1024  # bytes needed to recognise a member start

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

    def skip_to_member(frm: int) -> int:
        """Drop bytes until buf starts a member (searching from buf[frm]); returns bytes dropped."""
        nonlocal buf, base
        dropped = 0
        while True:
            i = buf.find(GZIP_MAGIC, frm)
            while i >= 0:
                while len(buf) - i < look and more():
                    pass
                if is_member_start(buf[i:]):
                    dropped += i
                    base += i
                    buf = buf[i:]
                    return dropped
                i = buf.find(GZIP_MAGIC, i + 1)
            keep = min(len(buf), len(GZIP_MAGIC) - 1)
            dropped += len(buf) - keep
            base += len(buf) - keep
            buf = buf[len(buf) - keep :]
            frm = 0
            if not more():
                dropped += len(buf)
                base += len(buf)
                buf = b""
                return dropped

    def resync(member_start: int) -> bool:
        """Back to just after a damaged member's start, then on to the next member start (silently:
        the bytes up to it are the reported damage)."""
        nonlocal buf, base, eof
        if not seekable:
            return False
        raw.seek(origin + member_start + 1)
        buf, base, eof = b"", member_start + 1, False
        skip_to_member(0)
        return True

    while True:
        while len(buf) < look and more():
            pass
        if not buf:
            return
        if not is_member_start(buf):
            at = base
            n = skip_to_member(0)
            yield ("error", ReadError(at, "garbage", "bytes outside any gzip member", n))
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
                yield ("damage",)
                # the rest of this member is part of the reported damage: skip it silently
                if not resync(member_start):
                    consumed = base - member_start
                    skip_to_member(1 if consumed == 0 else 0)
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
                yield ("damage",)
                if not resync(member_start):
                    return
                break


def find_member_start(raw: BinaryIO, start: int, end: int, compressed: bool) -> int | None:
    """The first record start at or after `start` and before `end`, for reading a file split.

    Compressed: a gzip member that inflates to a WARC header. Plain: a WARC header line right
    after a record's closing blank line. None if no record starts in [start, end).
    """
    chunk = 1 << 20
    pos = start
    carry = b""
    raw.seek(start)
    while pos < end:
        data = carry + raw.read(chunk)
        if len(data) == len(carry):
            return None
        data_start = pos - len(carry)
        i = 0
        while True:
            if compressed:
                i = data.find(GZIP_MAGIC, i)
            else:
                i = data.find(b"\r\n\r\nWARC/1.", i)
            if i < 0 or data_start + i >= end:
                break
            if compressed:
                tail = data[i : i + 65536]
                if len(tail) < 65536 and len(data) - i < 65536:
                    raw.seek(data_start + i)
                    tail = raw.read(65536)
                    raw.seek(data_start + len(data))
                if is_member_start(tail):
                    return data_start + i
            else:
                cand = data_start + i + 4
                raw.seek(cand)
                if raw.read(10) in HEADER_STARTS:
                    return cand
                raw.seek(data_start + len(data))
            i += 1
        keep = 16
        carry = data[-keep:]
        pos = data_start + len(data)
    return None


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


SNIFF_BYTES = 1 << 16


def looks_gzip(head: bytes) -> bool:
    """Is a file that begins with `head` a gzip WARC? Yes when it starts with a gzip magic, and also
    when its first bytes are damaged but a member start comes before any plain WARC header (so a
    corrupt first member costs that member, not the file)."""
    if head.startswith(GZIP_MAGIC):
        return True
    if head.startswith(WARC_MAGIC):
        return False
    plain = head.find(WARC_MAGIC)
    i = head.find(GZIP_MAGIC)
    while i >= 0 and (plain < 0 or i < plain):
        if is_member_start(head[i:]):
            return True
        i = head.find(GZIP_MAGIC, i + 1)
    return False


def is_gzip(raw: BinaryIO) -> bool:
    raw.seek(0)
    head = raw.read(SNIFF_BYTES)
    raw.seek(0)
    return looks_gzip(head)


def iter_warc_split(raw: BinaryIO, start: int, end: int, max_record_bytes: int = 64 << 20) -> Iterator[Item]:
    """The records of a gzip WARC whose members start in [start, end), and the damage up to the
    next such member: splits of one file together yield each record and each error exactly once.
    `raw` must be seekable."""
    if start > 0:
        aligned = find_member_start(raw, start, end, compressed=True)
        if aligned is None:
            return
        start = aligned
    raw.seek(start)
    yield from iter_warc(raw, max_record_bytes, base=start, end=end)


def iter_warc(raw: BinaryIO, max_record_bytes: int = 64 << 20, base: int = 0, end: int | None = None) -> Iterator[Item]:
    """Yield every record and every unreadable span of a WARC file, in file order.

    `base` is the file offset `raw` is positioned at; with `end`, reading stops at the first
    record whose gzip member starts at or after `end` (see `iter_warc_split`).
    """
    seekable = bool(getattr(raw, "seekable", lambda: False)())
    head = raw.read(SNIFF_BYTES)
    rest = raw

    class _Prefixed:
        def __init__(self):
            self.head = head

        def read(self, n: int) -> bytes:
            if self.head:
                out, self.head = self.head, b""
                return out + rest.read(max(0, n - len(out)))
            return rest.read(n)

    if seekable:
        raw.seek(-len(head), 1)
        src = raw
    else:
        src = _Prefixed()
    if looks_gzip(head):
        s = _Stream(_gzip_pieces(src, base, seekable), end_offset=end)
    else:
        s = _Stream(_plain_pieces(src), base=base, end_offset=end)
    pos = 0
    quiet_until = -1  # bytes of a record already reported are not reported again as garbage

    def drain_errors(upto: int | None = None):
        """Queued errors in file order; with `upto`, only those at offsets <= upto."""
        while s.errors and (upto is None or s.errors[0].offset <= upto):
            yield s.errors.popleft()

    def next_header(frm: int, limit: int | None = None) -> int:
        nxt = frm
        while True:
            nxt = s.find(WARC_MAGIC, nxt + 1, limit)
            if nxt < 0 or (s.fill(nxt + 10) and s.get(nxt, nxt + 10) in HEADER_STARTS):
                return nxt

    while True:
        s.fill(pos + 10)
        if end is not None and pos < s.end and s.file_offset(pos) >= end:
            yield from drain_errors()
            return  # the next split's first record
        yield from drain_errors()
        if pos >= s.end and s.end_of_data:
            return
        if s.get(pos, pos + 10) not in HEADER_STARTS:
            # resynchronise on the next header line (it need not start a line: garbage may precede it)
            nxt = next_header(pos)
            stop = nxt if nxt >= 0 else s.end
            skipped = s.get(pos, stop)
            if skipped.strip(b"\r\n\t \x00") and stop > quiet_until and s.damage_in(pos, stop) is None:
                yield ReadError(s.file_offset(pos), "garbage", "bytes outside any WARC record", stop - pos)
            yield from drain_errors()
            s.discard_before(stop)
            if nxt < 0:
                return
            pos = nxt
            continue

        offset = s.file_offset(pos)  # < end: the check at the top of the loop saw this same pos
        hdr_end = s.find(b"\r\n\r\n", pos, pos + MAX_HEADER_BYTES)
        yield from drain_errors()
        if hdr_end < 0 or s.damage_in(pos, hdr_end + 4) is not None:
            if s.damage_in(pos, max(s.end, pos + 1)) is None:
                reason = "truncated_record" if s.end_of_data and s.end < pos + MAX_HEADER_BYTES else "bad_header"
                yield ReadError(offset, reason, "no end of WARC header" + ("" if reason == "truncated_record" else " within 64 KiB"))
            quiet_until = s.end
            pos += 1
            continue
        headers = _parse_headers(s.get(pos, hdr_end))
        try:
            length = int(headers["content-length"]) if headers else -1
        except (KeyError, ValueError):
            length = -1
        body_start = hdr_end + 4
        if headers is None or length < 0:
            what = "unparseable header line" if headers is None else "missing or bad Content-Length"
            yield ReadError(offset, "bad_header", what)
            nxt = next_header(hdr_end)
            quiet_until = nxt if nxt >= 0 else s.end
            pos = hdr_end
            continue
        body_end = body_start + length
        if length > max_record_bytes:
            complete = s.skip_to(body_end) and s.fill(body_end + 4)
        else:
            complete = s.fill(body_end + 4)
            s.fill(body_end + 5)  # completes the member: a CRC error surfaces before we yield
        yield from drain_errors(upto=offset)  # later members' errors come after this record
        lost = s.damage_in(pos, body_end + 4)
        if lost is not None:  # bytes of this record went with a damaged member, already reported
            pos = max(lost, pos + 1)
            continue
        if not complete or s.get(body_end, body_end + 4) != b"\r\n\r\n":
            # Either the file ends early, or Content-Length lies. A header inside the claimed
            # body tells the two apart: then the length lied, and the records after it are read.
            inside = next_header(hdr_end, body_end + 10) if length <= max_record_bytes else -1
            if not complete and inside < 0:
                yield ReadError(offset, "truncated_record", f"file ends inside a {length}-byte record")
                return
            yield ReadError(offset, "bad_content_length", f"Content-Length {length} does not end the record")
            nxt = inside if inside >= 0 else next_header(hdr_end)
            quiet_until = nxt if nxt >= 0 else s.end
            pos = hdr_end
            continue
        if "warc-type" not in headers:
            yield ReadError(offset, "bad_header", "no WARC-Type")
        elif length > max_record_bytes:
            yield WarcRecord(offset, headers, length, None)
        else:
            yield WarcRecord(offset, headers, length, s.get(body_start, body_end))
        pos = body_end + 4
        s.discard_before(pos)
