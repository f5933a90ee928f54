"""The default recipe on Spark and on Flink: Beam's job servers built from Maven Central's modules
(pipeline/engines/jobserver.py), each on its embedded master, with a worker pool of this interpreter;
byte-identical output to the local runner. Needs Java and Maven (the first run resolves the jars)."""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from thresher.pipeline.engines import jobserver

pytestmark = pytest.mark.slow

needs_jvm = pytest.mark.skipif(shutil.which("java") is None or shutil.which("mvn") is None,
                               reason="the Spark and Flink job servers need java and mvn")


def digests(out: Path) -> dict:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for sub in ("documents", "rejected", "dedup", "shards") for p in sorted((out / sub).rglob("*")) if p.is_file()}


def thresher(*args, timeout=900):
    # a deadline: a job that cannot reach its workers fails the test, never hangs CI
    return subprocess.run([sys.executable, "-m", "thresher.pipeline", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "run"
    proc = thresher("run", "-q", "--output", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@needs_jvm
@pytest.mark.parametrize("engine", ["spark", "flink"])
def test_default_recipe_on_an_engine_matches_the_local_runner(engine, local_run, tmp_path):
    out = tmp_path / engine
    proc = thresher("run", "--runner", engine, "--workers", "2", "--output", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{engine} job server on localhost:" in proc.stderr
    local, remote = digests(local_run), digests(out)
    assert local and local == remote
    s1, s2 = (json.loads((d / "stats.json").read_text()) for d in (local_run, out))
    assert s2["accounting_ok"] and s2["run"]["runner"] == engine
    assert s1["totals"] == s2["totals"] and s1["stages"].keys() == s2["stages"].keys()
    for name, st in s1["stages"].items():
        assert {k: v for k, v in st.items() if k != "seconds"} == {k: v for k, v in s2["stages"][name].items()
                                                                   if k != "seconds"}, name
    # nothing of this run left running: its job server, its worker pool (other tests may run theirs)
    job_port = re.search(rf"{engine} job server on localhost:(\d+)", proc.stderr).group(1)
    pool_port = re.search(r"worker pool on localhost:(\d+)", proc.stderr)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert f"--job-port={job_port}" not in ps
    assert pool_port is None or f"--service_port={pool_port.group(1)}" not in ps


def test_a_worker_pool_interpreter_that_cannot_run_thresher_fails_fast(tmp_path):
    """Beam's pool would start workers that never connect, and the job would wait for them until a
    timeout; the interpreter is tried before anything starts."""
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\necho \"ModuleNotFoundError: No module named 'apache_beam'\" >&2\nexit 1\n")
    fake.chmod(0o755)
    t0 = time.monotonic()
    with pytest.raises(jobserver.JobServerError, match="cannot run Thresher's workers: ModuleNotFoundError"):
        with jobserver.engine("spark", python=str(fake)):
            pass
    assert time.monotonic() - t0 < 30


def test_without_maven_the_error_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # nothing cached
    monkeypatch.setenv("PATH", str(tmp_path))  # no mvn
    with pytest.raises(jobserver.JobServerError, match="needs Maven once"):
        jobserver.classpath("spark")


def test_beams_own_spark_runner_without_its_jar_points_to_the_engine(tmp_path):
    if os.path.exists(os.path.expanduser("~/.apache_beam/cache/jars/beam-runners-spark-3-job-server-2.77.0.jar")):
        pytest.skip("Beam's shaded jar is cached here")
    proc = thresher("run", "--runner", "SparkRunner", "--output", str(tmp_path / "out"), timeout=300)
    if proc.returncode == 0:
        pytest.skip("Beam's shaded job-server jar could be downloaded here")
    assert "`--runner spark` runs Beam's spark job server built from Maven Central" in proc.stderr
    assert "WARNING apache_beam" not in proc.stderr  # Beam's own warnings only with --verbose


@needs_jvm
def test_default_recipe_on_a_standalone_spark_cluster(local_run, tmp_path):
    """A user's cluster in miniature: a Spark master and a worker in their own JVMs on loopback,
    the job server submitting to spark://, executors started by the worker, Python workers from the pool."""
    with jobserver.engine("spark", workers=2, master="standalone") as flags:
        proc = thresher("run", "-q", "--runner", "portable", *flags, "--output", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert digests(local_run) == digests(tmp_path / "out")
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "org.apache.spark.deploy" not in ps and "JobServerDriver" not in ps
