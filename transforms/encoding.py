"""Bytes of a web page to text: charset from BOM, bytes, HTTP header, <meta>, or detection."""

from __future__ import annotations

import codecs
import re

import charset_normalizer

from resiliparse.parse.encoding import detect_encoding

_META_CHARSET = re.compile(
    rb"""<meta[^>]+?charset\s*=\s*["']?\s*([a-zA-Z0-9_:.\-]+)""",
    re.IGNORECASE,
)

# WHATWG's encoding standard decodes these labels with a superset codec; so do browsers.
_WHATWG_SUPERSETS = {
    "ascii": "cp1252",
    "us-ascii": "cp1252",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "iso-8859-9": "cp1254",
    "euc-kr": "cp949",
    "euc_kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "tis-620": "cp874",
    "iso-8859-11": "cp874",
}

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def normalise_charset(label: str | None) -> str | None:
    """A Python codec name for an HTTP/HTML charset label, or None if unknown."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    label = _WHATWG_SUPERSETS.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def meta_charset(data: bytes, scan_bytes: int = 4096) -> str | None:
    m = _META_CHARSET.search(data[:scan_bytes])
    return m.group(1).decode("ascii", "replace") if m else None


def decode_page(data: bytes, header_charset: str | None = None) -> tuple[str, str]:
    """Decode a page; returns ``(text, codec)``.

    Order: a BOM; then strictly valid UTF-8 (legacy-encoded text with non-ASCII bytes is
    practically never valid UTF-8, while servers and meta tags often lie); then the HTTP header
    charset and the ``<meta>`` charset, each only if the bytes decode cleanly with it; then UTF-8
    with a few stray Windows-1252 bytes (a page pasted together from two sources); then
    uchardet's guess. The last resort decodes with replacement characters, never raises.
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(codec, "replace"), codec
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    for label in (header_charset, meta_charset(data)):
        codec = normalise_charset(label)
        if codec and codec != "utf-8":
            try:
                return data.decode(codec), codec
            except (UnicodeDecodeError, LookupError):
                pass
    mixed = _mostly_utf8(data)
    if mixed is not None:
        return mixed, "utf-8+cp1252"
    # uchardet is fast but gives up on some legacy pages; charset-normalizer is slower and better.
    guess = normalise_charset(detect_encoding(data, html5_compatible=False))
    if guess and guess != "utf-8":
        try:
            return data.decode(guess), guess
        except (UnicodeDecodeError, LookupError):
            pass
    best = charset_normalizer.from_bytes(data[:65536]).best()
    codec = normalise_charset(best.encoding) if best is not None else None
    if codec:
        try:
            return data.decode(codec), codec
        except (UnicodeDecodeError, LookupError):
            pass
    # Mostly UTF-8 with a few broken bytes is the commonest case left.
    return data.decode("utf-8", "replace"), "utf-8"


_ESCAPED = re.compile("[\udc80-\udcff]+")


def _cp1252(run: str) -> str:
    raw = bytes(ord(c) - 0xDC00 for c in run)
    return "".join(bytes([b]).decode("cp1252", "strict") if b not in _CP1252_HOLES else chr(b) for b in raw)


_CP1252_HOLES = {0x81, 0x8D, 0x8F, 0x90, 0x9D}  # undefined in cp1252: kept as their latin-1 code points


def _mostly_utf8(data: bytes) -> str | None:
    """Text that is UTF-8 except for a few bytes, with those bytes read as Windows-1252; or None.

    A page is taken as mixed when its valid multi-byte characters are at least a tenth of its stray
    bytes and the strays stand alone, as accented letters do in Western text: a legacy page that
    merely claims UTF-8 has almost no valid sequences (under 2% of its high bytes in cp1250-1254
    text), and a double-byte one (EUC-KR, GBK, Shift-JIS), whose pairs often happen to be valid
    UTF-8, has its strays in runs.
    """
    text = data.decode("utf-8", "surrogateescape")
    runs = _ESCAPED.findall(text)
    stray = sum(len(m) for m in runs)
    valid = sum(1 for c in text if c > "\x7f") - stray
    if stray == 0 or valid == 0 or valid * 10 < stray or sum(len(m) > 1 for m in runs) * 10 > len(runs):
        return None
    return _ESCAPED.sub(lambda m: _cp1252(m.group(0)), text)
