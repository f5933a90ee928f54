"""Beam's Spark and Flink job servers, built from Maven Central, and a Python worker pool.

Beam's Python `SparkRunner` and `FlinkRunner` download a shaded job-server jar of their own
version; where that jar cannot be fetched, the same job server runs from Beam's unshaded runner
modules, which Maven Central serves. `pipeline/data/spark.pom.xml` and `flink.pom.xml` name them
(Beam 2.62.0, the newest version at which every module and its dependencies resolve; the job
server speaks Beam's portable API, so Python Beam 2.77 submits to it). Maven resolves a pom once
per machine; the classpath is cached under ``~/.cache/thresher/jobserver`` (``XDG_CACHE_HOME``).

`engine()` starts a job server on an embedded master (Spark ``local[N]``, a Flink MiniCluster) or
a given one, plus a worker pool of this interpreter, and gives the Beam flags that submit to them;
both stop when the block ends, however it ends.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from thresher.pipeline.config import ConfigError
from thresher.transforms.cache import cache_dir as thresher_cache_dir

BEAM_JOB_SERVER_VERSION = "2.62.0"


@dataclass(frozen=True)
class Engine:
    pom: str
    main: str
    master_flag: str
    default_master: str


ENGINES = {
    "spark": Engine("spark.pom.xml", "org.apache.beam.runners.spark.SparkJobServerDriver", "--spark-master-url",
                    "local[{workers}]"),
    "flink": Engine("flink.pom.xml", "org.apache.beam.runners.flink.FlinkJobServerDriver", "--flink-master",
                    "[local]"),
}

# Spark 3.5 on Java 17 reads JDK internals (Spark's launcher adds these; a plain `java` must too)
SPARK_JVM_FLAGS = [f"--add-opens=java.base/{p}=ALL-UNNAMED" for p in (
    "java.lang", "java.lang.invoke", "java.lang.reflect", "java.io", "java.net", "java.nio", "java.util",
    "java.util.concurrent", "java.util.concurrent.atomic", "sun.nio.ch", "sun.nio.cs", "sun.security.action",
    "sun.util.calendar")] + ["--add-opens=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
                             "-Djdk.reflect.useDirectMethodHandle=false"]


class JobServerError(RuntimeError):
    pass


def cache_dir() -> Path:
    return Path(thresher_cache_dir("jobserver"))


def _engine(name: str) -> Engine:
    if name not in ENGINES:
        raise ConfigError(f"unknown engine {name!r} (engines: {', '.join(ENGINES)})")
    return ENGINES[name]


def classpath(name: str, log=print) -> list[str]:
    """The job server's jars: resolved by Maven from the pom once, cached by the pom's hash."""
    pom = resources.files("thresher.pipeline").joinpath("data", _engine(name).pom).read_bytes()
    cached = cache_dir() / f"{name}-{BEAM_JOB_SERVER_VERSION}-{hashlib.sha256(pom).hexdigest()[:12]}.classpath"
    if cached.exists():
        jars = cached.read_text().split(os.pathsep)
        if all(os.path.exists(j) for j in jars):
            return jars
    mvn = shutil.which("mvn")
    if mvn is None:
        raise JobServerError(f"resolving the {name} job server needs Maven once (`mvn` on PATH: apt-get install maven); "
                             "or run Beam's shaded job-server jar yourself and pass --runner portable --job_endpoint=...")
    cached.parent.mkdir(parents=True, exist_ok=True)
    log(f"thresher: resolving Beam {BEAM_JOB_SERVER_VERSION}'s {name} job server with Maven (once per machine) ...")
    with tempfile.TemporaryDirectory() as tmp:
        pom_file, out = os.path.join(tmp, "pom.xml"), os.path.join(tmp, "classpath")
        Path(pom_file).write_bytes(pom)
        proc = subprocess.run([mvn, "-B", "-q", "-f", pom_file, "dependency:build-classpath",
                               f"-Dmdep.outputFile={out}"], capture_output=True, text=True)
        if proc.returncode or not os.path.exists(out):
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise JobServerError(f"Maven could not resolve the {name} job server:\n{tail}")
        jars = Path(out).read_text().strip().split(os.pathsep)
        tmp_cached = cached.with_suffix(".tmp")
        tmp_cached.write_text(os.pathsep.join(jars))
        os.replace(tmp_cached, cached)  # a cache entry appears whole or not at all
    return jars


def java() -> str:
    home = os.environ.get("JAVA_HOME")
    found = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if not found or not os.path.exists(found):
        raise JobServerError("the Spark and Flink job servers need Java 11 or newer (`java` on PATH or JAVA_HOME)")
    return found


# Thread stacks: translating the job's graph is recursive (the connected-components rounds are
# unrolled: some 200 stages deep), and Flink overflowed the default 1 MB stack on it now and then
JVM_FLAGS = ["-Xss16m"]


def job_server_command(name: str, master: str, job_port: int, artifact_port: int, expansion_port: int) -> list[str]:
    eng = _engine(name)
    flags = JVM_FLAGS + (SPARK_JVM_FLAGS if name == "spark" else [])
    return [java(), *flags, "-cp", os.pathsep.join(classpath(name)), eng.main,
            "--job-host=127.0.0.1", f"--job-port={job_port}", f"--artifact-port={artifact_port}",
            f"--expansion-port={expansion_port}", f"{eng.master_flag}={master}"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, proc: subprocess.Popen, what: str, log_path: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise JobServerError(f"{what} exited with {proc.returncode} before listening:\n{_tail(log_path)}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise JobServerError(f"{what} is not listening on port {port} after {seconds:.0f} s:\n{_tail(log_path)}")


def _tail(path: str, lines: int = 20) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def _stop(proc: subprocess.Popen) -> None:
    """The process and everything it started (a worker pool's workers, a JVM's children)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def worker_pool_python(folder: str, python: str = sys.executable) -> dict:
    """The environment for a Beam worker pool that runs `python`: the pool starts its workers as
    plain ``python`` from PATH, so a folder holding that name for this interpreter goes first.
    Checked before any job is submitted: a pool whose workers cannot import Thresher would leave the
    job waiting for them until a timeout."""
    shim = os.path.join(folder, "python")  # a script, not a symlink: a venv is found from the path run
    Path(shim).write_text(f"#!/bin/sh\nexec {shlex.quote(python)} \"$@\"\n")
    os.chmod(shim, 0o755)
    env = dict(os.environ, PATH=folder + os.pathsep + os.environ.get("PATH", ""))
    probe = subprocess.run(["python", "-c", "import apache_beam, thresher.pipeline.engines.worker"], env=env,
                           capture_output=True, text=True)
    if probe.returncode:
        raise JobServerError(f"the worker pool's interpreter ({python}) cannot run Thresher's workers: "
                             f"{(probe.stderr.strip().splitlines() or ['?'])[-1]}")
    return env


