"""Result retention and TTL, driven through the job queue's own clock (`sweep(now=...)`).

Waiting 30 real minutes is not a test; the sweeper takes the time to judge by, so the
real queue and SQLite store are exercised with a clock moved forward.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from deploy.emulator.jobs import RUN_RETENTION_S, RUNSYNC_RETENTION_S, JobService
from deploy.emulator.store import Store


def _service(tmp_path: Path) -> tuple[Store, JobService]:
    store = Store(tmp_path / "emulator.sqlite3")
    return store, JobService(store, lambda _endpoint: 300_000, webhook_retry_interval_s=10.0)


def test_results_are_kept_30_min_for_run_and_1_min_for_runsync(tmp_path: Path) -> None:
    store, service = _service(tmp_path)
    run = service.submit("ep", {"input": {}}, sync=False, retention_s=RUN_RETENTION_S)
    sync = service.submit("ep", {"input": {}}, sync=True, retention_s=RUNSYNC_RETENTION_S)

    async def work() -> None:
        for job in await service.take("ep", "w1", 2, 1.0, lambda: True):
            service.complete(job, {"output": {"ok": True}})

    asyncio.run(work())
    now = time.time()
    service.sweep(now + 55)
    assert store.job(sync.id) is not None
    service.sweep(now + 65)
    assert store.job(sync.id) is None
    assert store.job(run.id) is not None
    service.sweep(now + 29 * 60)
    assert store.job(run.id) is not None
    service.sweep(now + 31 * 60)
    assert store.job(run.id) is None


def test_ttl_counts_from_submit_and_removes_running_jobs(tmp_path: Path) -> None:
    store, service = _service(tmp_path)
    job = service.submit(
        "ep", {"input": {}, "policy": {"ttl": 20_000}}, sync=False, retention_s=RUN_RETENTION_S
    )

    async def take() -> None:
        assert [j.id for j in await service.take("ep", "w1", 1, 1.0, lambda: True)] == [job.id]

    asyncio.run(take())
    service.sweep(job.created_at + 19)
    assert store.job(job.id) is not None
    service.sweep(job.created_at + 21)
    assert store.job(job.id) is None
    assert service.held_by("w1") == set()


def test_execution_timeout_ends_timed_out_with_a_stop_signal(tmp_path: Path) -> None:
    store, service = _service(tmp_path)
    job = service.submit(
        "ep", {"input": {}, "policy": {"executionTimeout": 5_000}}, sync=False, retention_s=60
    )

    async def scenario() -> list[str]:
        await service.take("ep", "w1", 1, 1.0, lambda: True)
        service.sweep(time.time() + 6)
        return await service.stop_signals("w1", 1.0)

    assert asyncio.run(scenario()) == [job.id]
    timed_out = store.job(job.id)
    assert timed_out is not None
    assert timed_out.status == "TIMED_OUT"
