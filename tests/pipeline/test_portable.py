"""The same graph through Beam's job service with an EXTERNAL Python worker pool (how Spark and
Flink clusters run Python workers), on loopback: byte-identical output to the local runner."""

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"service on port {port} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on port {port} after {seconds}s")


@pytest.fixture(scope="module")
def job_service_and_pool():
    # the pool starts workers as `python`: put this interpreter first on PATH
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    js_port, pool_port = free_port(), free_port()
    procs = [
        subprocess.Popen([sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main",
                          "--port", str(js_port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main",
                          "--service_port", str(pool_port)], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL),
    ]
    try:
        wait_for(js_port, procs[0])
        wait_for(pool_port, procs[1])
        yield js_port, pool_port, env
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def digests(out: Path) -> dict:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for sub in ("documents", "rejected", "dedup", "shards") for p in sorted((out / sub).rglob("*"))
                   if p.is_file()}


def thresher(args, env, timeout=600):
    # a subprocess with a deadline: a job that cannot reach its workers fails the test, never hangs CI
    proc = subprocess.run([sys.executable, "-m", "thresher.pipeline", "run", "-q", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_portable_runner_matches_the_local_runner(job_service_and_pool, tmp_path):
    js_port, pool_port, env = job_service_and_pool
    thresher(["--output", str(tmp_path / "local")], env)
    thresher(["--output", str(tmp_path / "portable"), "--runner", "portable", f"--job_endpoint=localhost:{js_port}",
              "--environment_type=EXTERNAL", f"--environment_config=localhost:{pool_port}"], env)
    local, portable = digests(tmp_path / "local"), digests(tmp_path / "portable")
    assert local and local == portable
    s1 = json.loads((tmp_path / "local" / "stats.json").read_text())
    s2 = json.loads((tmp_path / "portable" / "stats.json").read_text())
    assert s1["totals"] == s2["totals"] and s2["accounting_ok"]
    assert s2["run"]["runner"] == "portable"


def test_portable_runner_without_spill_files_matches_on_dedup_and_shards(job_service_and_pool, tmp_path):
    """Near-duplicate clusters, rejected rows and token shards through the portable runner, whose
    default is the runner's own shuffle (runner.spill: auto), against the local runner's spill files."""
    from tests.pipeline.test_dedup_run import edited, text

    js_port, pool_port, env = job_service_and_pool
    docs = [{"id": f"base{i}", "text": text(i)} for i in range(4)]
    docs += [{"id": "exact", "text": docs[0]["text"].upper()}, {"id": "near", "text": edited(docs[1]["text"], 3, 1)}]
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    from thresher.transforms import stage as registry

    off = {s.name: {"enabled": False} for s in registry.stages()
           if s.params.__module__.startswith("thresher.transforms.filters.")}
    import yaml

    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump({"input": [str(tmp_path / "docs.jsonl")], "stages": off}))
    recipe = str(tmp_path / "recipe.yaml")
    thresher([recipe, "--output", str(tmp_path / "local")], env)
    thresher([recipe, "--output", str(tmp_path / "portable"), "--runner", "portable",
              f"--job_endpoint=localhost:{js_port}", "--environment_type=EXTERNAL",
              f"--environment_config=localhost:{pool_port}"], env)
    local, portable = digests(tmp_path / "local"), digests(tmp_path / "portable")
    assert local == portable and any(k.startswith("shards/") for k in local)
    stats = json.loads((tmp_path / "portable" / "stats.json").read_text())
    assert stats["stages"]["dedup_exact"]["dropped"] == {"exact_duplicate": 1}
    assert stats["stages"]["dedup_minhash"]["dropped"] == {"near_duplicate": 1}
