"""Bad input on every route of a running emulator: a 4xx at the door, never a 500, a stored
half-value or a stranded job. The samples stand for kinds (see test_emulator_parsing.py)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from deploy.emulator import build_app
from deploy.emulator.settings import EmulatorSettings
from tests.emulator.helpers import API_KEY, Api, EmulatorProcess

SAMPLES = {
    "NaN": b'{"input": NaN}',
    "overflow": b'{"input": 1e999}',
    "surrogate": b'{"input": "\\ud800"}',
    "deep": b'{"input": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    "digits": b'{"input": ' + b"1" * 4400 + b"}",
}
JOB_ROUTES = [
    "/run",
    "/runsync?wait=1000",
    "/status/{job}",
    "/stream/{job}",
    "/cancel/{job}",
    "/retry/{job}",
    "/purge-queue",
]


@pytest.fixture(scope="module")
def endpoint_id(api: Api) -> str:
    return str(api.create_endpoint(name="bad-input")["id"])


@pytest.fixture(scope="module")
def job_id(api: Api, endpoint_id: str) -> str:
    return api.submit(endpoint_id, {"kept": True})


def _post(api: Api, path: str, body: bytes, bearer: bool = False) -> httpx.Response:
    key = f"Bearer {api.key}" if bearer else api.key
    return httpx.post(
        api.base + path,
        content=body,
        headers={"Authorization": key, "Content-Type": "application/json"},
        timeout=30,
    )


@pytest.mark.parametrize("route", JOB_ROUTES)
@pytest.mark.parametrize("sample", SAMPLES.values(), ids=SAMPLES.keys())
def test_every_job_route_refuses_undeliverable_json(
    api: Api, endpoint_id: str, job_id: str, route: str, sample: bytes
) -> None:
    before = api.job("GET", f"/{endpoint_id}/health").json()["jobs"]
    response = _post(api, f"/v2/{endpoint_id}{route.format(job=job_id)}", sample)
    assert response.status_code == 400, response.text
    assert "not valid JSON" in response.json()["error"]
    assert api.job("GET", f"/{endpoint_id}/health").json()["jobs"] == before
    assert api.job("GET", f"/{endpoint_id}/status/{job_id}").json()["status"] == "IN_QUEUE"


@pytest.mark.parametrize(
    "query",
    [
        "/runsync?wait=%C2%B2",
        "/runsync?wait=1e4",
        "/runsync?wait=-5000",
        "/status/{job}?ttl=%C2%B2",
        "/status/{job}?ttl=-1",
        "/status/{job}?ttl=" + "9" * 4400,
        "/status/{job}?ttl=5",
    ],
)
def test_numeric_query_parameters_are_ascii_integers_in_range(
    api: Api, endpoint_id: str, job_id: str, query: str
) -> None:
    before = api.job("GET", f"/{endpoint_id}/health").json()["jobs"]
    response = _post(api, f"/v2/{endpoint_id}{query.format(job=job_id)}", b'{"input": {}}')
    assert response.status_code == 400, response.text
    assert "must be an integer between" in response.json()["error"]
    assert api.job("GET", f"/{endpoint_id}/health").json()["jobs"] == before


@pytest.mark.parametrize("sample", SAMPLES.values(), ids=SAMPLES.keys())
@pytest.mark.parametrize(
    "route", ["POST /v2/serverless", "PATCH /v2/serverless/{ep}", "POST /v2/templates", "POST /graphql"]
)
def test_control_plane_and_graphql_refuse_undeliverable_json(
    api: Api, endpoint_id: str, route: str, sample: bytes
) -> None:
    method, path = route.split(" ")
    response = httpx.request(
        method,
        api.base + path.format(ep=endpoint_id),
        content=sample.replace(b'"input"', b'"name"'),
        headers={"Authorization": f"Bearer {api.key}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert "not valid JSON" in response.text


def test_a_name_that_cannot_be_served_is_never_stored(api: Api) -> None:
    body = (
        b'{"name": "zq\\ud800zq", "type": "QUEUE", "image": "x:1", "gpu": {"pools": ["ADA_24"]},'
        b' "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4}, "workers": {"min": 0, "max": 0}}'
    )
    response = _post(api, "/v2/serverless", body, bearer=True)
    assert response.status_code == 400
    listed = api.rest("GET", "/v2/serverless")
    assert listed.status_code == 200
    assert all("zq" not in endpoint["name"] for endpoint in listed.json()["endpoints"])


def test_odd_paths_get_404_not_500(api: Api) -> None:
    for path in ["/v2/%ED%A0%80/status/x", "/v2/ep/status/%00", "/v2/serverless/%ED%A0%80"]:
        response = httpx.get(api.base + path, headers={"Authorization": f"Bearer {api.key}"}, timeout=10)
        assert response.status_code == 404, (path, response.text)


def test_no_bad_input_reached_the_crash_handler(emulator: EmulatorProcess) -> None:
    assert "unhandled error" not in emulator.log()


def test_status_ttl_is_honoured(api: Api, endpoint_id: str) -> None:
    """A cancelled job is kept 30 min; `?ttl=10000` on a status call shortens that to 10 s."""
    job = api.submit(endpoint_id, {})
    api.job("POST", f"/{endpoint_id}/cancel/{job}")
    assert api.job("GET", f"/{endpoint_id}/status/{job}?ttl=10000").json()["status"] == "CANCELLED"
    api.wait_gone(endpoint_id, job, timeout=90)


def test_deleting_an_endpoint_removes_its_jobs(api: Api, emulator: EmulatorProcess) -> None:
    doomed = api.create_endpoint(name="doomed-jobs")["id"]
    ids = [api.submit(doomed, {"n": n}) for n in range(3)]
    api.job("POST", f"/{doomed}/cancel/{ids[0]}")
    assert api.rest("DELETE", f"/v2/serverless/{doomed}").status_code == 204
    database = sqlite3.connect(f"file:{emulator.state / 'emulator.sqlite3'}?mode=ro", uri=True)
    try:
        (left,) = database.execute("SELECT COUNT(*) FROM jobs WHERE endpoint_id = ?", (doomed,)).fetchone()
    finally:
        database.close()
    assert left == 0


@pytest.fixture
def full_disk_client(tmp_path: Path) -> Iterator[tuple[TestClient, sqlite3.Connection]]:
    """The real app in-process (no lifespan: no workers needed) over a store that cannot grow."""
    app, parts = build_app(EmulatorSettings(state_dir=tmp_path, api_key=API_KEY))
    yield TestClient(app, raise_server_exceptions=False), parts.store.db
    parts.store.close()


def test_a_full_state_disk_is_a_503_with_the_reason(
    full_disk_client: tuple[TestClient, sqlite3.Connection],
) -> None:
    client, db = full_disk_client
    pages = db.execute("PRAGMA page_count").fetchone()["page_count"]
    db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's SQLITE_FULL, as a full disk gives
    body = {
        "name": "full-disk",
        # Large enough to need new pages, within the platform's env limits (deploy.runpod.text).
        "env": {f"K{i}": "x" * 50_000 for i in range(4)},
        "type": "QUEUE",
        "image": "x:1",
        "gpu": {"pools": ["ADA_24"]},
        "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4},
        "workers": {"min": 0, "max": 0},
    }
    response = client.post("/v2/serverless", json=body, headers={"Authorization": f"Bearer {API_KEY}"})
    assert response.status_code == 503, response.text
    assert "database or disk is full" in response.json()["detail"]
    assert client.get("/v2/serverless", headers={"Authorization": f"Bearer {API_KEY}"}).json() == {
        "endpoints": []
    }
