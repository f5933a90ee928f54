"""The job queue: each job is its own `thresher run` process, started by one scheduler thread.

A job's files live in ``HOME/jobs/<id>/``: the recipe as submitted (``recipe.yaml``), the process's
output (``log.txt``) and the folder its workers write their running totals to (``progress/``,
pipeline/progress.py; ``run.meta`` there holds the input size and a remote job's id). Its run
directory is ``HOME/runs/<id>`` unless the job names another. The process runs in a session of its
own: cancelling it, or finding it orphaned after a restart, stops it with its worker processes.

After the server is killed, the database still holds every job. On start, jobs still marked
running are interrupted (their processes, if any survived, are stopped) and can be resumed: the
same command into the same run directory, which the pipeline's crash-resume completes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

from thresher.pipeline.progress import PROGRESS_ENV, RUN_META, read_totals
from thresher.pipeline.service.store import (CANCELLED, FAILED, FINISHED, INTERRUPTED, QUEUED, RUNNING, SUCCEEDED,
                                             JobStore)

STOP_GRACE_S = 5.0  # SIGTERM, then SIGKILL after this long
ERROR_LINES = 15
INTERRUPTED_ERROR = "the server stopped while the job ran: resume it to finish the run"


def _proc_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22): a pid that
    was reused by another process has another start time. None when no such process runs: a
    zombie (exited, waiting for a parent that may never reap it) does not run."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return fields[19]


def _stop_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def tail(path: str, max_bytes: int = 64 * 1024) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace")
    return text if size <= max_bytes else text.split("\n", 1)[-1]


def error_lines(log: str, n: int = ERROR_LINES) -> str:
    """The lines that say why a run failed: `thresher: error:` lines if any, else the log's end."""
    lines = [line for line in log.replace("\r", "\n").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("thresher: error")]
    return "\n".join((errors or lines)[-n:])


