"""`thresher serve` over HTTP: the real server process, real `thresher run` jobs."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from thresher.pipeline.config import ConfigError, load  # noqa: E402
from thresher.pipeline.tools.inspection import verify_run  # noqa: E402
from tests.servicekit import FAST, FAST_LANG, HOSTILE_URL, HOSTILE_HTML, Server, docs_warc, pid_alive  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("service-data")
    docs_warc(str(d / "docs.warc.gz"), 12, extra=[(HOSTILE_URL, HOSTILE_HTML)])
    return d


@pytest.fixture(scope="module")
def server(tmp_path_factory, data):
    s = Server(tmp_path_factory.mktemp("service-home"), "--root", str(data), "--max-jobs", "2").start()
    yield s
    s.stop()


def _funnel_ok(report: dict) -> None:
    t = report["totals"]
    assert t["read"] == t["kept"] + t["dropped"] + t["errored"]


def test_a_job_goes_from_queued_to_succeeded_and_its_run_is_served(server, data):
    job = server.submit(name="docs", inputs=[str(data / "docs.warc.gz")], only=FAST_LANG)
    assert job["state"] in ("queued", "running") and job["output"].startswith(server.home)
    done = server.wait(job["id"])
    assert done["state"] == "succeeded", done["error"]
    assert done["returncode"] == 0 and done["run"] and done["progress"]["fraction"] == 1.0
    assert done["progress"]["records"] == 13
    jid = job["id"]
    # the API's views of the run agree with the run directory
    funnel = server.get(f"/api/runs/{jid}/funnel").json()
    _funnel_ok(funnel)
    stats = json.loads(Path(done["output"], "stats.json").read_text())
    assert funnel["totals"]["kept"] == stats["totals"]["kept"] == pq.read_table(
        os.path.join(done["output"], "documents")).num_rows
    langs = server.get(f"/api/runs/{jid}/languages").json()["languages"]
    assert sum(x["kept"] for x in langs) == stats["totals"]["kept"]
    assert "docs.example.org" in json.dumps(server.get(f"/api/runs/{jid}/sources").json())
    hist = server.get(f"/api/runs/{jid}/histograms").json()
    assert sum(hist["chars_kept_dropped"]["kept"]) == stats["totals"]["kept"]
    assert server.get(f"/api/runs/{jid}/shards").json() == {"shards": None, "manifest": None}  # no tokenize stage
    assert server.get(f"/api/runs/{jid}/dedup").status == 200
    report = server.get(f"/api/runs/{jid}/report").json()
    assert report["totals"] == {k: v for k, v in stats["totals"].items() if k != "by_reason"}
    assert report["by_reason"] == stats["totals"]["by_reason"]
    # documents a page at a time: dropped by reason, and every drop accounted for
    reasons = {k: v for k, v in stats["totals"]["by_reason"].items() if k != "ingest.not_response"}
    for reason, n in reasons.items():
        page = server.get(f"/api/runs/{jid}/documents?kind=dropped&reason={reason}&limit=2").json()
        assert page["total"] == n and len(page["rows"]) == min(2, n)
        assert all(f"{r['stage']}.{r['reason']}" == reason for r in page["rows"])
    every = server.get(f"/api/runs/{jid}/documents?kind=dropped&limit=100").json()
    assert every["total"] == sum(reasons.values())
    second = server.get(f"/api/runs/{jid}/documents?kind=dropped&limit=3&offset=3").json()
    assert [r["id"] for r in second["rows"]] == [r["id"] for r in every["rows"][3:6]]
    kept = server.get(f"/api/runs/{jid}/documents?kind=kept&lang=en").json()
    assert kept["total"] == stats["totals"]["kept"] and all(r["lang"] == "en" for r in kept["rows"])
    assert server.get(f"/api/runs/{jid}/documents?kind=kept&lang=xx").json()["total"] == 0
    # the log, the list and its filters, the schema
    assert "thresher run" in server.get(f"/api/jobs/{jid}/log").text
    listed = server.get("/api/jobs?state=succeeded").json()["jobs"]
    assert jid in [j["id"] for j in listed] and all(j["state"] == "succeeded" for j in listed)
    assert server.get("/api/jobs?state=bogus").status == 400
    schema = server.get("/openapi.json").json()
    for path in ("/api/jobs", "/api/jobs/{job_id}/cancel", "/api/runs/{job_id}/documents", "/api/compare"):
        assert path in schema["paths"]
    assert server.post(f"/api/jobs/{jid}/resume").status == 409  # only unfinished jobs resume


def test_hostile_text_is_data_in_the_api_and_inert_in_pages(server, data):
    job = server.wait(server.submit(name="hostile", inputs=[str(data / "docs.warc.gz")], only=FAST)["id"])
    rows = server.get(f"/api/runs/{job['id']}/documents?kind=dropped&limit=100").json()["rows"]
    rows += server.get(f"/api/runs/{job['id']}/documents?kind=kept&limit=100").json()["rows"]
    hostile = next(r for r in rows if r["url"] == HOSTILE_URL)
    # a rerun is a new job with the same spec, into a new run directory, with the same result
    again = server.post(f"/api/jobs/{job['id']}/rerun")
    assert again.status == 201 and again.json()["rerun_of"] == job["id"] and again.json()["output"] != job["output"]
    assert server.wait(again.json()["id"])["state"] == "succeeded"
    cmp = server.get(f"/api/compare?a={job['id']}&b={again.json()['id']}").json()
    assert cmp["documents"]["only_a"] == cmp["documents"]["only_b"] == 0 and cmp["documents"]["both"] > 0
    assert "<script>window.__pwned = 1;" in hostile["text"]  # the JSON carries the text as it is
    for path in (f"/runs/{job['id']}", f"/runs/{job['id']}/documents", "/"):
        page = server.get(path)
        assert page.status == 200
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        # no "<" of the data reaches the HTML: only the page's own tags
        assert "<script>window" not in page.text and "<img src=x" not in page.text
        assert page.text.count("<script") == page.text.count("</script>")


def test_bad_recipes_are_refused_with_the_clis_errors(server, data, tmp_path):
    before = server.get("/api/jobs").json()["counts"]
    bad = "stages:\n  gopher_quality:\n    min_doc_wordz: 80\n"
    r = server.post("/api/jobs", {"recipe": bad})
    assert r.status == 400
    path = tmp_path / "bad.yaml"
    path.write_text(bad)
    with pytest.raises(ConfigError) as cli:
        load(str(path))
    assert str(cli.value).split(": ", 1)[-1] in r.json()["detail"]
    assert "min_doc_wordz" in r.json()["detail"]
    assert server.post("/api/jobs", {"recipe": "stages: [unclosed"}).status == 400
    assert "YAML" in server.post("/api/jobs", {"recipe": "a: !!python/object/apply:os.system ['true']"}).json()["detail"]
    assert server.post("/api/jobs", {"recipe": "- a list"}).status == 400
    assert "unknown stage" in server.post("/api/jobs", {"only": "nope"}).json()["detail"]
    assert "--no_such_option" in server.post("/api/jobs", {"options": ["--no_such_option=1"]}).json()["detail"]
    # the fields' ranges are checked by the same code as the recipe's (specs.check): 400 with its words
    r = server.post("/api/jobs", {"workers": 1000})
    assert r.status == 400 and "workers" in r.json()["detail"]
    assert server.post("/api/jobs", {"workers": "many"}).status == 422  # a wrong type: FastAPI's own check
    assert server.get("/api/jobs").json()["counts"] == before  # nothing was queued


def test_paths_outside_the_roots_are_refused(server, data):
    outside = [
        {"inputs": ["/etc/passwd"]},
        {"inputs": [str(data / ".." / ".." / "etc" / "*")]},
        {"inputs": ["/etc/*.conf"]},
        {"output": "/tmp/thresher-service-escape"},
        {"recipe": "input: [/etc/hostname]"},
        {"recipe": "stages:\n  decontaminate:\n    enabled: true\n    benchmarks: [{name: x, path: /etc/passwd}]\n"},
        {"recipe": "stages:\n  tokenize:\n    tokenizer: /etc/passwd\n"},
        {"inputs": ["gs://someone-elses-bucket/*.warc.gz"]},
    ]
    for spec in outside:
        r = server.post("/api/jobs", spec)
        assert r.status == 400 and "roots" in r.json()["detail"], (spec, r.text)
    os.symlink("/etc", data / "etc-link")
    r = server.post("/api/jobs", {"inputs": [str(data / "etc-link" / "hostname")]})
    assert r.status == 400 and "roots" in r.json()["detail"]  # a link out of a root is outside it
    assert server.post("/api/jobs", {"inputs": [str(data / "missing.warc.gz")]}).status == 400
    # one run directory, one writer at a time
    spec = {"inputs": [str(data / "docs.warc.gz")], "only": FAST, "output": str(data / "out")}
    first = server.submit(**spec)
    busy = server.post("/api/jobs", spec)
    assert busy.status == 409 and first["id"] in busy.json()["detail"]
    server.post(f"/api/jobs/{first['id']}/cancel")
    server.wait(first["id"])
    # job ids and file names are looked up, never joined into paths
    for path in ("/api/runs/..%2F..%2F..%2Fetc/report", "/api/runs/../../etc/passwd", "/static/..%2F..%2Fapp.py",
                 "/static/app.py", "/api/jobs/..%2Fthresher.db/log"):
        assert server.get(path).status == 404, path


def test_cancel_stops_a_running_job_and_its_workers(server, data):
    job = server.submit(name="to cancel", inputs=[str(data / "docs.warc.gz")], workers=2)  # every stage: ~20 s
    running = server.wait(job["id"], until=lambda j: j["state"] == "running")
    pid = server.get(f"/api/jobs/{job['id']}").json()  # the process id is not in the API; the log names the attempt
    assert pid["attempts"] == 1
    children = _process_group(job["id"])
    assert children, "the job's processes"
    r = server.post(f"/api/jobs/{job['id']}/cancel")
    assert r.status == 200
    done = server.wait(job["id"], seconds=60)
    assert done["state"] == "cancelled"
    assert not os.path.exists(os.path.join(running["output"], "stats.json"))
    deadline = time.monotonic() + 10
    while any(pid_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(pid_alive(p) for p in children)
    # a queued job cancels at once (two jobs hold the two slots); running ones stop
    jobs = [server.submit(name=f"q{i}", inputs=[str(data / "docs.warc.gz")], only=FAST) for i in range(3)]
    assert server.post(f"/api/jobs/{jobs[2]['id']}/cancel").json()["state"] == "cancelled"
    for j in jobs[:2]:
        server.post(f"/api/jobs/{j['id']}/cancel")
    assert [server.wait(j["id"])["state"] for j in jobs] == ["cancelled"] * 3
    assert server.post(f"/api/jobs/{jobs[2]['id']}/cancel").json()["state"] == "cancelled"  # twice: no change


def _process_group(job_id: str) -> list[int]:
    """Processes whose command line names the job's run directory (the `thresher run` and its workers)."""
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")
            env = Path(f"/proc/{p}/environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if job_id in cmd or job_id in env:
            pids.append(int(p))
    return pids


def test_twenty_clients_poll_while_two_jobs_run(server, data):
    jobs = [server.submit(name=f"parallel {i}", inputs=[str(data / "docs.warc.gz")], only=FAST) for i in range(2)]
    errors, calls = [], [0]
    stop = threading.Event()

    def client(n: int) -> None:
        paths = ["/api/jobs", f"/api/jobs/{jobs[n % 2]['id']}", "/api/health", f"/api/jobs/{jobs[n % 2]['id']}/log", "/"]
        i = 0
        while not stop.is_set():
            try:
                r = server.get(paths[i % len(paths)], timeout=30)
                if r.status != 200:
                    errors.append((paths[i % len(paths)], r.status, r.text[:200]))
                calls[0] += 1
            except Exception as e:  # noqa: BLE001
                errors.append((paths[i % len(paths)], repr(e)))
            i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    try:
        seen_both_running = False
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            states = [server.job(j["id"])["state"] for j in jobs]
            seen_both_running |= states == ["running", "running"]
            if all(s in ("succeeded", "failed") for s in states):
                break
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[:5]
    assert calls[0] > 100 and seen_both_running
    for j in jobs:
        done = server.job(j["id"])
        assert done["state"] == "succeeded", done["error"]
        assert verify_run(done["output"]) == []  # every record accounted for, no duplicate ids
        _funnel_ok(server.get(f"/api/runs/{j['id']}/funnel").json())


def test_signal_distribution_of_an_annotate_run(server, data):
    recipe = "stages:\n  gopher_quality:\n    annotate: true\n"
    job = server.wait(server.submit(name="annotate", recipe=recipe, inputs=[str(data / "docs.warc.gz")], only=FAST)["id"])
    assert job["state"] == "succeeded", job["error"]
    rules = server.get(f"/api/runs/{job['id']}/signals").json()["rules"]
    rule = next(r for r in rules if r["rule"] == "min_alpha_words_ratio")
    assert rule["column"] == "gopher_quality_alpha_words" and rule["op"] == "<" and rule["threshold"] == 0.8
    d = server.get(f"/api/runs/{job['id']}/signals/gopher_quality/min_alpha_words_ratio").json()
    docs = pq.read_table(os.path.join(job["output"], "documents")).to_pydict()
    values = [v for v in docs["gopher_quality_alpha_words"] if v is not None]
    assert d["documents"] == len(values) == sum(d["counts"]) and d["annotate"]
    assert d["fires"] == sum(v < 0.8 for v in values) > 0
    assert d["edges"][0] <= min(values) and d["edges"][-1] >= max(values)
    assert server.get(f"/api/runs/{job['id']}/signals/gopher_quality/nope").status == 404


def test_guards_size_content_type_and_host(server):
    # a body announced larger than the limit is refused before a byte of it is read
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as conn:
        conn.sendall(f"POST /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {2 * 1024 * 1024}\r\n\r\n".encode())
        assert conn.recv(100).startswith(b"HTTP/1.1 413")
    form = server.request("POST", "/api/jobs", data=b"name=x", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status == 415  # a form on another site cannot post to us
    assert server.get("/api/health", headers={"Host": "evil.example.com"}).status == 421  # DNS rebinding
    assert server.get("/api/health", headers={"Host": f"localhost:{server.port}"}).status == 200
    assert server.get("/api/health", headers={"Host": f"[::1]:{server.port}"}).status == 200
    assert server.get("/api/health", headers={"Host": "127.0.0.1.evil.example.com"}).status == 421


def test_a_non_loopback_bind_needs_a_token(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "THRESHER_TOKEN"}
    refused = subprocess.run([sys.executable, "-m", "thresher.pipeline", "serve", "--home", str(tmp_path), "--host",
                              "0.0.0.0", "--port", "0"], capture_output=True, text=True, timeout=60, env=env)
    assert refused.returncode == 2 and "token" in refused.stderr
    token = "s3cret-token-0123456789"
    s = Server(tmp_path / "home", "--run-sample", host="0.0.0.0", env={"THRESHER_TOKEN": token}).start()
    try:
        assert s.get("/api/jobs").status == 401
        assert s.get("/openapi.json").status == 401
        assert s.get("/api/jobs", headers={"Authorization": "Bearer wrong-token-0123456789"}).status == 401
        assert s.get("/api/jobs", headers={"Authorization": f"Bearer {token}"}).status == 200
        page = s.get("/")
        assert page.status == 200 and 'data-page="login"' in page.text  # redirected to sign in
        assert s.post("/api/login", {"token": "nope"}).status == 401
        login = s.post("/api/login", {"token": token})
        cookie = login.headers["set-cookie"].split(";", 1)[0]
        assert token not in cookie and "HttpOnly" in login.headers["set-cookie"]
        jobs = s.get("/api/jobs", headers={"Cookie": cookie}).json()["jobs"]
        assert [j["name"] for j in jobs] == ["embedded sample"]  # --run-sample queued it on the first start
    finally:
        s.stop()


def test_server_killed_mid_run_restarts_with_nothing_lost(tmp_path, data):
    home = tmp_path / "home"
    spec = {"inputs": [str(data / "docs.warc.gz")], "only": FAST_LANG}
    s = Server(home, "--max-jobs", "1", "--root", str(data)).start()
    first = s.submit(name="interrupted", **spec)
    second = s.submit(name="queued", **spec)  # the same job: waits for the first
    s.wait(first["id"], until=lambda j: j["state"] == "running" and "thresher run:" in s.get(f"/api/jobs/{j['id']}/log").text)
    orphans = _process_group(first["id"])
    # held still, so that it cannot finish while no server watches (a fast run did, on a busy machine)
    group = {os.getpgid(p) for p in orphans}
    assert len(group) == 1 and os.getpgid(0) not in group  # the job's own session
    os.killpg(group.pop(), signal.SIGSTOP)
    s.kill()  # SIGKILL: no shutdown at all; the job's process lives on in its own session
    assert any(pid_alive(p) for p in orphans)
    s = Server(home, "--max-jobs", "1", "--root", str(data)).start()
    try:
        j1 = s.job(first["id"])
        assert j1["state"] == "interrupted" and "resume" in j1["error"]
        deadline = time.monotonic() + 10
        while any(pid_alive(p) for p in orphans) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(pid_alive(p) for p in orphans)  # the orphaned run was stopped, not left to race a resume
        assert not os.path.exists(os.path.join(j1["output"], "stats.json"))
        j2 = s.wait(second["id"])
        assert j2["state"] == "succeeded", j2["error"]
        resumed = s.post(f"/api/jobs/{first['id']}/resume")
        assert resumed.status == 200 and resumed.json()["state"] == "queued"
        j1 = s.wait(first["id"])
        assert j1["state"] == "succeeded" and j1["attempts"] == 2, j1["error"]
        assert [j["id"] for j in s.get("/api/jobs").json()["jobs"]] == [second["id"], first["id"]]
        # the resumed run is the same run, byte for byte
        assert _tree(j1["output"]) == _tree(j2["output"])
        assert verify_run(j1["output"]) == []
    finally:
        s.stop()


def test_a_job_that_finished_while_no_server_watched_is_succeeded(tmp_path, data):
    s = Server(tmp_path / "home", "--root", str(data)).start()
    job = s.submit(name="alone", inputs=[str(data / "docs.warc.gz")], only=FAST)
    s.wait(job["id"], until=lambda j: j["state"] == "running" and "thresher run:" in s.get(f"/api/jobs/{j['id']}/log").text)
    orphans = _process_group(job["id"])
    s.kill()
    deadline = time.monotonic() + 120
    while any(pid_alive(p) for p in orphans) and time.monotonic() < deadline:
        time.sleep(0.2)
    s = Server(tmp_path / "home", "--root", str(data)).start()
    try:
        done = s.job(job["id"])
        assert done["state"] == "succeeded" and done["run"]
        assert verify_run(done["output"]) == []
    finally:
        s.stop()


def _tree(run_dir: str) -> dict[str, str]:
    out = {}
    for folder in ("documents", "rejected", "shards", "dedup"):
        for p in sorted(Path(run_dir, folder).rglob("*")):
            if p.is_file():
                out[str(p.relative_to(run_dir))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def test_a_clean_stop_marks_running_jobs_interrupted(tmp_path, data):
    s = Server(tmp_path / "home", "--root", str(data)).start()
    job = s.submit(name="stopped", inputs=[str(data / "docs.warc.gz")])
    s.wait(job["id"], until=lambda j: j["state"] == "running")
    s.proc.send_signal(signal.SIGTERM)
    s.proc.wait(60)
    s = Server(tmp_path / "home", "--root", str(data)).start()
    try:
        assert s.job(job["id"])["state"] == "interrupted"
    finally:
        s.stop()
