import gzip
import io

import pytest

from tests.warcgen import gz, http_response, page, record
from thresher.transforms.warc import ReadError, WarcRecord, iter_warc


def read(data: bytes, **kw):
    items = list(iter_warc(io.BytesIO(data), **kw))
    recs = [i for i in items if isinstance(i, WarcRecord)]
    errs = [i for i in items if isinstance(i, ReadError)]
    return recs, errs


def uris(recs):
    return [r.headers["warc-target-uri"] for r in recs]


@pytest.mark.parametrize("compress", [False, True])
def test_reads_every_record_in_order(compress):
    data = b"".join(page(i) for i in range(5))
    recs, errs = read(gz(*(page(i) for i in range(5))) if compress else data)
    assert errs == []
    assert uris(recs) == [f"http://example.com/{i}.html" for i in range(5)]
    assert recs[0].body.startswith(b"HTTP/1.1 200")


def test_offsets_point_at_gzip_members():
    members = [gzip.compress(page(i), mtime=0) for i in range(3)]
    data = b"".join(members)
    recs, _ = read(data)
    assert [r.offset for r in recs] == [0, len(members[0]), len(members[0]) + len(members[1])]
    # each offset is a place a reader can seek to and decompress one record
    one = gzip.decompress(data[recs[1].offset : recs[2].offset])
    assert one == page(1)


def test_whole_file_gzip_stream():
    recs, errs = read(gzip.compress(b"".join(page(i) for i in range(4)), mtime=0))
    assert errs == [] and len(recs) == 4


def test_empty_file():
    assert read(b"") == ([], [])


def test_truncated_gzip_member_keeps_earlier_records():
    data = gz(page(0), page(1), page(2))
    recs, errs = read(data[:-30])
    assert uris(recs) == ["http://example.com/0.html", "http://example.com/1.html"]
    assert [e.reason for e in errs] == ["gzip_truncated"]


@pytest.mark.parametrize("where,reason", [(0.7, "gzip_corrupt"), (0.9, "gzip_corrupt"), (0.0, "garbage")])
def test_corrupt_gzip_member_is_skipped_and_reported_once(where, reason):
    # damage deep in a member fails inflation or its CRC; a smashed member header leaves bytes
    # that no longer start a member at all
    m = [gzip.compress(page(i), mtime=0) for i in range(3)]
    bad = bytearray(m[1])
    at = int(len(bad) * where)
    bad[at : at + 12] = b"\xff" * 12
    recs, errs = read(m[0] + bytes(bad) + m[2])
    assert uris(recs) == ["http://example.com/0.html", "http://example.com/2.html"]
    assert [e.reason for e in errs] == [reason]
    assert errs[0].offset == len(m[0])


@pytest.mark.parametrize("compress", [False, True])
def test_garbage_between_records(compress):
    junk = b"\x13\x37 this is not a record \xff\xfe" * 10
    if compress:
        data = gz(page(0)) + junk + gz(page(1))
    else:
        data = page(0) + junk + page(1)
    recs, errs = read(data)
    assert uris(recs) == ["http://example.com/0.html", "http://example.com/1.html"]
    assert [e.reason for e in errs] == ["garbage"]
    assert errs[0].length == len(junk)


@pytest.mark.parametrize("delta", [-7, +25, +10_000])
def test_wrong_content_length_drops_that_record_only(delta):
    block = http_response(b"<html><body><p>liar</p></body></html>")
    liar = record(block, uri="http://example.com/liar", content_length=len(block) + delta)
    recs, errs = read(page(0) + liar + page(1) + page(2))
    assert uris(recs) == ["http://example.com/0.html", "http://example.com/1.html", "http://example.com/2.html"]
    assert [e.reason for e in errs] == ["bad_content_length"]


def test_record_cut_mid_body_at_end_of_file():
    data = page(0) + page(1)
    recs, errs = read(data[:-40])
    assert uris(recs) == ["http://example.com/0.html"]
    assert [e.reason for e in errs] == ["truncated_record"]


def test_header_without_warc_type_or_length():
    no_type = record(http_response(b"<p>x</p>"), uri="http://example.com/nt", drop=("WARC-Type",))
    bad_len = record(http_response(b"<p>y</p>"), uri="http://example.com/bl", extra_headers={"Content-Length": "12abc"})
    recs, errs = read(no_type + page(0) + bad_len + page(1))
    assert uris(recs) == ["http://example.com/0.html", "http://example.com/1.html"]
    assert sorted(e.reason for e in errs) == ["bad_header", "bad_header"]


def test_oversize_record_is_skipped_without_loading():
    big = record(http_response(b"<p>" + b"a" * 100_000 + b"</p>"), uri="http://example.com/big")
    recs, errs = read(page(0) + big + page(1), max_record_bytes=10_000)
    assert errs == []
    assert [r.body is None for r in recs] == [False, True, False]
    assert recs[1].content_length > 10_000


def test_nul_bytes_and_body_containing_warc_magic():
    body = b"<html><body><pre>WARC/1.0\r\nWARC-Type: response\r\n\x00\x00</pre></body></html>"
    recs, errs = read(record(http_response(body), uri="http://example.com/tricky") + page(1))
    assert errs == []
    assert uris(recs) == ["http://example.com/tricky", "http://example.com/1.html"]
    assert body in recs[0].body


def _key(item):
    if isinstance(item, WarcRecord):
        return ("record", item.offset, item.headers.get("warc-target-uri"), item.body)
    return ("error", item.offset, item.reason)


def _broken_file():
    members = [gzip.compress(page(i), mtime=0) for i in range(40)]
    bad = bytearray(members[7])
    bad[len(bad) // 2 : len(bad) // 2 + 12] = b"\xff" * 12
    members[7] = bytes(bad)
    members[12] = members[12] + b"garbage between members" * 3
    block = http_response(b"<p>liar</p>")
    members[20] = gzip.compress(record(block, uri="http://example.com/liar", content_length=len(block) + 9), mtime=0)
    members[25] = gzip.compress(b"not a warc record at all\r\n" * 5, mtime=0)
    return b"".join(members)[:-25]  # and the last member is truncated


@pytest.mark.parametrize("split_bytes", [1, 97, 1000, 4096, 10**9])
def test_splits_read_each_record_and_error_exactly_once(split_bytes):
    from thresher.transforms.warc import iter_warc_split

    data = _broken_file()
    whole = [_key(i) for i in iter_warc(io.BytesIO(data))]
    assert any(k[0] == "error" for k in whole) and sum(k[0] == "record" for k in whole) >= 30
    parts = []
    for start in range(0, len(data), split_bytes):
        parts += [_key(i) for i in iter_warc_split(io.BytesIO(data), start, min(start + split_bytes, len(data)))]
    assert parts == whole


def test_whole_file_gzip_is_read_by_the_first_split_only():
    from thresher.transforms.warc import iter_warc_split

    data = gzip.compress(b"".join(page(i) for i in range(30)), mtime=0)
    first = list(iter_warc_split(io.BytesIO(data), 0, 100))
    rest = [i for s in range(100, len(data), 100) for i in iter_warc_split(io.BytesIO(data), s, s + 100)]
    assert len(first) == 30 and rest == []
