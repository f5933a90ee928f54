import gzip

import pytest

from thresher.transforms.encoding import decode_page, meta_charset, normalise_charset
from thresher.transforms.http_response import HttpError, parse_content_type, parse_response

KOREAN = "가능한 언어: 모듈 목록. 다음은 아파치 배포본에 포함된 모든 모듈 목록이다."
GERMAN = "Größenänderung der Übersicht für Straßenkarten: ä ö ü ß"


def test_parse_response_headers_and_body():
    r = parse_response(b"HTTP/1.0 404 Not Found\r\nContent-type: text/html; charset=ISO-8859-1\r\nX-A: 1\r\nX-A: 2\r\n\r\n<p>gone</p>")
    assert r.status == 404
    assert r.mime_type == "text/html" and r.charset == "iso-8859-1"
    assert r.headers["x-a"] == "1, 2"
    assert r.body == b"<p>gone</p>"


def test_chunked_and_gzip_bodies_are_decoded():
    body = gzip.compress(b"<p>hello</p>", mtime=0)
    chunked = f"{len(body) - 5:x}\r\n".encode() + body[:-5] + b"\r\n5\r\n" + body[-5:] + b"\r\n0\r\n\r\n"
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n" + chunked
    assert parse_response(raw).body == b"<p>hello</p>"


@pytest.mark.parametrize(
    "raw,reason",
    [
        (b"garbage without headers", "bad_http_header"),
        (b"SPDY/9 200\r\n\r\nx", "bad_http_header"),
        (b"HTTP/1.1 abc OK\r\n\r\nx", "bad_http_header"),
        (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\nnot gzip", "bad_content_encoding"),
        (b"HTTP/1.1 200 OK\r\nContent-Encoding: br-weird\r\n\r\nx", "content_encoding"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nx", "bad_chunked_encoding"),
    ],
)
def test_broken_responses_name_their_reason(raw, reason):
    with pytest.raises(HttpError) as e:
        parse_response(raw)
    assert e.value.reason == reason


def test_parse_content_type():
    assert parse_content_type('text/HTML; Charset="EUC-KR"') == ("text/html", "euc-kr")
    assert parse_content_type("") == ("", None)


def test_euc_kr_page_from_meta():
    html = f'<html><head><meta http-equiv="Content-Type" content="text/html; charset=EUC-KR"></head><body>{KOREAN}</body></html>'
    text, codec = decode_page(html.encode("euc-kr"))
    assert KOREAN in text and codec == "cp949"


def test_latin1_page_from_header_decodes_as_windows_1252():
    data = f"<p>{GERMAN} \u20ac</p>".encode("cp1252")
    text, codec = decode_page(data, "iso-8859-1")
    assert GERMAN in text and "\u20ac" in text and codec == "cp1252"


def test_valid_utf8_wins_over_a_lying_declaration():
    text, codec = decode_page(f'<meta charset="iso-8859-1"><p>{GERMAN}</p>'.encode(), "iso-8859-1")
    assert GERMAN in text and codec == "utf-8"


def test_undeclared_legacy_page_is_detected():
    data = ("<html><body>" + KOREAN * 20 + "</body></html>").encode("euc-kr")
    text, _ = decode_page(data)
    assert KOREAN in text


def test_invalid_utf8_never_raises():
    data = "<p>caf\u00e9 ".encode() + b"\xff\xfe\xc3(" + "<p>na\u00efve</p>".encode()
    text, codec = decode_page(data, "utf-8")
    assert "caf" in text and isinstance(text, str)


def test_utf8_page_with_stray_windows_1252_bytes_keeps_both_parts():
    data = "<p>Grüße aus Köln. </p>".encode() + " Straße in München — Maß.".encode("cp1252")
    text, codec = decode_page(data, "utf-8")
    assert "Grüße aus Köln" in text and "Straße in München — Maß" in text and codec == "utf-8+cp1252"


def test_legacy_page_claiming_utf8_is_not_read_as_mixed():
    text, codec = decode_page("<p>Комитет собрался во вторник обсудить библиотеку</p>".encode("cp1251"), "utf-8")
    assert "Комитет собрался" in text and codec == "cp1251"


@pytest.mark.parametrize("text,codec", [("아파치에서 핸들러 사용 모듈 목록 지시어 빠른참조 " * 20, "cp949"),
                                        ("模块列表 快速参考 安装 编译 " * 20, "gb18030"),
                                        ("モジュール一覧 クイックリファレンス インストール " * 20, "cp932")])
def test_unlabelled_double_byte_page_is_not_read_as_mixed(text, codec):
    # many EUC-KR/GBK byte pairs happen to be valid UTF-8: 43 Korean pages of the crawl were misread
    # by a first version of the mixed rule
    decoded, got = decode_page(text.encode(codec))
    assert got != "utf-8+cp1252" and decoded == text


def test_bom_decides():
    text, codec = decode_page("\ufeff<p>x</p>".encode("utf-16-le"))
    assert text == "<p>x</p>" and codec == "utf-16-le"


def test_charset_labels():
    assert normalise_charset("EUC-KR") == "cp949"
    assert normalise_charset("utf8") == "utf-8"
    assert normalise_charset("no-such-charset") is None
    assert meta_charset(b'<meta charset="Shift_JIS">') == "Shift_JIS"
