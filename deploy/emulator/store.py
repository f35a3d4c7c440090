"""SQLite persistence for the emulator: endpoints, releases, templates, secrets, jobs, workers.

One connection, used only from the server's event-loop thread (docker calls run in
worker threads and never touch it). WAL mode with synchronous=NORMAL keeps a commit
well under a millisecond while surviving a process crash, so a restart loses nothing.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS endpoints (
    id TEXT PRIMARY KEY, doc TEXT NOT NULL, version INTEGER NOT NULL,
    template_id TEXT, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS releases (
    id TEXT PRIMARY KEY, endpoint_id TEXT NOT NULL, version INTEGER NOT NULL,
    created_at TEXT NOT NULL, diff TEXT NOT NULL, snapshot TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS templates (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS secrets (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, value TEXT NOT NULL, description TEXT);
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, endpoint_id TEXT NOT NULL,
    status TEXT NOT NULL, input TEXT NOT NULL, webhook TEXT, options TEXT NOT NULL,
    sync INTEGER NOT NULL, low_priority INTEGER NOT NULL, output TEXT, error TEXT,
    worker_id TEXT, created_at REAL NOT NULL, started_at REAL, completed_at REAL,
    ttl_deadline REAL NOT NULL, exec_deadline REAL, retain_until REAL,
    retries INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS jobs_by_endpoint ON jobs (endpoint_id, status);
CREATE TABLE IF NOT EXISTS stream_chunks (
    job_id TEXT NOT NULL, seq INTEGER NOT NULL, output TEXT NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (job_id, seq));
CREATE TABLE IF NOT EXISTS workers (
    id TEXT PRIMARY KEY, endpoint_id TEXT NOT NULL, version INTEGER NOT NULL, image TEXT NOT NULL,
    container_id TEXT, started_at TEXT NOT NULL, ended_at TEXT, exit_code INTEGER, reason TEXT);
"""

#: Job states a job never leaves (except through /retry for FAILED and TIMED_OUT).
FINAL_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"})

#: Marks "no output was reported" apart from a reported JSON null.
_ABSENT = object()


@dataclass
class Job:
    id: str
    endpoint_id: str
    status: str
    input: Any
    options: dict[str, Any]
    sync: bool
    low_priority: bool
    created_at: float
    ttl_deadline: float
    webhook: str | None = None
    output: Any = field(default=_ABSENT)
    error: Any = None
    worker_id: str | None = None
    started_at: float | None = None
    completed_at: float | None = None
    exec_deadline: float | None = None
    retain_until: float | None = None
    retries: int = 0

    @property
    def has_output(self) -> bool:
        return self.output is not _ABSENT

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATES

    def clear_output(self) -> None:
        self.output = _ABSENT


def _load(text: str | None) -> Any:
    return _ABSENT if text is None else json.loads(text)


