import gzip
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from tests.warcgen import gz, http_response, page, record
from thresher.transforms.document import Drop
from thresher.transforms.ingest import Rejection, decode_payload, detect_format, read_jsonl, read_parquet, read_records, read_warc


def split(items):
    items = list(items)
    docs = [i for i in items if isinstance(i, dict)]
    rej = [i for i in items if isinstance(i, Rejection)]
    return docs, rej


def test_warc_keeps_html_200_and_names_every_drop():
    data = gz(
        record(b"software: test\r\n", warc_type="warcinfo"),
        record(b"GET / HTTP/1.1\r\n\r\n", warc_type="request"),
        page(1),
        record(http_response(b"<p>missing</p>", status=404), uri="http://example.com/404"),
        record(http_response(b"\x89PNG....", content_type="image/png"), uri="http://example.com/a.png"),
        record(http_response(b"", content_type="text/html"), uri="http://example.com/empty"),
        record(http_response(b"plain text body", content_type="text/plain"), uri="http://example.com/a.txt"),
    )
    docs, rej = split(read_warc(io.BytesIO(data), "x.warc.gz"))
    assert [d["url"] for d in docs] == ["http://example.com/1.html", "http://example.com/a.txt"]
    assert [(r.reason, r.errored) for r in rej] == [
        ("not_response", False), ("not_response", False), ("http_status", False), ("content_type", False),
        ("empty_payload", False),
    ]
    assert rej[2].detail == "404"
    assert all(r.doc["source"] == "x.warc.gz" and r.doc["offset"] is not None for r in rej)


def test_ids_are_stable_and_distinct():
    data = gz(page(1), page(2))
    a, _ = split(read_warc(io.BytesIO(data), "crawl.warc.gz"))
    b, _ = split(read_warc(io.BytesIO(data), "crawl.warc.gz"))
    c, _ = split(read_warc(io.BytesIO(data), "other.warc.gz"))
    assert [d["id"] for d in a] == [d["id"] for d in b]
    assert len({d["id"] for d in a}) == 2
    assert not {d["id"] for d in a} & {d["id"] for d in c}


def test_wet_conversion_records_are_text_documents():
    data = gz(record(b"Already extracted text.\nSecond line.", warc_type="conversion", uri="http://example.com/t"))
    docs, rej = split(read_warc(io.BytesIO(data), "x.warc.wet.gz"))
    assert rej == []
    out = decode_payload(docs[0])
    assert out["text"] == "Already extracted text.\nSecond line." and "html" not in out


def test_read_errors_become_errored_rejections():
    data = gz(page(1), page(2))[:-30]
    docs, rej = split(read_warc(io.BytesIO(data), "x.warc.gz"))
    assert len(docs) == 1
    assert [(r.reason, r.errored) for r in rej] == [("gzip_truncated", True)]


def test_binary_payload_labelled_html_is_dropped():
    data = gz(record(http_response(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20), uri="http://example.com/fake.html"))
    docs, _ = split(read_warc(io.BytesIO(data), "x.warc.gz"))
    out = decode_payload(docs[0])
    assert isinstance(out, Drop) and out.reason == "binary_payload"


def test_nul_filled_payload_is_dropped():
    doc = {"id": "a", "payload": b"<html>" + b"\x00" * 500 + b"</html>", "charset": None, "format": "html"}
    out = decode_payload(doc)
    assert isinstance(out, Drop) and out.reason == "binary_payload"


def test_invalid_utf8_payload_decodes():
    doc = {"id": "a", "payload": "<p>Gr\u00fc\u00dfe ".encode() + b"\xff\xfe\xfa" + b" aus Berlin</p>", "charset": "utf-8",
           "format": "html"}
    out = decode_payload(doc)
    assert "Berlin" in out["html"] and "payload" not in out


def jsonl_lines():
    return [
        json.dumps({"id": "a", "text": "first document", "url": "http://a", "lang": "en", "score": 0.5}),
        "",
        "{not json",
        json.dumps({"text": 42}),
        json.dumps([1, 2, 3]),
        json.dumps({"id": {"nested": 1}, "text": "x"}),
        json.dumps({"url": "http://no-text"}),
        json.dumps({"text": "   "}),
        json.dumps({"text": "second document"}),
    ]


@pytest.mark.parametrize("compression", [None, "gzip", "zstd"])
def test_jsonl_documents_and_bad_lines(compression):
    raw = ("\n".join(jsonl_lines()) + "\n").encode()
    if compression == "gzip":
        raw = gzip.compress(raw)
    elif compression == "zstd":
        raw = zstandard.ZstdCompressor().compress(raw)
    docs, rej = split(read_jsonl(io.BytesIO(raw), "d.jsonl", compression))
    assert [d["text"] for d in docs] == ["first document", "second document"]
    assert docs[0]["id"] == "a" and docs[0]["url"] == "http://a"
    assert json.loads(docs[0]["metadata"]) == {"lang": "en", "score": 0.5}
    assert docs[1]["offset"] == 9 and len(docs[1]["id"]) == 32
    assert [(r.reason, r.errored, r.doc["offset"]) for r in rej] == [
        ("bad_json", True, 3), ("bad_record", True, 4), ("bad_record", True, 5), ("bad_record", True, 6),
        ("no_text", False, 7), ("empty_text", False, 8),
    ]


def test_truncated_gzip_jsonl_counts_the_loss():
    raw = gzip.compress(("\n".join(json.dumps({"text": f"doc {i}"}) for i in range(2000)) + "\n").encode())
    docs, rej = split(read_jsonl(io.BytesIO(raw[: len(raw) // 2]), "d.jsonl.gz", "gzip"))
    assert 0 < len(docs) < 2000
    assert [r.reason for r in rej] == ["truncated_file"]


def test_parquet_rows(tmp_path):
    table = pa.table({"text": ["one", None, "three"], "id": ["x", "y", "z"], "n": [1, 2, 3]})
    pq.write_table(table, tmp_path / "d.parquet")
    with open(tmp_path / "d.parquet", "rb") as fh:
        docs, rej = split(read_parquet(fh, "d.parquet"))
    assert [(d["id"], d["text"], json.loads(d["metadata"])) for d in docs] == [("x", "one", {"n": 1}), ("z", "three", {"n": 3})]
    assert [(r.reason, r.doc["offset"]) for r in rej] == [("no_text", 1)]


def test_not_a_parquet_file():
    docs, rej = split(read_parquet(io.BytesIO(b"PAR1 nope"), "bad.parquet"))
    assert docs == [] and [r.reason for r in rej] == ["bad_file"]


def test_format_detection():
    assert detect_format("s3://b/CC-MAIN-1.warc.gz") == "warc"
    assert detect_format("x.warc.wet.gz") == "warc"
    assert detect_format("x.jsonl.zst") == "jsonl"
    assert detect_format("x.parquet") == "parquet"
    assert detect_format("x.csv") is None
    with pytest.raises(ValueError, match="unknown input format"):
        read_records(io.BytesIO(b""), "x.csv", "x.csv")
