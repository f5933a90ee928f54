"""Fuzz targets: the record readers, the HTTP/charset layer, extraction and every per-document stage
on mutated and generated input. No exception may escape: a bad record or document must come out
as a `Rejection`, a `Drop`, or a document.

CI runs a fixed, derandomised set of examples per target (bounded time). For a longer, random
session: ``THRESHER_FUZZ_EXAMPLES=5000 python -m pytest tests/test_fuzz.py``.
"""

import functools
import gzip
import io
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from thresher.pipeline.config import Config
from thresher.pipeline.engines.run import resolve_resources
from thresher.pipeline.graph.stages import PipelineContext, enabled_stages
from tests.warcgen import gz, http_response, page, record
from thresher.transforms.document import Drop
from thresher.transforms.encoding import decode_page
from thresher.transforms.extract import HtmlExtractor
from thresher.transforms.http_response import HttpError, parse_response
from thresher.transforms.ingest import Rejection, WarcOptions, decode_payload, read_jsonl, read_parquet, read_warc

EXAMPLES = int(os.environ.get("THRESHER_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="THRESHER_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], database=None)

SEED_RECORDS = [
    page(0),
    record(http_response(b"<html><body><p>Chunked</p></body></html>", extra="Transfer-Encoding: chunked\r\n")),
    record(http_response(gzip.compress(b"<p>gzipped body</p>", mtime=0), extra="Content-Encoding: gzip\r\n"),
           uri="http://example.com/gz"),
    record(b"WARC-Type: warcinfo\r\n", warc_type="warcinfo"),
    record(b"Plain text of a WET conversion record.\n", warc_type="conversion", uri="http://example.com/wet"),
    record(http_response("<meta charset=euc-kr><p>한국어 문서</p>".encode("euc-kr"), content_type="text/html"),
           uri="http://example.com/kr"),
    page(1),
]


