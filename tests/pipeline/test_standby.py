"""The waiting worker processes of a local run of several workers (pipeline/standby.py): a launcher
hands its environment to one, relays its exit status, and takes it down with it; unused ones end
with the pool; with none waiting, the launcher runs the worker itself. The runs through them are in
test_run.py (two workers, the same bytes as one) and test_torture.py (no process outlives a run)."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from thresher.pipeline.standby import PREFIX, StandbyPool, sweep

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="Unix sockets and process groups")

# a runner address nothing listens on: Beam's harness, started with it, fails or keeps trying
NO_RUNNER = {"CONTROL_API_SERVICE_DESCRIPTOR": 'url: "localhost:1"',
             "PIPELINE_OPTIONS": "{}", "WORKER_ID": "worker_x"}
BAD_OPTIONS = dict(NO_RUNNER, PIPELINE_OPTIONS="not json")  # the harness fails at once, reading them


def listening(pool: StandbyPool, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while sum(name.endswith(".sock") for name in os.listdir(pool.folder)) < n:
        assert time.monotonic() < deadline, "the pool's processes never listened"
        assert all(p.poll() is None for p in pool.procs), "a waiting process died"
        time.sleep(0.05)


def launcher(pool: StandbyPool, env: dict) -> subprocess.Popen:
    return subprocess.Popen(pool.command(), shell=True, env=dict(os.environ, **env), stderr=subprocess.PIPE,
                            start_new_session=True)


def test_unused_processes_end_with_the_pool():
    pool = StandbyPool(2)
    listening(pool, 2)
    procs = list(pool.procs)
    pool.close()
    assert all(p.poll() is not None for p in procs)
    assert not Path(pool.folder).exists() and pool.used == 0


def test_a_failing_worker_reports_its_failure_through_the_launcher():
    pool = StandbyPool(1)
    try:
        listening(pool, 1)
        proc = launcher(pool, BAD_OPTIONS)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 1, err
        assert pool.procs[0].wait(timeout=30) != 0  # the waiting process ran the worker, which failed
        assert pool.taken() == 1
    finally:
        pool.close()


def test_a_killed_launcher_takes_its_worker_down():
    pool = StandbyPool(1)
    try:
        listening(pool, 1)
        proc = launcher(pool, NO_RUNNER)  # the harness waits for a runner that never answers
        deadline = time.monotonic() + 60
        while not pool.taken():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        time.sleep(1)
        assert pool.procs[0].poll() is None
        os.killpg(proc.pid, signal.SIGKILL)  # what Beam does to a worker it gives up on (the shell and the launcher)
        assert pool.procs[0].wait(timeout=30) == 1
    finally:
        pool.close()


def test_with_no_process_waiting_the_launcher_runs_the_worker_itself():
    pool = StandbyPool(0)
    try:
        proc = launcher(pool, BAD_OPTIONS)
        _, err = proc.communicate(timeout=120)
        # Beam's harness ran in the launcher itself and failed on the options
        assert proc.returncode == 1 and b"sdk_worker_main" in err and b"JSONDecodeError" in err, err
    finally:
        pool.close()


def test_folders_of_drivers_that_are_gone_are_swept(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid no process has now (reaped)
    (tmp_path / f"{PREFIX}{gone.pid}-abc").mkdir()
    (tmp_path / f"{PREFIX}{gone.pid}-abc" / "0.wait").write_text("")
    (tmp_path / f"{PREFIX}{os.getpid()}-def").mkdir()  # a live driver's
    (tmp_path / "thresher-other").mkdir()
    sweep(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"{PREFIX}{os.getpid()}-def", "thresher-other"])
