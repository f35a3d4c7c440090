"""Emulator job/store behaviour that mutation testing (`make mutation`, docs/quality.md) showed
no test pinned. The real queue and SQLite store, driven through their own clock arguments."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from deploy.emulator.job_requests import (
    RUN_RETENTION_S,
    RUNSYNC_MAX_RETENTION_S,
    RUNSYNC_RETENTION_S,
    job_view,
    ms,
    new_job_id,
    retention_s,
)
from deploy.emulator.jobs import JobService
from deploy.emulator.store import Job, Store


def _service(tmp_path: Path) -> tuple[Store, JobService]:
    store = Store(tmp_path / "emulator.sqlite3")
    return store, JobService(store, lambda _endpoint: 300_000, webhook_retry_interval_s=10.0)


def _take(service: JobService, count: int = 1) -> list[Job]:
    async def work() -> list[Job]:
        return await service.take("ep", "w1", count, 1.0, lambda: True)

    return asyncio.run(work())


def test_retention_figures() -> None:
    assert (RUN_RETENTION_S, RUNSYNC_RETENTION_S, RUNSYNC_MAX_RETENTION_S) == (1800, 60, 300)
    assert retention_s(False, None) == 1800
    assert retention_s(False, 120_000) == 1800
    assert retention_s(True, None) == 60
    assert retention_s(True, 1_000) == 60
    assert retention_s(True, 120_000) == 120
    assert retention_s(True, 3_600_000) == 300


def test_ids_and_milliseconds() -> None:
    assert new_job_id(True).startswith("sync-")
    assert not new_job_id(False).startswith("sync-")
    assert len(new_job_id(False)) == 36
    assert ms(1.5) == 1500
    assert ms(0.0004) == 0
    assert ms(0.0006) == 1
    assert ms(2) == 2000


def test_job_view_reports_times_in_milliseconds() -> None:
    job = Job(
        id="j", endpoint_id="ep", status="COMPLETED", input={}, options={}, sync=False,
        low_priority=False, created_at=100.0, ttl_deadline=1e9, output={"x": 1},
        worker_id="w", started_at=101.5, completed_at=104.0,
    )  # fmt: skip
    assert job_view(job) == {
        "delayTime": 1500,
        "executionTime": 2500,
        "id": "j",
        "output": {"x": 1},
        "status": "COMPLETED",
        "workerId": "w",
    }


def test_job_view_of_a_queued_job_has_no_times() -> None:
    job = Job(
        id="j", endpoint_id="ep", status="IN_QUEUE", input={}, options={}, sync=False,
        low_priority=False, created_at=100.0, ttl_deadline=1e9,
    )  # fmt: skip
    assert job_view(job) == {"id": "j", "status": "IN_QUEUE"}


def test_submit_records_policy_ttl_and_retention(tmp_path: Path) -> None:
    store, service = _service(tmp_path)
    job = service.submit("ep", {"input": {"a": 1}, "policy": {"ttl": 60_000, "lowPriority": True}}, sync=True)
    stored = store.job(job.id)
    assert stored is not None
    assert stored.ttl_deadline - stored.created_at == pytest.approx(60.0)
    assert stored.low_priority is True
    assert stored.options["retention_s"] == 60
    assert stored.status == "IN_QUEUE"
    default = service.submit("ep", {"input": {}}, sync=False)
    assert default.ttl_deadline - default.created_at == pytest.approx(86_400.0)
    assert default.low_priority is False


def test_keep_result_moves_retention_of_finished_jobs_only(tmp_path: Path) -> None:
    store, service = _service(tmp_path)
    job = service.submit("ep", {"input": {}}, sync=False)
    service.keep_result(job, 5_000)
    assert store.job(job.id).retain_until is None  # type: ignore[union-attr]
    (taken,) = _take(service)
    service.complete(taken, {"output": 1})
    finished = store.job(job.id)
    assert finished is not None
    before = time.time()
    service.keep_result(finished, 600_000)
    after = time.time()
    kept = store.job(job.id)
    assert kept is not None
    assert kept.retain_until is not None
    # ttl is in ms, counted from the call (bracketed by the clock read around it)
    assert before + 600.0 <= kept.retain_until <= after + 600.0
    service.keep_result(finished, 5_000)
    shorter = store.job(job.id)
    assert shorter is not None
    assert shorter.retain_until is not None
    assert shorter.retain_until < kept.completed_at + RUN_RETENTION_S  # type: ignore[operator]


def test_expired() -> None:
    job = Job(
        id="j", endpoint_id="ep", status="IN_QUEUE", input={}, options={}, sync=False,
        low_priority=False, created_at=0.0, ttl_deadline=10.0,
    )  # fmt: skip
    assert not JobService.expired(job, 9.9)
    assert JobService.expired(job, 10.0)
    job.status = "COMPLETED"
    assert not JobService.expired(job, 1e12)
    job.retain_until = 20.0
    assert not JobService.expired(job, 19.0)
    assert JobService.expired(job, 20.0)


def test_deleting_an_endpoint_removes_its_jobs(tmp_path: Path) -> None:
    store, service = _service(tmp_path)
    queued = service.submit("ep", {"input": {}}, sync=False)
    other = service.submit("other", {"input": {}}, sync=False)
    service.forget_endpoint("ep")
    assert store.job(queued.id) is None
    assert store.job(other.id) is not None
    assert service.counts("ep") == {"completed": 0, "failed": 0, "inProgress": 0, "inQueue": 0, "retried": 0}