def _dump(value: Any) -> str | None:
    return None if value is _ABSENT else json.dumps(value)


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    # -- documents (endpoints, templates) -------------------------------------------------

    def put_endpoint(self, doc: dict[str, Any], version: int, template_id: str | None) -> None:
        self.db.execute(
            "INSERT INTO endpoints (id, doc, version, template_id, created_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET doc=excluded.doc, version=excluded.version",
            (doc["id"], json.dumps(doc), version, template_id, doc["createdAt"]),
        )

    def endpoint(self, endpoint_id: str) -> tuple[dict[str, Any], int] | None:
        row = self.db.execute("SELECT doc, version FROM endpoints WHERE id=?", (endpoint_id,)).fetchone()
        return None if row is None else (json.loads(row["doc"]), int(row["version"]))

    def endpoints(self) -> list[tuple[dict[str, Any], int]]:
        rows = self.db.execute("SELECT doc, version FROM endpoints ORDER BY created_at, id").fetchall()
        return [(json.loads(r["doc"]), int(r["version"])) for r in rows]

    def endpoint_template(self, endpoint_id: str) -> str | None:
        row = self.db.execute("SELECT template_id FROM endpoints WHERE id=?", (endpoint_id,)).fetchone()
        return None if row is None else row["template_id"]

    def endpoints_bound_to(self, template_id: str) -> list[str]:
        rows = self.db.execute("SELECT id FROM endpoints WHERE template_id=?", (template_id,)).fetchall()
        return [r["id"] for r in rows]

    def delete_endpoint(self, endpoint_id: str) -> None:
        self.db.execute("DELETE FROM endpoints WHERE id=?", (endpoint_id,))
        self.db.execute("DELETE FROM releases WHERE endpoint_id=?", (endpoint_id,))

    def add_release(
        self,
        *,
        release_id: str,
        endpoint_id: str,
        version: int,
        created_at: str,
        diff: list[dict[str, Any]],
        snapshot: dict[str, Any],
    ) -> None:
        self.db.execute(
            "INSERT INTO releases (id, endpoint_id, version, created_at, diff, snapshot)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (release_id, endpoint_id, version, created_at, json.dumps(diff), json.dumps(snapshot)),
        )

    def releases(self, endpoint_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT id, version, created_at, diff FROM releases WHERE endpoint_id=? ORDER BY version DESC",
            (endpoint_id,),
        ).fetchall()
        return [
            {
                "id": r["id"],
                "version": r["version"],
                "createdAt": r["created_at"],
                "diff": json.loads(r["diff"]),
            }
            for r in rows
        ]

    def put_template(self, doc: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO templates (id, doc) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET doc=excluded.doc",
            (doc["id"], json.dumps(doc)),
        )

    def template(self, template_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT doc FROM templates WHERE id=?", (template_id,)).fetchone()
        return None if row is None else dict(json.loads(row["doc"]))

    def templates(self) -> list[dict[str, Any]]:
        return [json.loads(r["doc"]) for r in self.db.execute("SELECT doc FROM templates ORDER BY rowid")]

    def delete_template(self, template_id: str) -> None:
        self.db.execute("DELETE FROM templates WHERE id=?", (template_id,))

    # -- secrets ---------------------------------------------------------------------------

    def add_secret(self, secret_id: str, name: str, value: str, description: str | None) -> bool:
        """False when a secret of that name exists."""
        try:
            self.db.execute(
                "INSERT INTO secrets (id, name, value, description) VALUES (?, ?, ?, ?)",
                (secret_id, name, value, description),
            )
        except sqlite3.IntegrityError:
            return False
        return True

    def delete_secret(self, secret_id: str) -> bool:
        return self.db.execute("DELETE FROM secrets WHERE id=?", (secret_id,)).rowcount > 0

    def secret_values(self) -> dict[str, str]:
        return {r["name"]: r["value"] for r in self.db.execute("SELECT name, value FROM secrets")}

    # -- jobs ------------------------------------------------------------------------------

    def insert_job(self, job: Job) -> None:
        self.db.execute(
            "INSERT INTO jobs (id, endpoint_id, status, input, webhook, options, sync, low_priority,"
            " created_at, ttl_deadline) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                job.id,
                job.endpoint_id,
                job.status,
                json.dumps(job.input),
                job.webhook,
                json.dumps(job.options),
                int(job.sync),
                int(job.low_priority),
                job.created_at,
                job.ttl_deadline,
            ),
        )

    def save_job(self, job: Job) -> None:
        """Write back the mutable fields of a job."""
        self.db.execute(
            "UPDATE jobs SET status=?, output=?, error=?, worker_id=?, started_at=?, completed_at=?,"
            " exec_deadline=?, retain_until=?, retries=? WHERE id=?",
            (
                job.status,
                _dump(job.output),
                None if job.error is None else json.dumps(job.error),
                job.worker_id,
                job.started_at,
                job.completed_at,
                job.exec_deadline,
                job.retain_until,
                job.retries,
                job.id,
            ),
        )

    def restamp_job(self, job: Job) -> None:
        """A retried job starts a new life: new submit time, new TTL deadline."""
        self.db.execute(
            "UPDATE jobs SET created_at=?, ttl_deadline=? WHERE id=?",
            (job.created_at, job.ttl_deadline, job.id),
        )

    def job(self, job_id: str) -> Job | None:
        row = self.db.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        return None if row is None else _job(row)

    def jobs_where(self, clause: str, params: tuple[Any, ...] = ()) -> Iterator[Job]:
        for row in self.db.execute(f"SELECT * FROM jobs WHERE {clause} ORDER BY seq", params):  # noqa: S608
            yield _job(row)

    def delete_job(self, job_id: str) -> None:
        self.db.execute("DELETE FROM jobs WHERE id=?", (job_id,))
        self.db.execute("DELETE FROM stream_chunks WHERE job_id=?", (job_id,))

    def job_counts(self, endpoint_id: str) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT status, COUNT(*) AS n FROM jobs WHERE endpoint_id=? GROUP BY status", (endpoint_id,)
        )
        return {r["status"]: int(r["n"]) for r in rows}

    def queue_summary(self, endpoint_id: str) -> tuple[int, float | None]:
        """(queued jobs that trigger scaling, submit time of the oldest): low-priority jobs do not."""
        row = self.db.execute(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM jobs"
            " WHERE endpoint_id=? AND status='IN_QUEUE' AND low_priority=0",
            (endpoint_id,),
        ).fetchone()
        return int(row["n"]), row["oldest"]

    def retried_count(self, endpoint_id: str) -> int:
        row = self.db.execute(
            "SELECT COALESCE(SUM(retries), 0) AS n FROM jobs WHERE endpoint_id=?", (endpoint_id,)
        ).fetchone()
        return int(row["n"])

    def add_chunk(self, job_id: str, output: Any) -> None:
        self.db.execute(
            "INSERT INTO stream_chunks (job_id, seq, output) VALUES "
            "(?, (SELECT COALESCE(MAX(seq), -1) + 1 FROM stream_chunks WHERE job_id=?), ?)",
            (job_id, job_id, json.dumps(output)),
        )

    def drain_chunks(self, job_id: str) -> list[Any]:
        """Chunks not handed out yet, marked as handed out (each chunk is returned once)."""
        rows = self.db.execute(
            "SELECT seq, output FROM stream_chunks WHERE job_id=? AND delivered=0 ORDER BY seq", (job_id,)
        ).fetchall()
        if rows:
            self.db.execute(
                "UPDATE stream_chunks SET delivered=1 WHERE job_id=? AND seq<=?", (job_id, rows[-1]["seq"])
            )
        return [json.loads(r["output"]) for r in rows]

    def clear_chunks(self, job_id: str) -> None:
        self.db.execute("DELETE FROM stream_chunks WHERE job_id=?", (job_id,))

    # -- workers ---------------------------------------------------------------------------

    def add_worker(self, worker_id: str, endpoint_id: str, version: int, image: str, started_at: str) -> None:
        self.db.execute(
            "INSERT INTO workers (id, endpoint_id, version, image, started_at) VALUES (?,?,?,?,?)",
            (worker_id, endpoint_id, version, image, started_at),
        )

    def update_worker(self, worker_id: str, **fields: Any) -> None:
        columns = ", ".join(f"{name}=?" for name in fields)
        self.db.execute(f"UPDATE workers SET {columns} WHERE id=?", (*fields.values(), worker_id))  # noqa: S608

    def open_workers(self) -> list[sqlite3.Row]:
        """Workers a previous run left without an end (their containers are gone or orphaned)."""
        return self.db.execute("SELECT * FROM workers WHERE ended_at IS NULL").fetchall()

    def worker_row(self, worker_id: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.db.execute("SELECT * FROM workers WHERE id=?", (worker_id,)).fetchone()
        return row


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        endpoint_id=row["endpoint_id"],
        status=row["status"],
        input=json.loads(row["input"]),
        options=json.loads(row["options"]),
        sync=bool(row["sync"]),
        low_priority=bool(row["low_priority"]),
        created_at=row["created_at"],
        ttl_deadline=row["ttl_deadline"],
        webhook=row["webhook"],
        output=_load(row["output"]),
        error=None if row["error"] is None else json.loads(row["error"]),
        worker_id=row["worker_id"],
        started_at=row["started_at"],
        completed_at=row["completed_at"],
        exec_deadline=row["exec_deadline"],
        retain_until=row["retain_until"],
        retries=row["retries"],
    )
