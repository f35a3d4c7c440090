"""The emulator's state store outside jobs: endpoints, releases, templates, secrets, registry
credentials, network volumes and the worker history. Mutation testing (`make mutation`,
docs/quality.md) found these methods called only by the HTTP tests, in another process.

The real Store over a real SQLite file in a temporary directory; the worker history has no
read method (only `rpdeploy emulator` tooling and people read it), so it is read with SQL here.
"""

from __future__ import annotations

import sqlite3
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from deploy.emulator.store import UNCHANGED, Job, Store, StoreError, UnservableValue, _create_private

AT = "2026-11-29T12:00:00Z"
LATER = "2026-11-29T13:00:00Z"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "state" / "emulator.db")


def endpoint(endpoint_id: str, created_at: str = AT, **fields: Any) -> dict[str, Any]:
    return {"id": endpoint_id, "createdAt": created_at, "name": endpoint_id, **fields}


def test_endpoints_are_listed_by_creation_and_keep_their_template(store: Store) -> None:
    store.put_endpoint(endpoint("b"), 1, "tpl-1")
    store.put_endpoint(endpoint("a", LATER), 1, None)
    store.put_endpoint(endpoint("c"), 1, "tpl-1")
    store.put_endpoint(endpoint("b", name="renamed"), 2, "tpl-2")  # an update keeps the template
    assert [(doc["id"], version) for doc, version in store.endpoints()] == [("b", 2), ("c", 1), ("a", 1)]
    assert store.endpoint("b") == (endpoint("b", name="renamed"), 2)
    assert store.endpoint("nope") is None
    assert store.endpoint_template("b") == "tpl-1"
    assert store.endpoint_template("a") is None
    assert store.endpoint_template("nope") is None
    assert sorted(store.endpoints_bound_to("tpl-1")) == ["b", "c"]
    assert store.endpoints_bound_to("tpl-2") == []


def test_releases_are_newest_first_and_go_with_their_endpoint(store: Store) -> None:
    store.put_endpoint(endpoint("e"), 2, None)
    for version in (1, 2):
        store.add_release(
            release_id=f"r{version}",
            endpoint_id="e",
            version=version,
            created_at=f"2026-11-29T0{version}:00:00Z",
            diff=[{"path": "workers.max", "from": version, "to": version + 1}],
            snapshot={"version": version},
        )
    assert store.releases("e") == [
        {
            "id": "r2",
            "version": 2,
            "createdAt": "2026-11-29T02:00:00Z",
            "diff": [{"path": "workers.max", "from": 2, "to": 3}],
        },
        {
            "id": "r1",
            "version": 1,
            "createdAt": "2026-11-29T01:00:00Z",
            "diff": [{"path": "workers.max", "from": 1, "to": 2}],
        },
    ]
    assert store.releases("other") == []
    with pytest.raises(sqlite3.IntegrityError):  # a constraint is the caller's to answer, not a 503
        store.add_release(release_id="r1", endpoint_id="e", version=3, created_at=AT, diff=[], snapshot={})
    store.delete_endpoint("e")
    assert store.releases("e") == []


def test_templates_are_put_listed_in_order_and_deleted(store: Store) -> None:
    store.put_template({"id": "t2", "name": "two"})
    store.put_template({"id": "t1", "name": "one"})
    store.put_template({"id": "t2", "name": "two again"})
    assert store.templates() == [{"id": "t2", "name": "two again"}, {"id": "t1", "name": "one"}]
    assert store.template("t1") == {"id": "t1", "name": "one"}
    assert store.template("nope") is None
    store.delete_template("t2")
    assert store.templates() == [{"id": "t1", "name": "one"}]


def test_secrets_keep_their_value_out_of_every_read(store: Store) -> None:
    assert store.add_secret("s1", "Token", "hunter2", "the token", AT) is True
    assert store.add_secret("s2", "TOKEN", "other", None, AT) is False  # names ignore ASCII case
    assert store.add_secret("s3", "Other", "v3", None, LATER) is True
    first = {
        "id": "s1",
        "name": "Token",
        "description": "the token",
        "createdAt": AT,
        "valueLastUpdatedAt": AT,
    }
    assert store.secret("s1") == first
    assert store.secret("s2") is None
    assert store.secret_by_name("token") == first
    assert store.secret_by_name("missing") is None
    assert [s["id"] for s in store.secrets()] == ["s1", "s3"]
    assert store.secret_values() == {"Token": "hunter2", "Other": "v3"}


