"""The jobs table: SQLite under the service's home folder (the standard library's sqlite3).

One connection, shared by the request handlers and the scheduler thread behind one lock; WAL
journaling, so a reader never waits for the scheduler's writes and a killed server loses nothing
that was committed. A job row holds what was asked (the spec, as JSON) and what happened (state,
process id, exit code, error, the remote job's id).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, INTERRUPTED = (
    "queued", "running", "succeeded", "failed", "cancelled", "interrupted")
STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, INTERRUPTED)
FINISHED = (SUCCEEDED, FAILED, CANCELLED, INTERRUPTED)

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    spec TEXT NOT NULL,
    output TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    pid INTEGER,
    pid_start TEXT,
    returncode INTEGER,
    error TEXT,
    remote_job_id TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    rerun_of TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, seq);
"""

COLUMNS = ("id", "seq", "name", "state", "spec", "output", "created", "started", "finished", "attempts", "pid",
           "pid_start", "returncode", "error", "remote_job_id", "cancel_requested", "rerun_of")


class JobStore:
    def __init__(self, path: str):
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _row(self, row) -> dict | None:
        if row is None:
            return None
        job = dict(zip(COLUMNS, row))
        job["spec"] = json.loads(job["spec"])
        job["cancel_requested"] = bool(job["cancel_requested"])
        return job

    def create(self, name: str, spec: dict, output_for, rerun_of: str | None = None) -> dict:
        """A queued job; `output_for(job_id)` names its run directory."""
        job_id = time.strftime("%Y%m%d-%H%M%S-", time.gmtime()) + uuid.uuid4().hex[:6]
        with self._lock:
            seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs").fetchone()[0]
            self._db.execute("INSERT INTO jobs (id, seq, name, state, spec, output, created, rerun_of) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             (job_id, seq, name, QUEUED, json.dumps(spec), output_for(job_id), time.time(), rerun_of))
        return self.get(job_id)

    def get(self, job_id: str) -> dict | None:
        with self._lock:
            return self._row(self._db.execute(f"SELECT {', '.join(COLUMNS)} FROM jobs WHERE id = ?", (job_id,)).fetchone())

    def list(self, state: str | None = None, name: str | None = None, limit: int = 200, offset: int = 0) -> list[dict]:
        where, args = [], []
        if state:
            where.append("state = ?")
            args.append(state)
        if name:
            where.append("instr(lower(name), lower(?)) > 0")
            args.append(name)
        sql = f"SELECT {', '.join(COLUMNS)} FROM jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY seq DESC LIMIT ? OFFSET ?"
        with self._lock:
            return [self._row(r) for r in self._db.execute(sql, (*args, limit, offset)).fetchall()]

    def update(self, job_id: str, **fields) -> None:
        if not fields:
            return
        bad = set(fields) - set(COLUMNS)
        if bad:
            raise KeyError(f"no such job columns: {sorted(bad)}")
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self._lock:
            self._db.execute(f"UPDATE jobs SET {sets} WHERE id = ?", (*fields.values(), job_id))

    def transition(self, job_id: str, from_states: tuple[str, ...], **fields) -> bool:
        """Update the job only if it is in one of `from_states` (atomically): False if it was not."""
        sets = ", ".join(f"{k} = ?" for k in fields)
        marks = ", ".join("?" for _ in from_states)
        with self._lock:
            cur = self._db.execute(f"UPDATE jobs SET {sets} WHERE id = ? AND state IN ({marks})",
                                   (*fields.values(), job_id, *from_states))
            return cur.rowcount == 1

    def next_queued(self) -> dict | None:
        with self._lock:
            return self._row(self._db.execute(f"SELECT {', '.join(COLUMNS)} FROM jobs WHERE state = ? "
                                              "ORDER BY seq LIMIT 1", (QUEUED,)).fetchone())

    def in_state(self, state: str) -> list[dict]:
        with self._lock:
            return [self._row(r) for r in self._db.execute(
                f"SELECT {', '.join(COLUMNS)} FROM jobs WHERE state = ? ORDER BY seq", (state,)).fetchall()]

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())
