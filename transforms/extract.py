"""HTML to main text: resiliparse by default, trafilatura as an option."""

from __future__ import annotations

import importlib
import os
import re
import select
import signal
import struct
import subprocess
import sys
from dataclasses import dataclass

from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.html import HTMLTree

from thresher.transforms.document import Drop
from thresher.transforms.stage import Stage, check, register

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


class HtmlExtractor:
    """Main-content text of an HTML page."""

    def __init__(self, backend: str = "resiliparse", main_content: bool = True):
        if backend not in BACKENDS:
            raise ValueError(f"unknown extraction backend {backend!r}; choose one of {BACKENDS}")
        self.backend = backend
        self.main_content = main_content
        if backend == "trafilatura":
            import trafilatura  # optional and slow to import: only when asked for

            self._trafilatura = trafilatura

    def __call__(self, html: str) -> str:
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


class ExtractionSandbox:
    """An `HtmlExtractor` in a child process, killed when a page takes longer than `timeout_s`.

    Extraction is C code (resiliparse) or deep Python (trafilatura) that no signal can interrupt in
    a worker thread, and some pages are pathological: resiliparse's main-content pass over 20,000
    nested <div>s takes 16 s and grows faster than the square of the depth. So the page goes to a
    child (`python -m transforms.extract`, started once, restarted after a kill) over a pipe; the
    cost is a copy of the page each way, the gain a limit that holds. datatrove sandboxes its
    extractors for the same reason.
    """

    def __init__(self, backend: str = "resiliparse", main_content: bool = True, timeout_s: float = 10.0):
        HtmlExtractor(backend, main_content)  # an unknown backend fails here, not in the child
        self.args = (backend, "1" if main_content else "0")
        self.timeout_s = timeout_s
        self.proc: subprocess.Popen | None = None

    def _start(self) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        # its own session: Ctrl-C at the terminal goes to the job's process group, and a child still
        # importing Python's site module when it lands would print "Fatal Python error" and a
        # traceback; the child ends with its parent instead (`_serve`)
        self.proc = subprocess.Popen([sys.executable, "-m", "thresher.transforms.extract", *self.args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env, start_new_session=True)

    def _stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            for f in (self.proc.stdin, self.proc.stdout):
                f.close()
            self.proc = None

    def __call__(self, html: str) -> str:
        data = html.encode("utf-8", "surrogatepass")
        for attempt in (1, 2):  # a child found dead (killed between pages) gets one fresh start
            if self.proc is None or self.proc.poll() is not None:
                self._start()
            try:
                self.proc.stdin.write(struct.pack("<Q", len(data)) + data)
                self.proc.stdin.flush()
                reply = _read_reply(self.proc.stdout, self.timeout_s)
                break
            except (OSError, EOFError) as e:  # the child died (out of memory, a crash in C)
                self._stop()
                if attempt == 2:  # twice on this page: the page's error, not the job's
                    raise ExtractionError(f"extractor process failed: {e}") from None
        if reply is None:
            self._stop()
            raise ExtractTimeout(f"extraction took longer than {self.timeout_s}s")
        ok, text = reply
        if not ok:
            raise ExtractionError(text)
        return text

    def close(self) -> None:
        self._stop()

    def __del__(self):
        try:
            self._stop()
        except Exception:
            pass


class ExtractionError(Exception):
    pass


def _read_exact(fh, n: int) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise EOFError(f"extractor process closed its output ({len(data)} of {n} bytes)")
    return data


def _read_reply(fh, timeout_s: float):
    """(ok, text) from the child, or None when no reply started within `timeout_s`."""
    ready, _, _ = select.select([fh], [], [], timeout_s)
    if not ready:
        return None
    ok, n = struct.unpack("<BQ", _read_exact(fh, 9))
    return bool(ok), _read_exact(fh, n).decode("utf-8", "surrogatepass")


def _serve(backend: str, main_content: bool) -> None:
    """The child's loop: length-prefixed UTF-8 pages in, (ok, text or error) out, until stdin closes."""
    # the child runs in its own session (`ExtractionSandbox._start`), so Ctrl-C at the terminal does
    # not reach it; it ends when its parent does (stdin closes; on Linux it is also killed with it).
    # SIGINT sent to it alone is ignored too: the driver reports an interrupt, once.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):  # die with the parent, even one killed by SIGKILL
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    extractor = HtmlExtractor(backend, main_content)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        head = stdin.read(8)
        if len(head) < 8:
            return
        html = _read_exact(stdin, struct.unpack("<Q", head)[0]).decode("utf-8", "surrogatepass")
        try:
            out, ok = extractor(html).encode("utf-8", "surrogatepass"), 1
        except Exception as e:
            out, ok = f"{type(e).__name__}: {e}".encode("utf-8", "surrogatepass"), 0
        try:
            stdout.write(struct.pack("<BQ", ok, len(out)) + out)
            stdout.flush()
        except BrokenPipeError:  # the parent is gone (Ctrl-C, killed): nobody waits for this page
            os._exit(0)


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
        self.extractor = ExtractionSandbox(backend, main_content, timeout_s) if timeout_s > 0 \
            else HtmlExtractor(backend, main_content)
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


# --- the `extract` stage -----------------------------------------------------------------------


@dataclass
class ExtractParams:
    enabled: bool = True
    backend: str = "resiliparse"  # resiliparse | trafilatura
    main_content: bool = True
    timeout_s: float = 10.0  # per page; slower pages are dropped as `extract_timeout`
    min_chars: int = 1

    def validate(self, path: str) -> None:
        check(self.backend in BACKENDS, f"{path}.backend", f"must be one of {', '.join(BACKENDS)}, not {self.backend!r}")
        if self.enabled and self.backend == "trafilatura":
            check(_importable("trafilatura", "lxml.html.clean"), f"{path}.backend", "trafilatura is not installed: pip install 'thresher[trafilatura]'")
        check(self.timeout_s >= 0, f"{path}.timeout_s", "must be >= 0 (0: no limit)")
        check(self.min_chars >= 0, f"{path}.min_chars", "must be >= 0")


def _importable(*modules: str) -> bool:
    try:
        for m in modules:
            importlib.import_module(m)
    except ImportError:
        return False
    return True


def _build(params: ExtractParams, ctx) -> ExtractText:
    return ExtractText(params.backend, params.main_content, params.timeout_s, params.min_chars)


register(Stage(name="extract", order=20, params=ExtractParams, build=_build,
               description="HTML to main text (resiliparse, or trafilatura)",
               details=("HTML to main text with resiliparse (default) or trafilatura (`pip install"
                        " 'thresher[trafilatura]'`)"),
               reasons=("empty_text", "extract_timeout")))


if __name__ == "__main__":
    _serve(sys.argv[1], sys.argv[2] == "1")
