"""The emulator's SQLite store: private files, a versioned schema, clean failures, nothing unservable."""

from __future__ import annotations

import math
import sqlite3
import stat
from pathlib import Path

import pytest

from deploy.emulator import store as store_module
from deploy.emulator.jobs import JobService
from deploy.emulator.store import SCHEMA_VERSION, Store, StoreError, UnservableValue


def _service(store: Store) -> JobService:
    return JobService(store, lambda _endpoint: 300_000, webhook_retry_interval_s=10.0)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_and_its_wal_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "emulator.sqlite3"
    store = Store(path)
    _service(store).submit("ep", {"input": {"secret": "x"}}, sync=False)
    files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
    assert all(f.exists() for f in files)
    assert [oct(_mode(f)) for f in files] == ["0o600"] * 3
    assert _mode(path.parent) == 0o700
    store.close()


def test_files_an_older_run_left_readable_are_tightened(tmp_path: Path) -> None:
    path = tmp_path / "emulator.sqlite3"
    Store(path).close()
    path.chmod(0o644)
    Store(path).close()
    assert _mode(path) == 0o600


def test_schema_version_is_recorded_and_an_unversioned_database_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "emulator.sqlite3"
    legacy = sqlite3.connect(path)
    legacy.executescript(store_module.SCHEMA_V1)  # a database from before versions: user_version 0
    legacy.execute("INSERT INTO secrets (id, name, value, description) VALUES ('s1', 'hf', 'v', NULL)")
    legacy.commit()
    legacy.close()
    store = Store(path)
    assert store.schema_version == SCHEMA_VERSION >= 1
    assert store.secret_values() == {"hf": "v"}
    store.close()


def test_a_database_from_a_newer_rpdeploy_is_refused_not_damaged(tmp_path: Path) -> None:
    path = tmp_path / "emulator.sqlite3"
    newer = sqlite3.connect(path)
    newer.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    newer.close()
    with pytest.raises(StoreError, match="newer rpdeploy"):
        Store(path)
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    check.close()


def test_a_full_disk_is_a_store_error_with_sqlites_reason(tmp_path: Path) -> None:
    store = Store(tmp_path / "emulator.sqlite3")
    service = _service(store)
    service.submit("ep", {"input": 1}, sync=False)
    pages = store.db.execute("PRAGMA page_count").fetchone()["page_count"]
    store.db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own SQLITE_FULL, as on a full disk
    with pytest.raises(StoreError, match="database or disk is full"):
        service.submit("ep", {"input": "x" * 100_000}, sync=False)
    store.close()


@pytest.mark.parametrize("value", [math.nan, math.inf, "\ud800", {"\udc00": 1}])
def test_a_value_that_cannot_be_served_is_never_stored(tmp_path: Path, value: object) -> None:
    store = Store(tmp_path / "emulator.sqlite3")
    service = _service(store)
    with pytest.raises(UnservableValue):
        service.submit("ep", {"input": value}, sync=False)
    with pytest.raises(UnservableValue):
        store.put_endpoint({"id": "e1", "name": value, "createdAt": "2026-01-01T00:00:00Z"}, 1, None)
    assert store.endpoints() == []
    assert store.job_counts("ep") == {}
    store.close()


def test_deleting_an_endpoint_removes_its_jobs_and_their_stream_chunks(tmp_path: Path) -> None:
    store = Store(tmp_path / "emulator.sqlite3")
    service = _service(store)
    store.put_endpoint({"id": "gone", "name": "g", "createdAt": "2026-01-01T00:00:00Z"}, 1, None)
    doomed = [service.submit("gone", {"input": n}, sync=False) for n in range(3)]
    kept = service.submit("stays", {"input": 0}, sync=False)
    store.add_chunk(doomed[0].id, {"chunk": 1})
    service.cancel(doomed[1])
    store.delete_endpoint("gone")
    assert store.job_counts("gone") == {}
    assert all(store.job(job.id) is None for job in doomed)
    assert store.drain_chunks(doomed[0].id) == []
    assert store.job(kept.id) is not None
    store.close()
