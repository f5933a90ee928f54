"""A live progress line for local runs.

Workers (threads or processes on this machine) write their running totals to small files in a
shared folder, each replaced atomically; the driver sums them a few times a second. Beam metrics
are not used because the portable runners do not stream them while a job runs. Remote runners
get no progress folder, and workers then report nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
import uuid
from collections import Counter


PROGRESS_ENV = "THRESHER_PROGRESS_DIR"
# A caller that watches a run (`thresher serve`) names the folder in this variable; the run leaves it in
# place and writes RUN_META there: the input size, the stages, the remote job's id.
RUN_META = "run.meta"  # not *.json: read_totals sums those


def write_run_meta(folder: str, update: dict) -> None:
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, RUN_META)
    try:
        with open(path, encoding="utf-8") as fh:
            meta = json.load(fh)
    except (OSError, ValueError):
        meta = {}
    meta.update(update)
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        json.dump(meta, fh)
    os.replace(path + ".tmp", path)


class ProgressWriter:
    """Running totals of one process, flushed at most every `interval` seconds.

    The stages of a worker share one (`shared`): a file per process instead of one per DoFn
    instance, so a run renames a few files a second, not one per stage (1,427 renames, 1.5 s, in a
    one-worker run of the crawl before). Adds and flushes hold a lock: Beam runs bundles on
    several threads of a worker."""

    _shared: dict = {}
    _shared_lock = threading.Lock()

    def __init__(self, folder: str | None, interval: float = 0.5):
        self.folder = folder
        self.interval = interval
        self.totals: Counter = Counter()
        self._name = f"{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
        self._last = 0.0
        self._lock = threading.Lock()

    @classmethod
    def shared(cls, folder: str | None) -> "ProgressWriter":
        """This process's writer for `folder` (a forked child gets its own)."""
        key = (os.getpid(), folder)
        with cls._shared_lock:
            if key not in cls._shared:
                cls._shared[key] = cls(folder)
            return cls._shared[key]

    @classmethod
    def release(cls, folder: str) -> None:
        """Forget this process's shared writer for `folder` (a new run there starts from zero)."""
        with cls._shared_lock:
            cls._shared.pop((os.getpid(), folder), None)

    def add(self, key: str, n: float = 1) -> None:
        if self.folder is None:
            return
        with self._lock:
            self.totals[key] += n
            now = time.monotonic()
            if now - self._last >= self.interval:
                self._flush(now)

    def flush(self, now: float | None = None) -> None:
        if self.folder is None:
            return
        with self._lock:
            self._flush(time.monotonic() if now is None else now)

    def _flush(self, now: float) -> None:
        if not self.totals:
            return
        self._last = now
        path = os.path.join(self.folder, self._name)
        try:
            with open(path + ".tmp", "w") as fh:
                json.dump(self.totals, fh)
            os.replace(path + ".tmp", path)
        except OSError:
            pass  # progress is best effort; the run's statistics do not depend on it


def read_totals(folder: str) -> Counter:
    totals: Counter = Counter()
    try:
        names = os.listdir(folder)
    except OSError:
        return totals
    for name in names:
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(folder, name)) as fh:
                totals.update(json.load(fh))
        except (OSError, ValueError):
            continue
    return totals


class ProgressDisplay:
    """Prints one line of progress to stderr while the job runs (rewritten in place on a TTY)."""

    LOG_PERIOD = 10.0  # seconds between lines where the stream is not a terminal (a log file)

    def __init__(self, folder: str, input_bytes: int, stage_names: list[str], stream=None, period: float = 0.5):
        self.folder = folder
        self.input_bytes = max(1, input_bytes)
        self.stage_names = stage_names
        self.stream = stream = sys.stderr if stream is None else stream  # the stderr of the moment, not of the import
        self.period = period if stream.isatty() else self.LOG_PERIOD
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._start = time.monotonic()

    def line(self) -> str:
        t = read_totals(self.folder)
        mb = t.get("read_bytes", 0) / 1e6
        parts = [f"read {mb:,.1f}/{self.input_bytes / 1e6:,.1f} MB ({min(100.0, 100 * t.get('read_bytes', 0) / self.input_bytes):.0f}%)",
                 f"{int(t.get('read_records', 0)):,} records"]
        for name in self.stage_names:
            if f"stage:{name}" in t:
                parts.append(f"{name} {int(t[f'stage:{name}']):,}")
        if "written" in t:
            parts.append(f"written {int(t['written']):,}")
        return f"  {time.monotonic() - self._start:6.1f}s  " + " | ".join(parts)

    def _loop(self) -> None:
        tty = self.stream.isatty()
        while not self._stop.wait(self.period):
            text = self.line()
            # on a terminal the line is rewritten in place: one wider than the terminal would wrap,
            # and "\r" returns only to the start of its last row, leaving the others behind
            self.stream.write(("\r" + text[:self._width() - 1] + "\x1b[K") if tty else text + "\n")
            self.stream.flush()

    def _width(self) -> int:
        """The terminal's width (read every time: the window may be resized)."""
        try:
            return os.get_terminal_size(self.stream.fileno()).columns
        except (AttributeError, OSError, ValueError):
            return shutil.get_terminal_size().columns  # COLUMNS, else stdout's terminal, else 80

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        if self.stream.isatty():
            self.stream.write("\r\x1b[K")
            self.stream.flush()
