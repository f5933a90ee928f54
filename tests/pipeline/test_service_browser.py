"""`thresher serve` in a real browser: Debian's Chromium driven by Playwright (its own browser
downloads are not used). Submit the embedded sample through the form, watch it succeed, open its
funnel, click a drop reason and read a dropped document, filter kept documents by language, look at
a signal's distribution, and compare the run with a second one. Screenshots of each page go to
$THRESHER_TEST_ARTIFACTS/service/ (CI keeps them) or the test's temporary folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
sync_api = pytest.importorskip("playwright.sync_api")

from tests.pipeline.test_shards_inspect import _chromium  # noqa: E402
from tests.servicekit import FAST, HOSTILE_URL, HOSTILE_HTML, Server, docs_warc  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture
def browser_page():
    path = _chromium()
    if path is None:
        pytest.skip("no Chromium here (.ci/run installs Debian's chromium where apt works)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.errors = errors
        yield page
        browser.close()


def shots_dir(tmp_path: Path) -> Path:
    keep = os.environ.get("THRESHER_TEST_ARTIFACTS")
    d = Path(keep) / "service" if keep else tmp_path / "screenshots"
    d.mkdir(parents=True, exist_ok=True)
    return d


def submit_through_the_form(page, server, name: str, recipe: str = "", inputs: str = "") -> str:
    page.goto(server.base + "/submit")
    page.fill("#name", name)
    if recipe:
        page.fill("#recipe", recipe)
    if inputs:
        page.fill("#inputs", inputs)
    page.click("#submit")
    page.wait_for_url("**/jobs/*")
    return page.url.rsplit("/", 1)[1]


def test_submit_watch_inspect_and_compare_in_a_browser(browser_page, tmp_path):
    page, shots = browser_page, shots_dir(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    hostile = docs_warc(str(data / "hostile.warc.gz"), 4, extra=[(HOSTILE_URL, HOSTILE_HTML)])
    server = Server(tmp_path / "home", "--root", str(data), "--root", os.path.dirname(_sample()), "--max-jobs", "2").start()
    try:
        # a recipe error comes back to the form, nothing is queued
        page.goto(server.base + "/submit")
        page.fill("#recipe", "stages:\n  gopher_quality:\n    min_doc_wordz: 80\n")
        page.click("#submit")
        page.wait_for_selector("#error:has-text('min_doc_wordz')")
        assert server.get("/api/jobs").json()["jobs"] == []
        page.errors.clear()  # the browser logs the 400 it was answered

        # the embedded sample, every stage, through the form; the job page follows it to the end
        job_a = submit_through_the_form(page, server, "sample, defaults")
        page.wait_for_selector("[data-key=state] .state.running, [data-key=state] .state.succeeded", timeout=120_000)
        page.screenshot(path=str(shots / "1-job-running.png"), full_page=True)
        # a second run while the first runs: the same input, a stricter recipe
        page.goto(server.base + "/")
        job_b = submit_through_the_form(page, server, "sample, stricter", inputs=_sample(),
                                        recipe="stages:\n  gopher_quality:\n    min_doc_words: 120\n")
        # and an annotate-mode run of a few pages, one of them hostile (every document kept, with its signals)
        annotate = server.submit(name="annotate", recipe="stages:\n  gopher_quality:\n    annotate: true\n",
                                 inputs=[hostile], only=FAST)
        page.goto(server.base + "/")
        page.wait_for_selector(f"tr[data-job='{job_a}'] .state", timeout=30_000)
        page.screenshot(path=str(shots / "2-runs-list.png"), full_page=True)
        for job in (job_a, job_b):
            page.wait_for_selector(f"tr[data-job='{job}'][data-state='succeeded']", timeout=300_000)
        assert server.job(job_a)["state"] == "succeeded" and server.job(job_b)["state"] == "succeeded"
        page.screenshot(path=str(shots / "3-runs-list-done.png"), full_page=True)

        # the run page: funnel, plots, shards
        page.goto(f"{server.base}/jobs/{job_a}")
        page.click("#run-link")
        page.wait_for_selector("#funnel table")
        stats = server.get(f"/api/runs/{job_a}/stats").json()
        funnel_rows = page.locator("#funnel tr").count() - 1
        assert funnel_rows == len(stats["stages"])
        assert page.locator("#tokens table").count() >= 1 and page.locator("#lengths svg").count() == 1
        page.screenshot(path=str(shots / "4-run-page.png"), full_page=False)
        page.screenshot(path=str(shots / "4-run-page-full.png"), full_page=True)

        # click the most frequent drop reason: its dropped documents with their signals
        link = page.locator("#reasons a.reason-link").first
        reason = link.inner_text()
        link.click()
        page.wait_for_selector("#documents .doc")
        assert f"dropped documents for {reason}" in page.inner_text("#summary")
        assert stats["totals"]["by_reason"][reason] == int(page.inner_text("#summary").split()[0].replace(",", ""))
        first = page.locator("#documents .doc").first
        assert first.locator(".reason").inner_text() == reason
        assert first.locator("pre.text").inner_text().strip() and first.locator(".signals").count() == 1
        page.screenshot(path=str(shots / "5-dropped-documents.png"), full_page=False)

        # kept documents of one language, from the run page's language table
        page.goto(f"{server.base}/runs/{job_a}")
        # drops before langid have no language and no kept document to list: no link
        assert page.locator("#languages a.lang-link", has_text="before langid").count() == 0
        assert "(before langid)" in page.inner_text("#languages")
        page.locator("#languages a.lang-link", has_text="de").first.click()
        page.wait_for_selector("#documents .doc")
        langs = page.locator("#documents .doc.kept > div:nth-child(2)").all_inner_texts()
        assert langs and all(t.startswith("lang de") for t in langs)
        page.screenshot(path=str(shots / "6-kept-german.png"), full_page=False)

        # the hostile page's text is shown as text: no script of it ran
        assert server.wait(annotate["id"])["state"] == "succeeded"
        shown = _find_document(page, server, annotate["id"], HOSTILE_URL)
        assert "<script>window.__pwned = 1;" in shown
        assert page.evaluate("window.__pwned") is None and page.title() != "pwned"

        # compare the two runs side by side
        page.goto(server.base + "/compare")
        page.select_option("#a", job_a)
        page.select_option("#b", job_b)
        page.click("#compare")
        page.wait_for_selector("#funnel table")
        assert page.locator("#reasons tr").count() > 1
        docs = server.get(f"/api/compare?a={job_a}&b={job_b}").json()["documents"]
        assert docs["both"] > 0 and docs["only_a"] > 0  # the stricter recipe keeps fewer
        assert f"only by A {docs['only_a']:,}" in page.inner_text("#documents")
        assert "gopher_quality.gopher_short_doc" in docs["only_a_dropped_in_b_by"]
        page.screenshot(path=str(shots / "7-compare.png"), full_page=True)

        # the distribution of a filter's signal with its threshold, from an annotate-mode run
        page.goto(f"{server.base}/runs/{annotate['id']}/signals")
        rules = server.get(f"/api/runs/{annotate['id']}/signals").json()["rules"]
        page.select_option("#rule", str(next(i for i, r in enumerate(rules) if r["rule"] == "min_alpha_words_ratio")))
        page.wait_for_selector("#signal:has-text('alpha_words < 0.8')")
        page.wait_for_selector("#signal-histogram #threshold", state="attached")
        assert "threshold 0.8" in page.inner_text("#signal")
        page.screenshot(path=str(shots / "8-signal.png"), full_page=True)
        assert not page.errors, page.errors
    finally:
        server.stop()


def _sample() -> str:
    from thresher.pipeline.engines.run import embedded_sample

    return embedded_sample()


def _find_document(page, server, job_id: str, url: str) -> str:
    """The text the documents page shows for `url`, whichever reason dropped it (or kept)."""
    for kind in ("dropped", "kept"):
        rows = server.get(f"/api/runs/{job_id}/documents?kind={kind}&limit=100").json()
        for offset in range(0, rows["total"], 20):
            page.goto(f"{server.base}/runs/{job_id}/documents?kind={kind}&offset={offset}")
            page.wait_for_selector("#summary:not(:empty)")
            box = page.locator(f"#documents .doc:has(span.label:text-is('{url}'))")
            if box.count():
                return box.locator("pre.text").inner_text()
    raise AssertionError(f"{url} is on no documents page")