def test_updating_a_secret_stamps_only_a_new_value(store: Store) -> None:
    store.add_secret("s1", "Token", "hunter2", "the token", AT)
    store.update_secret("s1", value=None, description="renamed", at=LATER)
    assert store.secret("s1") == {
        "id": "s1",
        "name": "Token",
        "description": "renamed",
        "createdAt": AT,
        "valueLastUpdatedAt": AT,
    }
    store.update_secret("s1", value="new", description=UNCHANGED, at=LATER)
    assert (store.secret("s1") or {})["description"] == "renamed"
    assert (store.secret("s1") or {})["valueLastUpdatedAt"] == LATER
    assert store.secret_values() == {"Token": "new"}
    store.update_secret("s1", value=None, description=None, at=AT)  # None clears the description
    assert (store.secret("s1") or {})["description"] is None
    assert (store.secret("s1") or {})["valueLastUpdatedAt"] == LATER
    with pytest.raises(UnservableValue):
        store.update_secret("s1", value="\ud800", description=UNCHANGED, at=AT)
    with pytest.raises(UnservableValue):
        store.update_secret("s1", value=None, description="\ud800", at=AT)
    assert store.secret_values() == {"Token": "new"}


def test_deleting_a_secret_says_whether_there_was_one(store: Store) -> None:
    store.add_secret("s1", "Token", "v", None, AT)
    assert store.delete_secret("s1") is True
    assert store.delete_secret("s1") is False
    assert store.secrets() == []


@pytest.mark.parametrize("field", ["name", "value", "description"])
def test_a_secret_that_cannot_be_served_is_never_stored(store: Store, field: str) -> None:
    texts = {"name": "N", "value": "v", "description": "d", field: "\ud800"}
    with pytest.raises(UnservableValue):
        store.add_secret("s1", texts["name"], texts["value"], texts["description"], AT)
    assert store.secrets() == []


def test_registry_credentials_are_write_only_and_their_deletion_clears_references(store: Store) -> None:
    store.add_registry("r2", "second", "bob", "pw2", LATER)
    store.add_registry("r1", "first", "alice", "pw1", AT)
    assert store.registries() == [{"id": "r1", "name": "first"}, {"id": "r2", "name": "second"}]
    assert store.registry("r1") == {"id": "r1", "name": "first"}
    assert store.registry("nope") is None
    assert store.registry_auth("r2") == {"username": "bob", "password": "pw2"}
    assert store.registry_auth("nope") is None
    store.put_endpoint(endpoint("uses", registry="r1"), 1, None)
    store.put_endpoint(endpoint("other", registry="r2"), 1, None)
    store.put_template({"id": "t1", "registry": "r1"})
    store.put_template({"id": "t2", "registry": "r2"})
    assert store.delete_registry("r1") == ["uses"]
    assert store.registries() == [{"id": "r2", "name": "second"}]
    assert (store.endpoint("uses") or ({}, 0))[0]["registry"] is None
    assert (store.endpoint("other") or ({}, 0))[0]["registry"] == "r2"
    assert store.template("t1") == {"id": "t1", "registry": None}
    assert store.template("t2") == {"id": "t2", "registry": "r2"}


@pytest.mark.parametrize("index", [0, 1, 2])
def test_a_registry_credential_that_cannot_be_served_is_never_stored(store: Store, index: int) -> None:
    texts = ["n", "u", "p"]
    texts[index] = "\ud800"
    with pytest.raises(UnservableValue):
        store.add_registry("r1", *texts, AT)
    assert store.registries() == []


def test_network_volumes_are_put_updated_listed_and_deleted(store: Store) -> None:
    volume = {"id": "v2", "name": "data", "size": 20, "dataCenter": "EU-RO-1", "type": "NETWORK"}
    store.put_volume(volume, LATER)
    store.put_volume({**volume, "id": "v1", "name": "first"}, AT)
    store.put_volume({**volume, "name": "grown", "size": 40, "dataCenter": "US-TX-3"}, AT)
    grown = {"id": "v2", "name": "grown", "size": 40, "dataCenter": "EU-RO-1", "type": "NETWORK"}
    assert store.volume("v2") == grown  # a volume's data center never changes
    assert store.volume("nope") is None
    assert [v["id"] for v in store.volumes()] == ["v1", "v2"]
    with pytest.raises(UnservableValue):
        store.put_volume({**volume, "id": "v3", "name": "\ud800"}, AT)
    store.delete_volume("v1")
    assert store.volumes() == [grown]


