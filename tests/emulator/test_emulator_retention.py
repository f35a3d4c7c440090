"""Result retention, TTL and timing fields, driven through the job queue's own clock (`sweep(now=...)`).

Waiting 30 real minutes is not a test; the sweeper takes the time to judge by, so the
real queue and SQLite store are exercised with a clock moved forward. Every time
here is relative to the job's own recorded times, never to the wall clock of the run.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from deploy.emulator.job_requests import job_view
from deploy.emulator.jobs import JobService
from deploy.emulator.store import Job, Store
from deploy.emulator.sweeper import sweep


def _service(tmp_path: Path) -> tuple[Store, JobService]:
    store = Store(tmp_path / "emulator.sqlite3")
    return store, JobService(store, lambda _endpoint: 300_000, webhook_retry_interval_s=10.0)


def _finish(service: JobService, count: int) -> list[Job]:
    async def work() -> list[Job]:
        taken = await service.take("ep", "w1", count, 1.0, lambda: True)
        for job in taken:
            service.complete(job, {"output": {"ok": True}})
        return taken

    return asyncio.run(work())


def _done_at(store: Store, job: Job) -> float:
    stored = store.job(job.id)
    assert stored is not None
    assert stored.completed_at is not None
    return stored.completed_at


def test_run_results_are_kept_30_min(tmp_path: Path) -> None:
    store, service = _service(tmp_path)
    run = service.submit("ep", {"input": {}}, sync=False)
    _finish(service, 1)
    done = _done_at(store, run)
    sweep(service, done + 29 * 60)
    assert store.job(run.id) is not None
    sweep(service, done + 30 * 60 + 1)
    assert store.job(run.id) is None


def test_runsync_results_are_kept_1_min_without_being_told(tmp_path: Path) -> None:
    store, service = _service(tmp_path)
    sync = service.submit("ep", {"input": {}}, sync=True)
    _finish(service, 1)
    done = _done_at(store, sync)
    sweep(service, done + 59)
    assert store.job(sync.id) is not None
    sweep(service, done + 61)
    assert store.job(sync.id) is None


@pytest.mark.parametrize(("wait_ms", "kept_s"), [(1_000, 60), (120_000, 120), (300_000, 300)])
def test_runsync_wait_keeps_the_result_as_long_as_the_wait_up_to_5_min(
    tmp_path: Path, wait_ms: int, kept_s: int
) -> None:
    store, service = _service(tmp_path)
    sync = service.submit("ep", {"input": {}}, sync=True, wait_ms=wait_ms)
    _finish(service, 1)
    done = _done_at(store, sync)
    sweep(service, done + kept_s - 1)
    assert store.job(sync.id) is not None
    sweep(service, done + kept_s + 1)
    assert store.job(sync.id) is None


def test_status_ttl_sets_how_long_a_finished_result_stays(tmp_path: Path) -> None:
    store, service = _service(tmp_path)
    job = service.submit("ep", {"input": {}}, sync=False)
    _finish(service, 1)
    stored = store.job(job.id)
    assert stored is not None
    service.keep_result(stored, 2 * 60 * 60 * 1000)  # 2 h, longer than the 30 min default
    kept = store.job(job.id)
    assert kept is not None
    assert kept.retain_until is not None
    sweep(service, kept.retain_until - 60)
    assert store.job(job.id) is not None
    sweep(service, kept.retain_until + 1)
    assert store.job(job.id) is None


def test_status_ttl_does_not_touch_an_unfinished_job(tmp_path: Path) -> None:
    store, service = _service(tmp_path)
    job = service.submit("ep", {"input": {}}, sync=False)
    service.keep_result(job, 10_000)
    queued = store.job(job.id)
    assert queued is not None
    assert queued.retain_until is None


def test_delay_and_execution_times_are_whole_milliseconds() -> None:
    job = Job(
        id="j",
        endpoint_id="ep",
        status="COMPLETED",
        input={},
        options={},
        sync=False,
        low_priority=False,
        created_at=1000.0,
        ttl_deadline=2000.0,
        started_at=1001.5,
        completed_at=1003.75,
    )
    view = job_view(job)
    assert view["delayTime"] == 1500
    assert view["executionTime"] == 2250


def test_ttl_counts_from_submit_and_removes_running_jobs(tmp_path: Path) -> None:
    store, service = _service(tmp_path)
    job = service.submit("ep", {"input": {}, "policy": {"ttl": 20_000}}, sync=False)

    async def take() -> None:
        assert [j.id for j in await service.take("ep", "w1", 1, 1.0, lambda: True)] == [job.id]

    asyncio.run(take())
    sweep(service, job.created_at + 19)
    assert store.job(job.id) is not None
    sweep(service, job.created_at + 21)
    assert store.job(job.id) is None
    assert service.held_by("w1") == set()


def test_execution_timeout_ends_timed_out_with_a_stop_signal(tmp_path: Path) -> None:
    store, service = _service(tmp_path)
    job = service.submit("ep", {"input": {}, "policy": {"executionTimeout": 5_000}}, sync=False)

    async def scenario() -> list[str]:
        taken = await service.take("ep", "w1", 1, 1.0, lambda: True)
        started = taken[0].started_at
        assert started is not None
        sweep(service, started + 4.9)
        assert service.held_by("w1") == {job.id}
        sweep(service, started + 5.1)
        return await service.stop_signals("w1", 1.0)

    assert asyncio.run(scenario()) == [job.id]
    timed_out = store.job(job.id)
    assert timed_out is not None
    assert timed_out.status == "TIMED_OUT"


def test_forgetting_an_endpoint_stops_its_running_jobs_and_removes_all(tmp_path: Path) -> None:
    store, service = _service(tmp_path)
    store.put_endpoint({"id": "ep", "name": "n", "createdAt": "2026-01-01T00:00:00Z"}, 1, None)
    running = service.submit("ep", {"input": {}}, sync=False)
    queued = service.submit("ep", {"input": {}}, sync=False)

    async def scenario() -> list[str]:
        await service.take("ep", "w1", 1, 1.0, lambda: True)
        service.forget_endpoint("ep")
        return await service.stop_signals("w1", 1.0)

    assert asyncio.run(scenario()) == [running.id]
    assert store.job(running.id) is None
    assert store.job(queued.id) is None
    assert service.held_by("w1") == set()


def test_a_job_that_cannot_be_started_fails_with_the_reason_and_does_not_block_the_queue(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "emulator.sqlite3")
    # An endpoint timeout too large for a float (4,000 digits) used to fail every job-take.
    service = JobService(store, lambda _endpoint: 10**4000, webhook_retry_interval_s=10.0)
    stuck = service.submit("ep", {"input": {}}, sync=False)
    fine = service.submit("ep", {"input": {}, "policy": {"executionTimeout": 60_000}}, sync=False)

    async def take() -> list[str]:
        return [job.id for job in await service.take("ep", "w1", 2, 1.0, lambda: True)]

    assert asyncio.run(take()) == [fine.id]
    failed = store.job(stuck.id)
    assert failed is not None
    assert failed.status == "FAILED"
    assert "could not hand this job to a worker" in failed.error
