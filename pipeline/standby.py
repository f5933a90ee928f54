"""Warm worker processes for local runs of several workers.

Beam's local runner starts each worker process when the job's first stage runs, and a worker then
spends about 2 s importing Beam (pandas, pymongo and the GCS client come with it) and Thresher
before its first bundle: on the crawl's two-worker run that was 2.3 s of a 30 s job in which the
one-worker run, in-process, had nothing to import. Here the worker processes are started when the
run starts (`thresher run`: before the driver imports Beam itself), and import while the driver
does its own imports and builds the graph; each then waits for a job on a Unix socket of its own.
The command Beam runs for a worker (`python -m thresher.pipeline.worker --attach FOLDER`) is a small
launcher that hands its environment (the runner's addresses, the worker id, the pipeline options)
to a waiting process, relays that worker's exit status, and takes the worker down with it if
Beam kills it. A launcher that finds no waiting process runs the worker itself, as before.

Files in the pool's folder: ``N.wait`` until process N listens, ``N.sock`` while it waits for a
job, ``N.taken`` once it has one.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

LOCAL_RUNNER = "direct"
PREFIX = "thresher-standby-"  # + the driver's pid: a later pool removes the folders of drivers that are gone
ATTACH_WAIT_S = 60.0  # a launcher waits this long for a process still importing, then starts its own
IDLE_S = 3600.0  # a process nobody takes ends after this long (the driver ends unused ones sooner)
_ACK, _SOCKET_PATH_MAX = b"\x01", 100  # sun_path holds 104-108 bytes, by platform


class StandbyPool:
    """`n` worker processes importing now, each waiting on a socket in a folder of its own."""

    def __init__(self, n: int, python: str = sys.executable):
        self.n, self.python = n, python
        sweep()
        self.folder = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")
        self.procs: list[subprocess.Popen] = []
        self.used = 0  # processes a launcher took, counted when the pool closes
        if len(os.path.join(self.folder, f"{n}.sock")) > _SOCKET_PATH_MAX:  # a long TMPDIR: no pool
            return
        for i in range(n):
            open(os.path.join(self.folder, f"{i}.wait"), "w").close()
            self.procs.append(subprocess.Popen(
                [python, "-m", "thresher.pipeline.worker", "--standby", os.path.join(self.folder, str(i))],
                stdin=subprocess.DEVNULL))

    def command(self) -> str:
        """The worker command Beam runs: a launcher attaching to one of these processes."""
        return f"{shlex.quote(self.python)} -m thresher.pipeline.worker --attach {shlex.quote(self.folder)}"

    def taken(self) -> int:
        try:
            return sum(name.endswith(".taken") for name in os.listdir(self.folder))
        except OSError:
            return 0

    def close(self) -> None:
        """Ends the processes still there (unused ones; the workers of a finished job are ending
        on their own) and removes the folder. A launcher arriving later starts its own worker."""
        self.used += self.taken()
        shutil.rmtree(self.folder, ignore_errors=True)
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        for p in self.procs:
            p.wait()
        self.procs = []


def sweep(root: str | None = None) -> None:
    """Removes the folders of pools whose driver is gone (killed before it could close them)."""
    root = root or tempfile.gettempdir()
    try:
        names = [n for n in os.listdir(root) if n.startswith(PREFIX)]
    except OSError:
        return
    for name in names:
        pid = name[len(PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


_prestarted: dict[int, StandbyPool] = {}


def prestart(runner: str, workers: int) -> None:
    """Starts the pool a run with this runner and worker count will take (`pool_for`), so its
    processes import while the caller imports Beam. No pool for one worker or other runners."""
    if runner == LOCAL_RUNNER and workers > 1 and workers not in _prestarted:
        _prestarted[workers] = StandbyPool(workers)


def pool_for(runner: str, workers: int) -> StandbyPool | None:
    """The pool of a run: the prestarted one, or one started now; None for one worker (the local
    runner runs it in-process) and for other runners (their workers are theirs to start)."""
    if runner != LOCAL_RUNNER or workers <= 1:
        return None
    return _prestarted.pop(workers, None) or StandbyPool(workers)


# --- the two sides of a socket, in the worker processes (pipeline/worker.py) ---------------------


def _send(conn: socket.socket, data: bytes) -> None:
    conn.sendall(struct.pack("<I", len(data)) + data)


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError("the other side closed the socket")
        data += chunk
    return data


def serve(base: str, run_worker) -> None:
    """A waiting process: listens on ``base.sock``, takes one launcher's environment, runs
    `run_worker()` (Beam's harness, imported already) and sends its exit status back."""
    if sys.platform.startswith("linux"):  # end with the driver, even one killed by SIGKILL
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(base + ".sock")
    srv.listen(1)
    _remove(base + ".wait")
    srv.settimeout(IDLE_S)
    try:
        conn, _ = srv.accept()
    except (OSError, socket.timeout):  # the pool was closed, or nobody came
        sys.exit(0)
    finally:
        srv.close()
        _remove(base + ".sock")
    try:
        conn.settimeout(30)
        env = json.loads(_recv_exact(conn, struct.unpack("<I", _recv_exact(conn, 4))[0]))
        conn.sendall(_ACK)
        conn.settimeout(None)
    except (OSError, EOFError, ValueError):  # the launcher went away: nothing was started
        sys.exit(0)
    open(base + ".taken", "w").close()
    os.environ.clear()
    os.environ.update(env)
    done = threading.Event()

    def watch() -> None:  # the launcher killed (Beam gives up on a worker by killing its process)
        try:
            conn.recv(1)
        except OSError:
            pass
        if not done.is_set():
            os._exit(1)

    threading.Thread(target=watch, name="launcher-watch", daemon=True).start()
    code = 1
    try:
        run_worker()
        code = 0
    finally:  # an exception still prints its traceback, after the launcher has the status
        done.set()
        try:
            conn.sendall(bytes([code]))
        except OSError:
            pass


def attach(folder: str) -> int | None:
    """A launcher: hands this process's environment to a waiting process of `folder` and returns
    that worker's exit status; None when no process will take it (run the worker here instead)."""
    payload = json.dumps(dict(os.environ)).encode()
    deadline = time.monotonic() + ATTACH_WAIT_S
    while time.monotonic() < deadline:
        try:
            names = os.listdir(folder)
        except OSError:  # the pool is closed
            return None
        listening = sorted(n for n in names if n.endswith(".sock"))
        for name in listening:
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                conn.settimeout(10)
                conn.connect(os.path.join(folder, name))
                _send(conn, payload)
                if _recv_exact(conn, 1) != _ACK:
                    raise EOFError("no acknowledgement")
            except (OSError, EOFError):  # taken by another launcher meanwhile, or gone
                conn.close()
                continue
            conn.settimeout(None)
            try:
                status = conn.recv(1)
            except OSError:
                status = b""
            return status[0] if status else 1  # no status: the process died
        if not listening and not any(n.endswith(".wait") for n in names):
            return None  # every process is taken, or gone
        time.sleep(0.02)
    return None


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
