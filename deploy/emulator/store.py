"""SQLite persistence for the emulator: endpoints, releases, templates, secrets, registries,
network volumes, jobs, workers.

One connection, used only from the server's event-loop thread (docker calls run in
worker threads and never touch it). WAL mode with synchronous=NORMAL keeps a commit
well under a millisecond while surviving a process crash, so a restart loses nothing.

Every SQL statement of the emulator lives in this module, behind a named method.
The schema carries its version in ``PRAGMA user_version``; :data:`MIGRATIONS` takes
a database of any older version to the current one. The files (database, WAL,
shared memory) hold secret values and inline env, so they are created mode 0600.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

SCHEMA_V1 = """
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
#: Version 2: REST v2 secrets carry `createdAt` / `valueLastUpdatedAt` (a secret written by an
#: older emulator gets the upgrade time as its creation and an unknown (null) value time);
#: registry credentials (write-only username and password, so only in this 0600 file) and
#: network volumes (each also a Docker volume named after its id).
SCHEMA_V2 = """
ALTER TABLE secrets ADD COLUMN created_at TEXT;
ALTER TABLE secrets ADD COLUMN value_updated_at TEXT;
UPDATE secrets SET created_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE created_at IS NULL;
CREATE TABLE IF NOT EXISTS registries (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, username TEXT NOT NULL, password TEXT NOT NULL,
    created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS network_volumes (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, size INTEGER NOT NULL, data_center TEXT NOT NULL,
    type TEXT NOT NULL, created_at TEXT NOT NULL);
"""
#: Statements that take a database of version N-1 to version N (index 0 is version 1).
#: Version 1 uses IF NOT EXISTS, so a database written before versions existed (0) upgrades.
MIGRATIONS: tuple[str, ...] = (SCHEMA_V1, SCHEMA_V2)
SCHEMA_VERSION = len(MIGRATIONS)
#: The database and the files SQLite keeps beside it.
STATE_SUFFIXES = ("", "-wal", "-shm", "-journal")

#: Job states a job never leaves (except through /retry for FAILED and TIMED_OUT).
FINAL_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"})

#: Marks "no output was reported" apart from a reported JSON null.
_ABSENT = object()
#: A secret's metadata columns: never its value.
_SELECT_SECRETS = "SELECT id, name, description, created_at, value_updated_at FROM secrets"
#: Marks "leave this field as it is" apart from None ("clear it") in an update.
UNCHANGED = object()


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


class StoreError(Exception):
    """The state store cannot do what was asked (disk full, read-only, corrupt): the server answers 503."""


class UnservableValue(ValueError):
    """A value that could not be served back as JSON (NaN, a lone surrogate): never stored."""


def _load(text: str | None) -> Any:
    return _ABSENT if text is None else json.loads(text)


def _json(value: Any) -> str:
    """Strict JSON text, or UnservableValue: what is stored must be what every list can serve."""
    try:
        # None is as false as False, and codec names ignore case: those mutants are equivalent.
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)  # pragma: no mutate
        text.encode("utf-8")  # pragma: no mutate
    except (ValueError, TypeError, RecursionError) as exc:
        raise UnservableValue(f"value cannot be stored as JSON: {exc}") from None
    return text


def _dump(value: Any) -> str | None:
    return None if value is _ABSENT else _json(value)


def _guarded(method: Callable[P, R]) -> Callable[P, R]:
    """Turn SQLite's failures (disk full, I/O error, locked) into StoreError with SQLite's reason."""

    @wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            raise StoreError(f"emulator state store failed: {exc}") from exc

    return call


