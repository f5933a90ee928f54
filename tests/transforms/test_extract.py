import pytest

from thresher.transforms.document import Drop
from thresher.transforms.extract import (ExtractionError, ExtractionSandbox, ExtractText, ExtractTimeout, HtmlExtractor, looks_binary,
                                normalise_whitespace)

ARTICLE = """<html><head><title>T</title><script>var x = "script text";</script><style>p{}</style></head>
<body><nav><a href="/">Home</a> | <a href="/about">About</a></nav>
<article><h1>Installing the package</h1>
<p>The package is installed with the system's package manager. It pulls in every dependency it needs.</p>
<p>Afterwards, the service starts automatically and listens on the default port.</p></article>
<footer>Copyright 2024</footer></body></html>"""


@pytest.mark.parametrize("backend", ["resiliparse", "trafilatura"])
def test_main_text_without_scripts(backend):
    text = HtmlExtractor(backend)(ARTICLE)
    assert "installed with the system's package manager" in text
    assert "listens on the default port" in text
    assert "script text" not in text and "p{}" not in text


def test_stage_turns_html_into_text_and_passes_text_through():
    stage = ExtractText()
    out = stage({"id": "a", "html": ARTICLE})
    assert "html" not in out and "package manager" in out["text"]
    assert stage({"id": "b", "text": "already text"}) == {"id": "b", "text": "already text"}


def test_page_without_text_is_dropped_with_reason():
    out = ExtractText()({"id": "a", "html": "<html><body><script>only()</script></body></html>"})
    assert isinstance(out, Drop) and out.reason == "empty_text"


def test_min_chars():
    out = ExtractText(min_chars=10_000)({"id": "a", "html": ARTICLE})
    assert isinstance(out, Drop) and out.reason == "empty_text"


def test_timeout_drops_the_page():
    stage = ExtractText(timeout_s=1e-6)
    out = stage({"id": "a", "html": ARTICLE * 200})
    assert isinstance(out, Drop) and out.reason == "extract_timeout"


def test_sandbox_kills_a_pathological_page_and_goes_on():
    # resiliparse's main-content pass grows faster than the square of the nesting depth: this page
    # alone takes minutes; the child extracting it is killed at the limit and the next page works
    deep = "<html><body>" + "<div>" * 100_000 + "deep" + "</div>" * 100_000 + "</body></html>"
    sandbox = ExtractionSandbox(timeout_s=1.0)
    try:
        with pytest.raises(ExtractTimeout):
            sandbox(deep)
        assert sandbox.proc is None  # killed
        assert sandbox(ARTICLE) == HtmlExtractor()(ARTICLE)
    finally:
        sandbox.close()


def test_sandbox_survives_its_child_dying():
    import threading

    slow = "<html><body>" + "<div>" * 20_000 + "slow" + "</div>" * 20_000 + "</body></html>"  # ~15 s
    sandbox = ExtractionSandbox(timeout_s=60.0)
    try:
        assert "package manager" in sandbox(ARTICLE)
        sandbox.proc.kill()  # dead between pages: restarted
        assert "package manager" in sandbox(ARTICLE)
        # a child that dies on a page, again after its restart (a page that crashes the extractor
        # would): that page fails
        stop = threading.Event()

        def killer():
            while not stop.wait(0.3):
                proc = sandbox.proc
                if proc is not None:
                    proc.kill()

        thread = threading.Thread(target=killer)
        thread.start()
        try:
            with pytest.raises(ExtractionError):
                sandbox(slow)
        finally:
            stop.set()
            thread.join()
        assert sandbox(ARTICLE) == HtmlExtractor()(ARTICLE)
    finally:
        sandbox.close()


def test_malformed_html_never_raises():
    for html in ["<", "<html><body><p>unclosed <b>bold <i>it", "<" * 10_000, "\x00<p>\x00nul\x00</p>", "<div>" * 5000 + "deep"]:
        out = ExtractText()({"id": "a", "html": html})
        assert isinstance(out, (dict, Drop))


def test_looks_binary():
    assert looks_binary(b"%PDF-1.4 ...")
    assert looks_binary(b"\x00" * 100 + b"<html>")
    assert not looks_binary("<html><body>Ünïcödé</body></html>".encode())


def test_normalise_whitespace():
    assert normalise_whitespace("  a \t b \n\n\n\n c  \r\n") == "a b\n\nc"
