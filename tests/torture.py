"""A torture corpus, made at test time: crawl files broken in the ways real crawls break.

`make_corpus(folder)` writes one file per case and returns the cases: what each file holds and
what a run must make of it (documents kept, and drops or errors by reason). Nothing is
downloaded; the largest file (a 200 MB page) is a few hundred KB of gzip, streamed out.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.warcgen import gz, http_response, page, record

PROSE = ("The committee met on Tuesday to discuss the new library building. Everyone agreed that the old "
         "reading room was too small for the town, and that the children's section needed more light. ")


@dataclass
class Case:
    file: str
    what: str
    kept: int  # documents from this file in documents/
    dropped: dict = field(default_factory=dict)  # (stage, reason) -> count, policy drops
    errored: dict = field(default_factory=dict)  # (stage, reason) -> count, broken input


def _html(title: str, body: str, head: str = "") -> str:
    return f"<html><head>{head}<title>{title}</title></head><body><article><h1>{title}</h1><p>{body}</p></article></body></html>"


def _response(html: bytes, uri: str, content_type: str = "text/html; charset=utf-8", **kw) -> bytes:
    return record(http_response(html, content_type=content_type), uri=uri, **kw)


def _big_page(path: Path, size: int) -> None:
    """One gzip member holding a response record with a `size`-byte HTML body, written in chunks."""
    head = (f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {size}\r\n\r\n").encode()
    block_len = len(head) + size
    warc = ("WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-000000000200>\r\n"
            "WARC-Target-URI: http://example.com/huge.html\r\nContent-Type: application/http;msgtype=response\r\n"
            f"Content-Length: {block_len}\r\n\r\n").encode()
    chunk = (b"<p>" + PROSE.encode() + b"</p>\n") * 256
    with open(path, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as fh:
            fh.write(warc + head)
            left = size
            while left > 0:
                fh.write(chunk[:left])
                left -= len(chunk)
            fh.write(b"\r\n\r\n")
        raw.write(gz(page(10_001, PROSE + " After the huge page.")))  # a normal page after it is still read


def make_corpus(folder: Path) -> list[Case]:
    folder.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []

    def warc(name: str, data: bytes, what: str, kept: int, dropped=None, errored=None) -> None:
        (folder / name).write_bytes(data)
        cases.append(Case(name, what, kept, dropped or {}, errored or {}))

    pages = iter(range(10_000))

    def good() -> bytes:
        """A well-formed page whose text no other page of the corpus has."""
        i = next(pages)  # exact dedup ignores digits and case: the pages differ in a word
        word = "".join(chr(97 + (i // 26 ** k) % 26) for k in range(3))
        return page(i, f"{PROSE} These minutes are about the {word} question.")

    warc("truncated-gzip.warc.gz", gz(good(), good(), good())[:-25], "the last gzip member cut short", 2,
         errored={("ingest", "gzip_truncated"): 1})
    body = http_response(_html("Cut", PROSE * 3).encode())
    cut = record(body, uri="http://example.com/cut.html")[:-len(body) // 2]
    warc("cut-record.warc", good() + cut, "the last record cut mid-body (plain WARC)", 1,
         errored={("ingest", "truncated_record"): 1})
    warc("garbage.warc.gz", gz(good()) + b"\x00\xffnot a gzip member\r\n" * 40 + gz(good()),
         "garbage bytes between two gzip members", 2, errored={("ingest", "garbage"): 1})
    no_type = _response(_html("No type", PROSE).encode(), "http://example.com/notype.html", drop=("WARC-Type",))
    warc("no-warc-type.warc.gz", gz(no_type, good()), "a record without WARC-Type", 1,
         errored={("ingest", "bad_header"): 1})
    liar_block = http_response(_html("Liar", PROSE).encode())
    liar = record(liar_block, uri="http://example.com/liar.html", content_length=len(liar_block) + 7)
    warc("lying-length.warc", good() + liar + good(), "a Content-Length 7 bytes too long (plain WARC)", 2,
         errored={("ingest", "bad_content_length"): 1})
    dup_id = {"WARC-Record-ID": "<urn:uuid:11111111-1111-1111-1111-111111111111>"}
    warc("duplicate-ids.warc.gz",
         gz(_response(_html("Same id A", PROSE + " First.").encode(), "http://example.com/a.html", extra_headers=dup_id),
            _response(_html("Same id B", PROSE + " Second, different.").encode(), "http://example.com/b.html",
                      extra_headers=dup_id),
            _response(_html("Same id A", PROSE + " First.").encode(), "http://example.com/a.html", extra_headers=dup_id)),
         "three records with one WARC-Record-ID; the third repeats the first", 2,
         dropped={("dedup_exact", "exact_duplicate"): 1})
    _big_page(folder / "huge-page.warc.gz", 200 * 1024 * 1024)
    cases.append(Case("huge-page.warc.gz", "a 200 MB page, then a normal one", 1, dropped={("ingest", "oversize"): 1}))
    nested = "<div>" * 100_000 + PROSE + "</div>" * 100_000
    warc("nested-divs.warc.gz", gz(_response(f"<html><body>{nested}</body></html>".encode(), "http://example.com/deep.html"),
                                   good()),
         "a page of 100,000 nested <div>s (extraction is killed at the time limit)", 1,
         dropped={("extract", "extract_timeout"): 1})
    cyrillic = "Комитет собрался во вторник, чтобы обсудить новое здание библиотеки. " * 4
    lying_charset = _html("Библиотека", cyrillic, '<meta charset="utf-8">').encode("cp1251")
    latin_as_utf8 = _html("Köln", "Grüße aus Köln, schöne Straße und München. " * 4).encode("latin-1")
    warc("wrong-charset.warc.gz",
         gz(_response(lying_charset, "http://example.com/cp1251.html", content_type="text/html; charset=utf-8"),
            _response(latin_as_utf8, "http://example.com/latin1.html", content_type="text/html; charset=utf-8")),
         "cp1251 and latin-1 pages that claim UTF-8 in the header and <meta>", 2)
    mixed = (_html("Mixed", "Grüße aus Köln. ").encode("utf-8")[:-30] + " Straße in München. ".encode("latin-1")
             + PROSE.encode() + b"</p></article></body></html>")
    warc("mixed-encoding.warc.gz", gz(_response(mixed, "http://example.com/mixed.html")),
         "one page mixing UTF-8 and latin-1 bytes", 1)
    nul_text = _html("NUL", (PROSE * 4).replace(" ", " \x00", 3)).encode()
    warc("nul-bytes.warc.gz",
         gz(_response(nul_text, "http://example.com/nul.html"),
            _response(b"\x00" * 5000, "http://example.com/nul-only.html")),
         "a page with a few NUL bytes; a payload of NUL bytes only", 1,
         dropped={("ingest", "binary_payload"): 1})
    warc("empty.warc.gz", b"", "an empty file", 0)
    warc("zero-payload.warc.gz",
         gz(_response(b"", "http://example.com/empty-body.html"), record(b"", uri="http://example.com/no-block")),
         "a response with a zero-byte body; a record with a zero-byte block", 0,
         dropped={("ingest", "empty_payload"): 1}, errored={("ingest", "bad_http_header"): 1})
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 16
    pdf = b"%PDF-1.7\n" + bytes(range(256)) * 16
    warc("not-html.warc.gz",
         gz(_response(png, "http://example.com/image.html"), _response(pdf, "http://example.com/doc.html")),
         "a PNG and a PDF labelled text/html", 0, dropped={("ingest", "binary_payload"): 2})

    lines = [
        json.dumps({"id": "j-ok", "text": PROSE, "url": "http://j/ok"}),
        '{"id": "j-broken", "text": "an unterminated',
        json.dumps({"id": "j-int", "text": 42}),
        json.dumps({"id": "j-list", "text": ["a", "list"]}),
        json.dumps({"id": "j-null", "text": None}),
        json.dumps(["not", "an", "object"]),
        json.dumps({"id": {"nested": True}, "text": PROSE + " Odd id."}),
        "",
        "\x00\x00\x00",
        json.dumps({"id": "j-ok-2", "text": PROSE + " The second good line."}),
    ]
    (folder / "broken.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    cases.append(Case("broken.jsonl", "JSONL with broken lines, wrong types, a null text, a blank line and NUL bytes", 2,
                      dropped={("ingest", "no_text"): 1},
                      errored={("ingest", "bad_json"): 2, ("ingest", "bad_record"): 4}))
    pq.write_table(pa.table({"id": ["p1", "p2"], "text": ["A Parquet row. " + PROSE, None]}), folder / "rows.parquet")
    cases.append(Case("rows.parquet", "Parquet with a null text", 1, dropped={("ingest", "no_text"): 1}))
    (folder / "not-parquet.parquet").write_bytes(b"PAR1 this is not a parquet file")
    cases.append(Case("not-parquet.parquet", "a file named .parquet that is not Parquet", 0,
                      errored={("ingest", "bad_file"): 1}))
    return cases
