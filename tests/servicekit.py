"""`thresher serve` in the tests: the real server in its own process (so a test can SIGKILL it),
a JSON client on the standard library, and small crawls to submit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from tests import warcgen
from tests.pipeline.test_portable import free_port
from tests.reference_texts import stdlib_docs

FAST = "extract,gopher_quality"  # `only` for jobs that need to be quick: ~6 s instead of ~30
FAST_LANG = "extract,langid,gopher_quality"  # with languages: ~11 s (langid's models load)


class Response:
    def __init__(self, status: int, body: bytes, headers):
        self.status, self.body, self.headers = status, body, headers

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)


class Server:
    """``thresher serve`` on a free loopback port with its home in `home`."""

    def __init__(self, home: str, *args: str, env: dict | None = None, host: str = "127.0.0.1"):
        self.home, self.args, self.host = str(home), list(args), host
        self.port = free_port()
        self.env = dict(os.environ, **(env or {}))
        self.proc: subprocess.Popen | None = None
        self.token: str | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> "Server":
        os.makedirs(self.home, exist_ok=True)
        self.log = open(os.path.join(self.home, f"server-{self.port}-{time.monotonic_ns()}.log"), "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "thresher.pipeline", "serve", "--home", self.home,
                                      "--host", self.host, "--port", str(self.port), *self.args],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"thresher serve exited with {self.proc.returncode}: {self.output()}")
            try:
                if self.get("/api/health").status in (200, 401):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"thresher serve did not answer in {seconds}s: {self.output()}")

    def output(self) -> str:
        self.log.flush()
        with open(self.log.name, "rb") as fh:
            return fh.read().decode("utf-8", "replace")[-4000:]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    # --- HTTP ----------------------------------------------------------------------------------
    def request(self, method: str, path: str, payload=None, headers: dict | None = None, data: bytes | None = None,
                timeout: float = 60) -> Response:
        hdrs = dict(headers or {})
        if payload is not None:
            data = json.dumps(payload).encode()
            hdrs.setdefault("Content-Type", "application/json")
        elif method == "POST" and data is None:
            data = b"{}"
            hdrs.setdefault("Content-Type", "application/json")
        if self.token and "Authorization" not in hdrs:
            hdrs["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return Response(r.status, r.read(), r.headers)
        except urllib.error.HTTPError as e:
            return Response(e.code, e.read(), e.headers)

    def get(self, path: str, **kw) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, payload=None, **kw) -> Response:
        return self.request("POST", path, payload, **kw)

    def submit(self, **spec) -> dict:
        r = self.post("/api/jobs", spec)
        assert r.status == 201, r.text
        return r.json()

    def job(self, job_id: str) -> dict:
        r = self.get(f"/api/jobs/{job_id}")
        assert r.status == 200, r.text
        return r.json()

    def wait(self, job_id: str, states=("succeeded", "failed", "cancelled", "interrupted"), seconds: float = 300,
             until=None) -> dict:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if (until(job) if until else job["state"] in states):
                return job
            time.sleep(0.2)
        raise TimeoutError(f"job {job_id} still {job['state']} after {seconds}s; log:\n"
                           + self.get(f"/api/jobs/{job_id}/log").text[-3000:])


def docs_warc(path: str, n: int = 12, extra: list[tuple[str, str]] = ()) -> str:
    """A WARC of `n` pages of English prose (Python's docstrings), plus `extra` (url, html) pages."""
    records = []
    for i, doc in enumerate(stdlib_docs()[:n]):
        paras = "".join(f"<p>{p}</p>" for p in doc.split("\n\n") if p.strip())
        html = f"<html><head><title>Doc {i}</title></head><body><article><h1>Doc {i}</h1>{paras}</article></body></html>"
        records.append(warcgen.record(warcgen.http_response(html.encode()), uri=f"http://docs.example.org/{i}.html"))
    for url, html in extra:
        records.append(warcgen.record(warcgen.http_response(html.encode()), uri=url))
    with open(path, "wb") as fh:
        fh.write(warcgen.gz(*records))
    return str(path)


# A page whose text, once extracted, holds markup: it must show as text wherever the service shows it.
HOSTILE_URL = "http://evil.example.com/xss.html"
HOSTILE_HTML = ("<html><head><title>x</title></head><body><article><p>Hello &lt;script&gt;window.__pwned = 1;"
                "document.title = 'pwned'&lt;/script&gt; and &lt;img src=x onerror=\"window.__pwned = 2\"&gt; "
                "and &lt;/script&gt;&lt;script&gt;window.__pwned = 3&lt;/script&gt; end.</p></article></body></html>")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is not running
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