@st.composite
def mutated(draw, data: bytes) -> bytes:
    """`data` with a few random byte flips, insertions, deletions, duplications and a truncation."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(0, 6))):
        if not buf:
            break
        op = draw(st.sampled_from(["flip", "insert", "delete", "duplicate", "truncate"]))
        i = draw(st.integers(0, len(buf) - 1))
        if op == "flip":
            buf[i] = draw(st.integers(0, 255))
        elif op == "insert":
            buf[i:i] = draw(st.binary(min_size=1, max_size=40))
        elif op == "delete":
            del buf[i:i + draw(st.integers(1, 64))]
        elif op == "duplicate":
            buf[i:i] = buf[i:i + draw(st.integers(1, 300))]
        else:
            del buf[i:]
    return bytes(buf)


def _key(item):
    if isinstance(item, Rejection):
        return ("rejection", item.doc.get("id"), item.reason)
    return ("document", item["id"], item.get("payload"))


@FUZZ
@given(st.data(), st.booleans(), st.integers(1, 2000))
def test_warc_reader_on_mutated_files(data, compressed, split_bytes):
    raw = gz(*SEED_RECORDS) if compressed else b"".join(SEED_RECORDS)
    blob = data.draw(mutated(raw))
    opts = WarcOptions(max_record_bytes=1 << 16)
    whole = [_key(i) for i in read_warc(io.BytesIO(blob), "fuzz.warc.gz", opts)]
    # read in byte ranges as the pipeline does: every record and error comes out exactly once
    parts = []
    for start in range(0, max(len(blob), 1), split_bytes):
        parts += [_key(i) for i in read_warc(io.BytesIO(blob), "fuzz.warc.gz", opts,
                                             split=(start, min(start + split_bytes, len(blob))))]
    assert parts == whole
    for item in read_warc(io.BytesIO(blob), "fuzz.warc", opts):
        if isinstance(item, dict):
            assert isinstance(decode_payload(item), (dict, Drop))


@FUZZ
@given(st.binary(max_size=3000))
def test_http_and_charsets_on_arbitrary_bytes(blob):
    try:
        resp = parse_response(blob, 1 << 16)
    except HttpError:
        return
    text, codec = decode_page(resp.body, resp.charset)
    assert isinstance(text, str) and codec


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=12)


@FUZZ
@given(st.lists(st.one_of(
    st.dictionaries(st.sampled_from(["id", "text", "url", "lang", "x"]), JSON_VALUES, max_size=5).map(json.dumps),
    st.text(max_size=60),
    st.binary(max_size=60).map(lambda b: b.decode("latin-1")),
), max_size=12), st.booleans())
def test_jsonl_reader_on_arbitrary_lines(lines, compress):
    blob = "\n".join(lines).encode("utf-8", "surrogatepass")
    if compress:
        blob = gzip.compress(blob, mtime=0)[: len(blob)]  # sometimes cut short, too
    items = list(read_jsonl(io.BytesIO(blob), "fuzz.jsonl", "gzip" if compress else None))
    assert all(isinstance(i, (dict, Rejection)) for i in items)


@FUZZ
@given(st.lists(st.one_of(st.none(), st.text(max_size=50)), max_size=6), st.data())
def test_parquet_reader_on_tables_and_mutated_files(texts, data):
    buf = io.BytesIO()
    pq.write_table(pa.table({"text": pa.array(texts, pa.string()), "id": [str(i) for i in range(len(texts))]}), buf)
    for blob in (buf.getvalue(), data.draw(mutated(buf.getvalue()))):
        items = list(read_parquet(io.BytesIO(blob), "fuzz.parquet"))
        assert all(isinstance(i, (dict, Rejection)) for i in items)


EXTRACTOR = HtmlExtractor()

TAGS = ["<div>", "</div>", "<p>", "</p>", "<br>", "<script>", "</script>", "<style>", "<!--", "-->", "<table><tr><td>",
        "<li>", "<a href='x'>", "</a>", "<![CDATA[", "]]>", "&amp;", "&#0;", "&#x110000;", "&nbsp;", "<", ">", "\x00",
        "<html>", "<body>", "</body>", "<article>", "<h1>", "<pre>", "<svg><foreignObject>", "<noscript>"]


@FUZZ
@given(st.lists(st.one_of(st.sampled_from(TAGS), st.text(max_size=30)), max_size=80))
def test_extraction_on_tag_soup(parts):
    text = EXTRACTOR("".join(parts))
    assert isinstance(text, str)


@functools.cache
def default_chain():
    """Every per-document stage of the default recipe, built once, in recipe order; and the dedup
    stages' prepare functions."""
    cfg = Config()
    stages = enabled_stages(cfg)
    ctx = PipelineContext(cfg, "unused", resources=resolve_resources(cfg, stages))
    return ([(s.name, s.build(getattr(cfg.stages, s.name), ctx.stage_context(s.name)), s.batch)
             for s in stages if s.build is not None],
            [s.prepare(getattr(cfg.stages, s.name)) for s in stages if s.prepare is not None])


@FUZZ
@given(st.one_of(st.text(max_size=600), st.lists(st.one_of(st.sampled_from(TAGS), st.text(max_size=40)),
                                                  max_size=60).map("".join)),
       st.one_of(st.none(), st.text(max_size=40), st.just("http://example.com/a?b=[c]")),
       st.sampled_from(["html", "text"]), st.sampled_from([None, "utf-8", "latin-1", "x-unknown"]))
def test_every_stage_on_generated_documents(body, url, fmt, charset):
    fns, prepares = default_chain()
    doc = {"id": "fuzz", "url": url, "source": "fuzz", "offset": 0, "charset": charset, "format": fmt,
           "payload": body.encode("utf-8", "surrogatepass")}
    for name, fn, batch in fns:
        out = fn([doc])[0] if batch else fn(doc)
        if isinstance(out, Drop):
            return
        assert isinstance(out, dict), (name, out)
        doc = out
    for prepare in prepares:
        assert isinstance(prepare(doc), dict)
