"""HTML to main text: resiliparse by default, trafilatura as an option."""

from __future__ import annotations

import re
import signal
import threading
import time
from contextlib import contextmanager

from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.html import HTMLTree

from transforms.document import Drop

BACKENDS = ("resiliparse", "trafilatura")

_BINARY_MAGIC = (
    b"%PDF", b"\x89PNG", b"GIF8", b"\xff\xd8\xff", b"PK\x03\x04", b"\x1f\x8b", b"BZh", b"\xfd7zXZ",
    b"\x7fELF", b"OggS", b"RIFF", b"wOFF", b"wOF2", b"\x00\x00\x01\x00",
)
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


class ExtractTimeout(Exception):
    pass


def looks_binary(data: bytes, sample: int = 4096) -> bool:
    """A payload that is not text whatever its Content-Type says (images, archives, NUL-filled)."""
    head = data[:sample]
    if head.lstrip().startswith(_BINARY_MAGIC):
        return True
    return head.count(0) > max(1, len(head) // 100)


def control_char_ratio(text: str, sample: int = 20000) -> float:
    s = text[:sample]
    return len(_CONTROL.findall(s)) / len(s) if s else 0.0


@contextmanager
def time_limit(seconds: float):
    """Interrupt the block after `seconds` where a signal can (the main thread, on POSIX).

    Elsewhere the caller gets a soft limit: the elapsed time is checked afterwards and an
    over-long extraction still raises, so the page is dropped the same way either way.
    """
    hard = seconds > 0 and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    start = time.perf_counter()
    if hard:
        def _raise(signum, frame):
            raise ExtractTimeout(f"extraction took longer than {seconds}s")

        old = signal.signal(signal.SIGALRM, _raise)
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        if hard:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
    if seconds > 0 and time.perf_counter() - start > seconds:
        raise ExtractTimeout(f"extraction took longer than {seconds}s")


class HtmlExtractor:
    """Main-content text of an HTML page."""

    def __init__(self, backend: str = "resiliparse", main_content: bool = True, timeout_s: float = 10.0):
        if backend not in BACKENDS:
            raise ValueError(f"unknown extraction backend {backend!r}; choose one of {BACKENDS}")
        self.backend = backend
        self.main_content = main_content
        self.timeout_s = timeout_s
        if backend == "trafilatura":
            import trafilatura  # optional and slow to import: only when asked for

            self._trafilatura = trafilatura

    def __call__(self, html: str) -> str:
        with time_limit(self.timeout_s):
            if self.backend == "resiliparse":
                tree = HTMLTree.parse(html)
                text = extract_plain_text(
                    tree,
                    preserve_formatting=True,
                    main_content=self.main_content,
                    list_bullets=True,
                    alt_texts=False,
                    links=False,
                    form_fields=False,
                    noscript=False,
                )
            else:
                text = self._trafilatura.extract(
                    html,
                    include_comments=False,
                    include_tables=True,
                    no_fallback=not self.main_content,
                    deduplicate=False,
                ) or ""
        return normalise_whitespace(text)


_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_BLANKS = re.compile(r"\n{3,}")


def normalise_whitespace(text: str) -> str:
    """Collapse runs of spaces, trim lines, keep at most one blank line between paragraphs."""
    lines = (_SPACES.sub(" ", ln).strip() for ln in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


class ExtractText:
    """The ``extract`` stage: ``html`` -> ``text``; documents that arrive as text pass through."""

    def __init__(self, backend: str = "resiliparse", main_content: bool = True, timeout_s: float = 10.0,
                 min_chars: int = 1):
        self.extractor = HtmlExtractor(backend, main_content, timeout_s)
        self.min_chars = min_chars

    def __call__(self, doc: dict):
        html = doc.get("html")
        if html is None:
            return doc
        try:
            text = self.extractor(html)
        except ExtractTimeout as e:
            return Drop("extract_timeout", str(e))  # the page stays on the document for rejected/
        if len(text) < self.min_chars:
            return Drop("empty_text", f"{len(text)} characters extracted (min_chars {self.min_chars})")
        del doc["html"]
        doc["text"] = text
        return doc