class Store:
    """Owns the emulator's durable state and every SQL statement that reads or writes it.

    Endpoint and template documents, releases, secrets, jobs with their stream
    chunks, and the worker history. Methods raise StoreError when SQLite fails
    (full disk: "database or disk is full") and UnservableValue for a value that
    is not strict JSON; neither leaves a half-written row (each method is one statement
    or one transaction).
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _create_private(path)
        try:
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self.db.row_factory = _named_row
            self.db.execute("PRAGMA journal_mode=WAL")  # pragma: no mutate (SQL ignores case)
            self.db.execute("PRAGMA synchronous=NORMAL")  # pragma: no mutate (SQL ignores case)
            self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the emulator state {path}: {exc}") from exc
        _make_private(path)

    def _migrate(self) -> None:
        # SQL ignores case, and SQLite names the column user_version whatever the case asked.
        version = int(self.db.execute("PRAGMA user_version").fetchone()["user_version"])  # pragma: no mutate
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the state was written by a newer rpdeploy (schema {version}, this one reads "
                f"up to {SCHEMA_VERSION}); use a newer rpdeploy or another --state directory"
            )
        for number in range(version + 1, SCHEMA_VERSION + 1):
            # executescript commits first; the version bump rides in the same script.
            self.db.executescript(
                f"BEGIN;\n{MIGRATIONS[number - 1]}\nPRAGMA user_version = {number};\nCOMMIT;"
            )

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()["user_version"])

    def close(self) -> None:
        self.db.close()

    # -- documents (endpoints, templates) -------------------------------------------------

    @_guarded
    def put_endpoint(self, doc: dict[str, Any], version: int, template_id: str | None) -> None:
        self.db.execute(
            "INSERT INTO endpoints (id, doc, version, template_id, created_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET doc=excluded.doc, version=excluded.version",
            (doc["id"], _json(doc), version, template_id, doc["createdAt"]),
        )

    @_guarded
    def endpoint(self, endpoint_id: str) -> tuple[dict[str, Any], int] | None:
        row = self.db.execute("SELECT doc, version FROM endpoints WHERE id=?", (endpoint_id,)).fetchone()
        return None if row is None else (json.loads(row["doc"]), int(row["version"]))

    @_guarded
    def endpoints(self) -> list[tuple[dict[str, Any], int]]:
        rows = self.db.execute("SELECT doc, version FROM endpoints ORDER BY created_at, id").fetchall()
        return [(json.loads(r["doc"]), int(r["version"])) for r in rows]

    @_guarded
    def endpoint_template(self, endpoint_id: str) -> str | None:
        row = self.db.execute("SELECT template_id FROM endpoints WHERE id=?", (endpoint_id,)).fetchone()
        return None if row is None else row["template_id"]

    @_guarded
    def endpoints_bound_to(self, template_id: str) -> list[str]:
        rows = self.db.execute("SELECT id FROM endpoints WHERE template_id=?", (template_id,)).fetchall()
        return [r["id"] for r in rows]

    @_guarded
    def delete_endpoint(self, endpoint_id: str) -> None:
        """The endpoint, its releases, and its jobs with their stream chunks, in one transaction."""
        with self._transaction():
            self.db.execute("DELETE FROM endpoints WHERE id=?", (endpoint_id,))
            self.db.execute("DELETE FROM releases WHERE endpoint_id=?", (endpoint_id,))
            self.db.execute(
                "DELETE FROM stream_chunks WHERE job_id IN (SELECT id FROM jobs WHERE endpoint_id=?)",
                (endpoint_id,),
            )
            self.db.execute("DELETE FROM jobs WHERE endpoint_id=?", (endpoint_id,))

    @_guarded
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
            (release_id, endpoint_id, version, created_at, _json(diff), _json(snapshot)),
        )

    @_guarded
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

    @_guarded
    def put_template(self, doc: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO templates (id, doc) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET doc=excluded.doc",
            (doc["id"], _json(doc)),
        )

    @_guarded
    def template(self, template_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT doc FROM templates WHERE id=?", (template_id,)).fetchone()
        return None if row is None else dict(json.loads(row["doc"]))

    @_guarded
    def templates(self) -> list[dict[str, Any]]:
        return [json.loads(r["doc"]) for r in self.db.execute("SELECT doc FROM templates ORDER BY rowid")]

    @_guarded
    def delete_template(self, template_id: str) -> None:
        self.db.execute("DELETE FROM templates WHERE id=?", (template_id,))

    # -- secrets ---------------------------------------------------------------------------

    @_guarded
    def add_secret(
        self, secret_id: str, name: str, value: str, description: str | None, created_at: str
    ) -> bool:
        """False when a secret of that name exists (names are unique ignoring ASCII case)."""
        for text in (name, value, description or ""):
            _json(text)  # a lone surrogate would make every later read fail
        with self._transaction():
            if self.secret_by_name(name) is not None:
                return False
            self.db.execute(
                "INSERT INTO secrets (id, name, value, description, created_at, value_updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (secret_id, name, value, description, created_at, created_at),
            )
        return True

    @_guarded
    def secret(self, secret_id: str) -> dict[str, Any] | None:
        """A secret's metadata (never its value) in the REST v2 `Secret` shape."""
        row = self.db.execute(
            "SELECT id, name, description, created_at, value_updated_at FROM secrets WHERE id=?", (secret_id,)
        ).fetchone()
        return None if row is None else _secret(row)

    @_guarded
    def secret_by_name(self, name: str) -> dict[str, Any] | None:
        # Names are ASCII (deploy.runpod.secrets), so NOCASE is the whole case-insensitive match.
        row = self.db.execute(
            _SELECT_SECRETS + " WHERE name = ? COLLATE NOCASE",
            (name,),
        ).fetchone()
        return None if row is None else _secret(row)

    @_guarded
    def secrets(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT id, name, description, created_at, value_updated_at FROM secrets ORDER BY rowid"
        )
        return [_secret(row) for row in rows]

    @_guarded
    def update_secret(
        self, secret_id: str, *, value: str | None, description: str | object | None, at: str
    ) -> None:
        """Set the value (stamping `valueLastUpdatedAt`) and/or the description, in one transaction.

        ``description`` is left alone when it is :data:`UNCHANGED`; None clears it.
        """
        for text in (value or "", description if isinstance(description, str) else ""):
            _json(text)
        with self._transaction():
            if value is not None:
                self.db.execute(
                    "UPDATE secrets SET value=?, value_updated_at=? WHERE id=?", (value, at, secret_id)
                )
            if description is not UNCHANGED:
                self.db.execute("UPDATE secrets SET description=? WHERE id=?", (description, secret_id))

    @_guarded
    def delete_secret(self, secret_id: str) -> bool:
        return self.db.execute("DELETE FROM secrets WHERE id=?", (secret_id,)).rowcount > 0

    @_guarded
    def secret_values(self) -> dict[str, str]:
        return {r["name"]: r["value"] for r in self.db.execute("SELECT name, value FROM secrets")}

    # -- registry credentials ----------------------------------------------------------------

    @_guarded
    def add_registry(
        self, registry_id: str, name: str, username: str, password: str, created_at: str
    ) -> None:
        for text in (name, username, password):
            _json(text)
        self.db.execute(
            "INSERT INTO registries (id, name, username, password, created_at) VALUES (?, ?, ?, ?, ?)",
            (registry_id, name, username, password, created_at),
        )

    @_guarded
    def registries(self) -> list[dict[str, Any]]:
        """Every credential as `{id, name}` (the write-only fields stay here)."""
        rows = self.db.execute("SELECT id, name FROM registries ORDER BY created_at, rowid")
        return [{"id": r["id"], "name": r["name"]} for r in rows]

    @_guarded
    def registry(self, registry_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT id, name FROM registries WHERE id=?", (registry_id,)).fetchone()
        return None if row is None else {"id": row["id"], "name": row["name"]}

    @_guarded
    def registry_auth(self, registry_id: str) -> dict[str, str] | None:
        """The credential as docker's ``auth_config`` (username, password), for a worker's pull."""
        row = self.db.execute(
            "SELECT username, password FROM registries WHERE id=?", (registry_id,)
        ).fetchone()
        return None if row is None else {"username": row["username"], "password": row["password"]}

    @_guarded
    def delete_registry(self, registry_id: str) -> list[str]:
        """Delete a credential; endpoints and templates that named it lose the reference (null).

        The ids of the endpoints that lost it. One transaction: no document keeps a dangling id.
        """
        lost = []
        with self._transaction():
            for row in self.db.execute("SELECT id, doc FROM endpoints").fetchall():
                doc = json.loads(row["doc"])
                if doc.get("registry") == registry_id:
                    doc["registry"] = None
                    self.db.execute("UPDATE endpoints SET doc=? WHERE id=?", (_json(doc), row["id"]))
                    lost.append(row["id"])
            for row in self.db.execute("SELECT id, doc FROM templates").fetchall():
                doc = json.loads(row["doc"])
                if doc.get("registry") == registry_id:
                    doc["registry"] = None
                    self.db.execute("UPDATE templates SET doc=? WHERE id=?", (_json(doc), row["id"]))
            self.db.execute("DELETE FROM registries WHERE id=?", (registry_id,))
        return lost

    # -- network volumes ---------------------------------------------------------------------

    @_guarded
    def put_volume(self, doc: dict[str, Any], created_at: str) -> None:
        _json(doc["name"])
        self.db.execute(
            "INSERT INTO network_volumes (id, name, size, data_center, type, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET name=excluded.name, size=excluded.size",
            (doc["id"], doc["name"], doc["size"], doc["dataCenter"], doc["type"], created_at),
        )

    @_guarded
    def volume(self, volume_id: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT id, name, size, data_center, type FROM network_volumes WHERE id=?", (volume_id,)
        ).fetchone()
        return None if row is None else _volume(row)

    @_guarded
    def volumes(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT id, name, size, data_center, type FROM network_volumes ORDER BY created_at, rowid"
        )
        return [_volume(row) for row in rows]

    @_guarded
    def delete_volume(self, volume_id: str) -> None:
        self.db.execute("DELETE FROM network_volumes WHERE id=?", (volume_id,))

    # -- jobs ------------------------------------------------------------------------------

    @_guarded
    def insert_job(self, job: Job) -> None:
        self.db.execute(
            "INSERT INTO jobs (id, endpoint_id, status, input, webhook, options, sync, low_priority,"
            " created_at, ttl_deadline) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                job.id,
                job.endpoint_id,
                job.status,
                _json(job.input),
                job.webhook,
                _json(job.options),
                int(job.sync),
                int(job.low_priority),
                job.created_at,
                job.ttl_deadline,
            ),
        )

    @_guarded
    def save_job(self, job: Job) -> None:
        """Write back the mutable fields of a job."""
        self.db.execute(
            "UPDATE jobs SET status=?, output=?, error=?, worker_id=?, started_at=?, completed_at=?,"
            " exec_deadline=?, retain_until=?, retries=? WHERE id=?",
            (
                job.status,
                _dump(job.output),
                None if job.error is None else _json(job.error),
                job.worker_id,
                job.started_at,
                job.completed_at,
                job.exec_deadline,
                job.retain_until,
                job.retries,
                job.id,
            ),
        )

    @_guarded
    def restamp_job(self, job: Job) -> None:
        """A retried job starts a new life: new submit time, new TTL deadline (with its other fields)."""
        with self._transaction():
            self.save_job(job)
            self.db.execute(
                "UPDATE jobs SET created_at=?, ttl_deadline=? WHERE id=?",
                (job.created_at, job.ttl_deadline, job.id),
            )
            self.db.execute("DELETE FROM stream_chunks WHERE job_id=?", (job.id,))

    @_guarded
    def job(self, job_id: str) -> Job | None:
        row = self.db.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        return None if row is None else _job(row)

    def _jobs(self, where: str, params: tuple[Any, ...] = ()) -> list[Job]:
        # `where` is always one of this module's literal clauses, never caller text.
        rows = self.db.execute(f"SELECT * FROM jobs WHERE {where} ORDER BY seq", params).fetchall()  # noqa: S608
        return [_job(row) for row in rows]

    @_guarded
    def running_jobs(self) -> list[Job]:
        """Jobs some worker holds (IN_PROGRESS), oldest first."""
        return self._jobs("status = 'IN_PROGRESS'")

    @_guarded
    def queued_jobs(self) -> list[Job]:
        """Jobs waiting for a worker (IN_QUEUE), in submit order."""
        return self._jobs("status = 'IN_QUEUE'")

    @_guarded
    def unfinished_jobs(self, endpoint_id: str) -> list[Job]:
        """An endpoint's queued and running jobs."""
        return self._jobs("endpoint_id = ? AND status IN ('IN_QUEUE', 'IN_PROGRESS')", (endpoint_id,))

    @_guarded
    def jobs_past_execution_deadline(self, now: float) -> list[Job]:
        return self._jobs(
            "status = 'IN_PROGRESS' AND exec_deadline IS NOT NULL AND exec_deadline <= ?", (now,)
        )

    @_guarded
    def jobs_past_ttl(self, now: float) -> list[Job]:
        """Unfinished jobs whose TTL (counted from submit) has passed."""
        return self._jobs("status IN ('IN_QUEUE', 'IN_PROGRESS') AND ttl_deadline <= ?", (now,))

    @_guarded
    def results_past_retention(self, now: float) -> list[Job]:
        """Finished jobs whose result retention has passed."""
        return self._jobs(
            "retain_until IS NOT NULL AND retain_until <= ? AND status IN "
            "('COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT')",
            (now,),
        )

    @_guarded
    def delete_job(self, job_id: str) -> None:
        with self._transaction():
            self.db.execute("DELETE FROM jobs WHERE id=?", (job_id,))
            self.db.execute("DELETE FROM stream_chunks WHERE job_id=?", (job_id,))

    @_guarded
    def job_counts(self, endpoint_id: str) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT status, COUNT(*) AS n FROM jobs WHERE endpoint_id=? GROUP BY status", (endpoint_id,)
        )
        return {r["status"]: int(r["n"]) for r in rows}

    @_guarded
    def queue_summary(self, endpoint_id: str) -> tuple[int, float | None]:
        """(queued jobs that trigger scaling, submit time of the oldest): low-priority jobs do not."""
        row = self.db.execute(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM jobs"
            " WHERE endpoint_id=? AND status='IN_QUEUE' AND low_priority=0",
            (endpoint_id,),
        ).fetchone()
        return int(row["n"]), row["oldest"]

    @_guarded
    def retried_count(self, endpoint_id: str) -> int:
        row = self.db.execute(
            "SELECT COALESCE(SUM(retries), 0) AS n FROM jobs WHERE endpoint_id=?", (endpoint_id,)
        ).fetchone()
        return int(row["n"])

    @_guarded
    def add_chunk(self, job_id: str, output: Any) -> None:
        self.db.execute(
            "INSERT INTO stream_chunks (job_id, seq, output) VALUES "
            "(?, (SELECT COALESCE(MAX(seq), -1) + 1 FROM stream_chunks WHERE job_id=?), ?)",
            (job_id, job_id, _json(output)),
        )

    @_guarded
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

    # -- workers ---------------------------------------------------------------------------

    @_guarded
    def add_worker(self, worker_id: str, endpoint_id: str, version: int, image: str, started_at: str) -> None:
        self.db.execute(
            "INSERT INTO workers (id, endpoint_id, version, image, started_at) VALUES (?,?,?,?,?)",
            (worker_id, endpoint_id, version, image, started_at),
        )

    @_guarded
    def set_worker_container(self, worker_id: str, container_id: str) -> None:
        self.db.execute("UPDATE workers SET container_id=? WHERE id=?", (container_id, worker_id))

    @_guarded
    def end_worker(self, worker_id: str, ended_at: str, reason: str, exit_code: int | None = None) -> None:
        self.db.execute(
            "UPDATE workers SET ended_at=?, reason=?, exit_code=? WHERE id=?",
            (ended_at, reason, exit_code, worker_id),
        )

    @_guarded
    def end_open_workers(self, ended_at: str, reason: str) -> int:
        """Close the records of workers a previous run left without an end; how many there were."""
        return self.db.execute(
            "UPDATE workers SET ended_at=?, reason=? WHERE ended_at IS NULL", (ended_at, reason)
        ).rowcount

    # -- plumbing --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        if self.db.in_transaction:  # nested: the outer transaction commits
            yield
            return
        self.db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")


def _create_private(path: Path) -> None:
    """Create the database file 0600 before SQLite does (SQLite gives its WAL the same mode)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _make_private(path: Path) -> None:
    """Tighten files an older run left readable by others."""
    for suffix in STATE_SUFFIXES:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(f"{path}{suffix}", 0o600)


def _named_row(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> dict[str, Any]:
    """A row as a dict keyed by column name, exactly as the query names it (`sqlite3.Row`
    matches a name in any case, so a misspelt column could go unnoticed)."""
    return {column[0]: values[index] for index, column in enumerate(cursor.description)}


def _secret(row: dict[str, Any]) -> dict[str, Any]:
    """REST v2 `Secret`: metadata only; the value column is never selected."""
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "createdAt": row["created_at"],
        "valueLastUpdatedAt": row["value_updated_at"],
    }


def _volume(row: dict[str, Any]) -> dict[str, Any]:
    """REST v2 `NetworkVolume`."""
    return {
        "id": row["id"],
        "name": row["name"],
        "size": int(row["size"]),
        "dataCenter": row["data_center"],
        "type": row["type"],
    }


def _job(row: dict[str, Any]) -> Job:
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
