"""The job API without workers (workers.max = 0): queueing, cancel, purge, TTL and every bad input.

Each bad input must give its documented status code, never a 500 or a hung request
(every call here has a client timeout).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.emulator.helpers import Api


@pytest.fixture(scope="module")
def endpoint_id(api: Api) -> str:
    return str(api.create_endpoint(name="no-workers")["id"])


def test_run_status_cancel_and_health(api: Api, endpoint_id: str) -> None:
    run = api.job("POST", f"/{endpoint_id}/run", {"input": {"x": 1}})
    assert run.status_code == 200
    job = run.json()
    assert job["status"] == "IN_QUEUE"
    assert api.job("GET", f"/{endpoint_id}/status/{job['id']}").json() == {
        "id": job["id"],
        "status": "IN_QUEUE",
    }
    health = api.job("GET", f"/{endpoint_id}/health").json()
    assert health["jobs"]["inQueue"] >= 1
    assert set(health["workers"]) >= {"idle", "running"}
    stream = api.job("GET", f"/{endpoint_id}/stream/{job['id']}").json()
    assert stream == {"status": "IN_QUEUE", "stream": []}

    cancelled = api.job("POST", f"/{endpoint_id}/cancel/{job['id']}")
    assert cancelled.json() == {"id": job["id"], "status": "CANCELLED"}
    assert api.job("GET", f"/{endpoint_id}/status/{job['id']}").json()["status"] == "CANCELLED"
    again = api.job("POST", f"/{endpoint_id}/cancel/{job['id']}")
    assert again.status_code == 200
    assert again.json()["status"] == "CANCELLED"
    retry = api.job("POST", f"/{endpoint_id}/retry/{job['id']}")
    assert retry.status_code == 400
    assert "only FAILED or TIMED_OUT" in retry.json()["error"]


def test_raw_and_bearer_keys_are_accepted_others_refused(api: Api, endpoint_id: str) -> None:
    body = {"input": {}}
    for header in (api.key, f"Bearer {api.key}"):
        response = httpx.post(
            f"{api.base}/v2/{endpoint_id}/run", json=body, headers={"Authorization": header}
        )
        assert response.status_code == 200
    for headers in ({}, {"Authorization": "wrong"}, {"Authorization": "Bearer wrong"}):
        response = httpx.post(f"{api.base}/v2/{endpoint_id}/run", json=body, headers=headers)
        assert response.status_code == 401
        assert "error" in response.json()
    api.job("POST", f"/{endpoint_id}/purge-queue")


def test_runsync_returns_the_id_when_the_wait_ends(api: Api, endpoint_id: str) -> None:
    response = api.job("POST", f"/{endpoint_id}/runsync?wait=1000", {"input": {"x": 1}})
    assert response.status_code == 200
    view = response.json()
    assert view["status"] == "IN_QUEUE"
    assert view["id"].startswith("sync-")
    api.job("POST", f"/{endpoint_id}/cancel/{view['id']}")


def test_purge_queue_cancels_queued_jobs(api: Api) -> None:
    endpoint_id = api.create_endpoint(name="purge")["id"]  # its own queue: no other test's jobs in it
    ids = [api.job("POST", f"/{endpoint_id}/run", {"input": {"n": n}}).json()["id"] for n in range(3)]
    purged = api.job("POST", f"/{endpoint_id}/purge-queue")
    assert purged.json() == {"removed": 3, "status": "completed"}
    for job_id in ids:
        assert api.job("GET", f"/{endpoint_id}/status/{job_id}").json()["status"] == "CANCELLED"
    assert api.job("GET", f"/{endpoint_id}/health").json()["jobs"]["inQueue"] == 0


def test_concurrent_cancels_of_one_job_all_answer_cancelled(api: Api, endpoint_id: str) -> None:
    job_id = api.job("POST", f"/{endpoint_id}/run", {"input": {}}).json()["id"]

    def cancel(_: int) -> httpx.Response:
        return httpx.post(
            f"{api.base}/v2/{endpoint_id}/cancel/{job_id}", headers={"Authorization": api.key}, timeout=10
        )

    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(cancel, range(32)))
    assert {r.status_code for r in responses} == {200}
    assert {r.json()["status"] for r in responses} == {"CANCELLED"}


@pytest.mark.parametrize(
    ("path", "body", "status", "fragment"),
    [
        ("/run", b'{"input": ', 400, "not valid JSON"),
        ("/run", b"", 400, "empty"),
        ("/run", b"[1]", 400, "JSON object"),
        ("/run", b'{"inputs": {}}', 400, "no 'input'"),
        ("/run", b'{"input": {}, "policy": {"ttl": 5}}', 400, "policy.ttl"),
        ("/run", b'{"input": {}, "policy": {"ttl": 700000000}}', 400, "policy.ttl"),
        ("/run", b'{"input": {}, "policy": {"executionTimeout": "10s"}}', 400, "policy.executionTimeout"),
        ("/run", b'{"input": {}, "policy": {"executionTimeout": 1000}}', 400, "policy.executionTimeout"),
        ("/run", b'{"input": {}, "policy": {"lowPriority": "yes"}}', 400, "lowPriority"),
        ("/run", b'{"input": {}, "policy": {"priority": 1}}', 400, "unknown field"),
        ("/run", b'{"input": {}, "policy": []}', 400, "policy must be an object"),
        ("/run", b'{"input": {}, "webhook": "ftp://x"}', 400, "webhook"),
        ("/runsync?wait=5", b'{"input": {}}', 400, "wait"),
        ("/runsync?wait=abc", b'{"input": {}}', 400, "wait"),
        ("/status/nope", None, 404, "job nope"),
        ("/cancel/nope", b"", 404, "job nope"),
        ("/retry/nope", b"", 404, "job nope"),
        ("/stream/nope", None, 404, "job nope"),
    ],
)
def test_bad_input_gets_a_documented_status(
    api: Api, endpoint_id: str, path: str, body: bytes | None, status: int, fragment: str
) -> None:
    method = "GET" if body is None else "POST"
    response = httpx.request(
        method,
        f"{api.base}/v2/{endpoint_id}{path}",
        content=body,
        headers={"Authorization": api.key, "Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"]


def test_unknown_endpoint_is_404_on_every_route(api: Api) -> None:
    for method, path in [
        ("POST", "/run"),
        ("POST", "/runsync"),
        ("GET", "/health"),
        ("POST", "/purge-queue"),
    ]:
        response = api.job(method, f"/nope{path}", {"input": {}} if method == "POST" else None, timeout=10)
        assert response.status_code == 404
        assert "endpoint nope not found" in response.json()["error"]


def test_payload_limits_are_400_not_a_crash(api: Api, endpoint_id: str) -> None:
    padding = "x" * (10 * 1024 * 1024)
    too_big = api.job("POST", f"/{endpoint_id}/run", {"input": {"pad": padding}}, timeout=30)
    assert too_big.status_code == 400
    assert "10 MB" in too_big.json()["error"]
    # /runsync takes up to 20 MB: the same body is accepted there.
    accepted = api.job("POST", f"/{endpoint_id}/runsync?wait=1000", {"input": {"pad": padding}}, timeout=30)
    assert accepted.status_code == 200
    api.job("POST", f"/{endpoint_id}/cancel/{accepted.json()['id']}")
    huge = api.job("POST", f"/{endpoint_id}/runsync", {"input": {"pad": padding * 2}}, timeout=30)
    assert huge.status_code == 400
    assert "20 MB" in huge.json()["error"]


def test_ttl_expiry_removes_the_job(api: Api, endpoint_id: str) -> None:
    job_id = api.job("POST", f"/{endpoint_id}/run", {"input": {}, "policy": {"ttl": 10_000}}).json()["id"]
    assert api.job("GET", f"/{endpoint_id}/status/{job_id}").status_code == 200
    deadline = time.monotonic() + 20
    while api.job("GET", f"/{endpoint_id}/status/{job_id}").status_code == 200:
        assert time.monotonic() < deadline, "the TTL never expired"
        time.sleep(0.25)
    assert api.job("GET", f"/{endpoint_id}/status/{job_id}").status_code == 404


def test_a_deleted_endpoints_jobs_answer_404(api: Api) -> None:
    doomed = api.create_endpoint(name="doomed")["id"]
    job_id = api.job("POST", f"/{doomed}/run", {"input": {}}).json()["id"]
    assert api.rest("DELETE", f"/v2/serverless/{doomed}").status_code == 204
    assert api.job("GET", f"/{doomed}/status/{job_id}").status_code == 404