def workers(store: Store) -> list[tuple[Any, ...]]:
    rows = store.db.execute(
        "SELECT id, endpoint_id, version, image, container_id, started_at, ended_at, exit_code, reason"
        " FROM workers ORDER BY id"
    )
    return [tuple(row.values()) for row in rows]


def test_the_worker_history_records_each_worker_and_closes_what_a_crash_left_open(store: Store) -> None:
    store.add_worker("w1", "e", 3, "img:1", AT)
    store.add_worker("w2", "e", 3, "img:1", AT)
    store.add_worker("w3", "f", 1, "img:2", AT)
    store.set_worker_container("w1", "c1")
    store.end_worker("w1", LATER, "scaled down", 0)
    store.end_worker("w2", LATER, "killed")
    assert store.end_open_workers(LATER, "emulator restarted") == 1
    assert store.end_open_workers(LATER, "again") == 0
    assert workers(store) == [
        ("w1", "e", 3, "img:1", "c1", AT, LATER, 0, "scaled down"),
        ("w2", "e", 3, "img:1", None, AT, LATER, None, "killed"),
        ("w3", "f", 1, "img:2", None, AT, LATER, None, "emulator restarted"),
    ]


def test_a_failing_database_is_a_store_error_with_sqlites_reason(store: Store) -> None:
    store.close()
    with pytest.raises(
        StoreError, match=r"^emulator state store failed: Cannot operate on a closed database"
    ):
        store.templates()


def test_a_failed_transaction_leaves_nothing_behind(store: Store) -> None:
    store.put_endpoint(endpoint("e", registry="r1"), 1, None)
    store.add_registry("r1", "reg", "u", "p", AT)
    store.db.execute("CREATE TRIGGER refuse BEFORE DELETE ON registries BEGIN SELECT RAISE(ABORT, 'no'); END")
    with pytest.raises(sqlite3.IntegrityError):
        store.delete_registry("r1")
    assert not store.db.in_transaction
    assert (store.endpoint("e") or ({}, 0))[0]["registry"] == "r1"


def test_a_job_reads_back_as_it_was_written(store: Store) -> None:
    job = Job(
        id="sync-j1", endpoint_id="ep", status="IN_QUEUE", input={"a": [1, "x"]},
        options={"policy": {"ttl": 20_000}, "retention_s": 60}, sync=True, low_priority=True,
        created_at=100.5, ttl_deadline=120.5, webhook="http://h/",
    )  # fmt: skip
    store.insert_job(job)
    assert store.job("sync-j1") == job
    job.status, job.output, job.error, job.worker_id = "FAILED", {"partial": 1}, {"msg": "e"}, "w1"
    job.started_at, job.completed_at, job.exec_deadline, job.retain_until = 101.0, 102.0, None, 162.0
    store.save_job(job)
    assert store.job("sync-j1") == job
    plain = Job(id="j2", endpoint_id="ep", status="IN_QUEUE", input=None, options={}, sync=False,
                low_priority=False, created_at=1.0, ttl_deadline=2.0)  # fmt: skip
    store.insert_job(plain)
    assert store.job("j2") == plain  # no output (apart from a null one), no error, no webhook


def test_a_value_that_is_not_json_is_refused_with_why(store: Store) -> None:
    with pytest.raises(UnservableValue) as caught:
        store.insert_job(
            Job(id="j", endpoint_id="ep", status="IN_QUEUE", input=float("nan"), options={},
                sync=False, low_priority=False, created_at=1.0, ttl_deadline=2.0)
        )  # fmt: skip
    assert str(caught.value).startswith("value cannot be stored as JSON: Out of range float values")


def test_the_state_folder_is_made_as_deep_as_needed_and_any_thread_may_use_it(tmp_path: Path) -> None:
    deep = Store(tmp_path / "a" / "b" / "emulator.db")  # the server opens it before its loop runs
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(deep.job, "none").result() is None
    deep.close()


def test_the_state_file_is_created_private(tmp_path: Path) -> None:
    path = tmp_path / "emulator.db"
    _create_private(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    _create_private(path)  # already there: left as it is


def test_a_state_that_cannot_be_opened_is_one_error_naming_it(tmp_path: Path) -> None:
    folder = tmp_path / "state.db"
    folder.mkdir()  # a folder where the database file should be
    with pytest.raises(StoreError) as caught:
        Store(folder)
    assert str(caught.value) == f"cannot open the emulator state {folder}: unable to open database file"