class JobQueue:
    def __init__(self, store: JobStore, home: str, max_jobs: int = 2, python: str = sys.executable,
                 tick: float = 0.25):
        self.store = store
        self.home = home
        self.max_jobs = max(1, max_jobs)
        self.python = python
        self.tick = tick
        self.cwd = os.getcwd()  # relative paths in a recipe mean what they meant when it was checked
        self._procs: dict[str, subprocess.Popen] = {}
        self._term_sent: dict[str, float] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="thresher-jobs", daemon=True)

    # --- paths ---------------------------------------------------------------------------------
    def job_dir(self, job_id: str) -> str:
        return os.path.join(self.home, "jobs", job_id)

    def log_path(self, job_id: str) -> str:
        return os.path.join(self.job_dir(job_id), "log.txt")

    def progress_dir(self, job_id: str) -> str:
        return os.path.join(self.job_dir(job_id), "progress")

    def default_output(self, job_id: str) -> str:
        return os.path.join(self.home, "runs", job_id)

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self.recover()
        self._thread.start()

    def stop(self) -> None:
        """Stop the scheduler; running jobs are stopped too (a clean shutdown marks them interrupted)."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(10)
        for job_id, proc in list(self._procs.items()):
            _stop_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                _stop_group(proc.pid, signal.SIGKILL)
                proc.wait()
            self.store.transition(job_id, (RUNNING,), state=INTERRUPTED, finished=time.time(), pid=None,
                                  error=INTERRUPTED_ERROR)
        self._procs.clear()

    def recover(self) -> None:
        """Jobs the database says are running belong to a server that is gone: stop what is left
        of their processes and mark them interrupted."""
        for job in self.store.in_state(RUNNING):
            pid = job.get("pid")
            if pid and job.get("pid_start") and _proc_start(pid) == job["pid_start"]:
                _stop_group(pid, signal.SIGKILL)
            elif self._finished_alone(job):  # it ran to the end while no server watched
                self.store.transition(job["id"], (RUNNING,), state=SUCCEEDED, finished=time.time(), pid=None,
                                      error=None, returncode=None)
                continue
            self.store.transition(job["id"], (RUNNING,), state=INTERRUPTED, finished=time.time(), pid=None,
                                  error=INTERRUPTED_ERROR)

    @staticmethod
    def _finished_alone(job: dict) -> bool:
        """The job's run directory was published after this attempt started: stats.json is written
        last, and only by a run whose accounting held."""
        stats = os.path.join(job["output"], "stats.json")
        try:
            return "://" not in job["output"] and os.path.getmtime(stats) > (job["started"] or 0)
        except OSError:
            return False

    def wake(self) -> None:
        self._wake.set()

    # --- requests ------------------------------------------------------------------------------
    def cancel(self, job_id: str) -> dict | None:
        job = self.store.get(job_id)
        if job is None:
            return None
        if job["state"] == QUEUED:
            self.store.transition(job_id, (QUEUED,), state=CANCELLED, finished=time.time(), error="cancelled before it ran")
        elif job["state"] == RUNNING:
            self.store.update(job_id, cancel_requested=1)
            self.wake()
        return self.store.get(job_id)

    def resume(self, job_id: str) -> dict | None:
        """An interrupted, failed or cancelled job queued again into its own run directory."""
        ok = self.store.transition(job_id, (INTERRUPTED, FAILED, CANCELLED), state=QUEUED, started=None, finished=None,
                                   returncode=None, error=None, cancel_requested=0, pid=None)
        if ok:
            self.wake()
        return self.store.get(job_id) if ok else None

    # --- the scheduler -------------------------------------------------------------------------
    def command(self, job: dict) -> list[str]:
        spec = job["spec"]
        cmd = [self.python, "-m", "thresher.pipeline", "run"]
        if spec.get("recipe"):
            cmd.append(os.path.join(self.job_dir(job["id"]), "recipe.yaml"))
        cmd += ["--output", job["output"], "--no-progress"]
        if spec.get("runner"):
            cmd += ["--runner", spec["runner"]]
        if spec.get("workers"):
            cmd += ["--workers", str(int(spec["workers"]))]
        if spec.get("only"):
            cmd += ["--only", spec["only"]]
        if spec.get("skip"):
            cmd += ["--skip", spec["skip"]]
        if spec.get("overwrite"):
            cmd.append("--overwrite")
        cmd += list(spec.get("options") or [])
        if spec.get("inputs"):  # last: --input takes every value after it
            cmd += ["--input", *spec["inputs"]]
        return cmd

    def _launch(self, job: dict) -> None:
        job_id = job["id"]
        folder = self.job_dir(job_id)
        os.makedirs(folder, exist_ok=True)
        progress = self.progress_dir(job_id)
        os.makedirs(progress, exist_ok=True)
        for name in os.listdir(progress):  # an earlier attempt's totals
            os.remove(os.path.join(progress, name))
        env = dict(os.environ, **{PROGRESS_ENV: progress, "PYTHONUNBUFFERED": "1"})
        # the job's worker pool starts `python`: this interpreter first on PATH
        env["PATH"] = os.path.dirname(self.python) + os.pathsep + env.get("PATH", "")
        attempt = job["attempts"] + 1
        with open(self.log_path(job_id), "ab") as log:
            log.write(f"--- attempt {attempt}: {' '.join(self.command(job))}\n".encode())
            log.flush()
            try:
                proc = subprocess.Popen(self.command(job), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        cwd=self.cwd, env=env, start_new_session=True)
            except OSError as e:
                self.store.update(job_id, state=FAILED, finished=time.time(), error=f"could not start: {e}")
                return
        self._procs[job_id] = proc
        self.store.update(job_id, state=RUNNING, started=time.time(), attempts=attempt, pid=proc.pid,
                          pid_start=_proc_start(proc.pid), returncode=None, error=None)

    def _finish(self, job_id: str, proc: subprocess.Popen) -> None:
        rc = proc.returncode
        job = self.store.get(job_id)
        self._procs.pop(job_id, None)
        self._term_sent.pop(job_id, None)
        fields = {"finished": time.time(), "returncode": rc, "pid": None}
        if rc == 0:  # a run that finished before a cancel reached it
            fields.update(state=SUCCEEDED)
        elif job["cancel_requested"]:
            fields.update(state=CANCELLED, error="cancelled while running")
        else:
            fields.update(state=FAILED, error=error_lines(tail(self.log_path(job_id))) or f"exit status {rc}")
        meta = self.run_meta(job_id)
        if meta.get("remote_job_id"):
            fields["remote_job_id"] = meta["remote_job_id"]
        self.store.transition(job_id, (RUNNING,), **fields)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Exception as e:  # noqa: BLE001 - the scheduler must outlive any one job's trouble
                print(f"thresher serve: scheduler: {type(e).__name__}: {e}", file=sys.stderr)
            self._wake.wait(self.tick)
            self._wake.clear()

    def _step(self) -> None:
        for job_id, proc in list(self._procs.items()):
            if proc.poll() is not None:
                self._finish(job_id, proc)
                continue
            job = self.store.get(job_id)
            if job["cancel_requested"]:
                sent = self._term_sent.get(job_id)
                if sent is None:
                    _stop_group(proc.pid, signal.SIGTERM)
                    self._term_sent[job_id] = time.monotonic()
                elif time.monotonic() - sent > STOP_GRACE_S:
                    _stop_group(proc.pid, signal.SIGKILL)
            if not job["remote_job_id"]:
                remote = self.run_meta(job_id).get("remote_job_id")
                if remote:
                    self.store.update(job_id, remote_job_id=remote)
        while len(self._procs) < self.max_jobs and not self._stop.is_set():
            job = self.store.next_queued()
            if job is None:
                break
            self._launch(job)

    # --- what a running job has done --------------------------------------------------------------
    def run_meta(self, job_id: str) -> dict:
        try:
            with open(os.path.join(self.progress_dir(job_id), RUN_META), encoding="utf-8") as fh:
                return json.load(fh)
        except (OSError, ValueError):
            return {}

    def progress(self, job: dict) -> dict | None:
        if job["state"] not in (RUNNING,) + FINISHED:
            return None
        meta = self.run_meta(job["id"])
        totals = read_totals(self.progress_dir(job["id"]))
        out: dict = {"records": int(totals.get("read_records", 0)), "written": int(totals.get("written", 0))}
        if meta.get("input_bytes"):
            out["fraction"] = round(min(1.0, totals.get("read_bytes", 0) / meta["input_bytes"]), 4)
            out["input_bytes"] = meta["input_bytes"]
        if job["state"] == SUCCEEDED:
            out["fraction"] = 1.0
        out["stages"] = {name: int(totals[f"stage:{name}"]) for name in meta.get("stages", []) if f"stage:{name}" in totals}
        if meta.get("dry_run"):
            out["dry_run"] = True
        return out