@contextlib.contextmanager
def engine(name: str, workers: int = 2, master: str | None = None, log=print, python: str = sys.executable,
           start_timeout: float = 180):
    """Start `name`'s job server (on `master`, default the embedded one; Spark's ``standalone``: a
    cluster on loopback, `spark_standalone`) and a worker pool of `python`; yields the Beam flags
    that submit a portable job to them. All stop on exit."""
    eng = _engine(name)
    master = master or eng.default_master.format(workers=workers)
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix=f"thresher-{name}-") as tmp, contextlib.ExitStack() as cluster:
        try:
            env = worker_pool_python(tmp, python)
            if name == "spark" and master == "standalone":
                master = cluster.enter_context(spark_standalone(workers, log=log))
            ports = [free_port() for _ in range(4)]
            job_port, artifact_port, expansion_port, pool_port = ports
            cmd = job_server_command(name, master, job_port, artifact_port, expansion_port)
            t0 = time.perf_counter()
            server_log, pool_log = os.path.join(tmp, "jobserver.log"), os.path.join(tmp, "pool.log")
            with open(server_log, "wb") as out:
                procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                              start_new_session=True))
            with open(pool_log, "wb") as out:
                procs.append(subprocess.Popen(
                    ["python", "-m", "apache_beam.runners.worker.worker_pool_main", f"--service_port={pool_port}"],
                    env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True))
            _wait_for(pool_port, procs[1], "the worker pool", pool_log, 60)
            _wait_for(job_port, procs[0], f"the {name} job server", server_log, start_timeout)
            log(f"thresher: {name} job server on localhost:{job_port} (master {master}), started in "
                f"{time.perf_counter() - t0:.1f} s; worker pool on localhost:{pool_port}")
            flags = [f"--job_endpoint=localhost:{job_port}", "--environment_type=EXTERNAL",
                     f"--environment_config=localhost:{pool_port}"]
            if name == "flink":
                flags.append(f"--parallelism={workers}")
            yield flags
        finally:
            for p in procs:
                _stop(p)


@contextlib.contextmanager
def spark_standalone(cores: int = 2, memory: str = "2g", log=print, start_timeout: float = 120):
    """A standalone Spark cluster on loopback, as a user's cluster runs: a master and one worker
    (`cores` cores), separate JVMs, executors started by the worker. Spark comes from the job
    server's own classpath: SPARK_HOME is a folder whose jars/ links to those jars, so executors
    load the same Spark and Beam classes as the job server. Yields the master's URL."""
    jars = classpath("spark")
    with tempfile.TemporaryDirectory(prefix="thresher-spark-home-") as home:
        os.makedirs(os.path.join(home, "jars"))
        for jar in jars:
            link = os.path.join(home, "jars", os.path.basename(jar))
            if not os.path.exists(link):
                os.symlink(jar, link)
        env = dict(os.environ, SPARK_HOME=home, SPARK_SCALA_VERSION="2.12", SPARK_LOCAL_IP="127.0.0.1",
                   SPARK_LOG_DIR=home)
        cp = ["-cp", os.path.join(home, "jars", "*")]
        port = free_port()
        url = f"spark://127.0.0.1:{port}"
        procs: list[subprocess.Popen] = []
        try:
            master_log, worker_log = os.path.join(home, "master.log"), os.path.join(home, "worker.log")
            with open(master_log, "wb") as out:
                procs.append(subprocess.Popen(
                    [java(), *SPARK_JVM_FLAGS, *cp, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                     "--port", str(port), "--webui-port", str(free_port())],
                    env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True))
            _wait_for(port, procs[0], "the Spark master", master_log, start_timeout)
            with open(worker_log, "wb") as out:
                procs.append(subprocess.Popen(
                    [java(), *SPARK_JVM_FLAGS, *cp, "org.apache.spark.deploy.worker.Worker", "--cores", str(cores),
                     "--memory", memory, "--webui-port", str(free_port()), "--work-dir", os.path.join(home, "work"),
                     url], env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    start_new_session=True))
            deadline = time.monotonic() + start_timeout
            while "Successfully registered with master" not in Path(worker_log).read_text(errors="replace"):
                if procs[1].poll() is not None or time.monotonic() > deadline:
                    raise JobServerError(f"the Spark worker did not register with {url}:\n{_tail(worker_log)}")
                time.sleep(0.3)
            log(f"thresher: standalone Spark cluster at {url} (1 worker, {cores} cores)")
            yield url
        finally:
            for p in reversed(procs):
                _stop(p)
