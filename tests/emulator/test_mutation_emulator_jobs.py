"""Emulator job logic that mutation testing (`make mutation`, docs/quality.md) found unpinned:
request checks, the job transitions (retry, purge, cancel, give-back, worker gone, expiry),
the autoscaler's arithmetic and the strict HTTP helpers.

The real JobService over a real SQLite store in a temporary directory; the clock is the
store's own (`sweep(now)`), so nothing here waits. Starlette requests are built from ASGI
scopes, as the server would hand them over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request

from deploy.emulator import httputil
from deploy.emulator.autoscaler import (
    DEFAULT_IDLE_TIMEOUT_S,
    QueueState,
    ScalingPlan,
    ScalingSettings,
    WorkerState,
    plan,
    wanted_workers,
)
from deploy.emulator.httputil import HttpError, key_matches, parse_json, presented_key, query_int
from deploy.emulator.job_requests import (
    DAY_MS,
    EXECUTION_TIMEOUT_RANGE_MS,
    JOB_TTL_RANGE_MS,
    RUN_RETENTION_S,
    validate_request,
    webhook_record,
)
from deploy.emulator.jobs import JobService
from deploy.emulator.store import Job, Store, StoreError
from deploy.emulator.sweeper import run_forever, sweep


class Listener:
    """Records what the job queue tells the worker plane (the real plane needs Docker)."""

    def __init__(self) -> None:
        self.changed: list[str] = []
        self.released: list[str] = []

    def queue_changed(self, endpoint_id: str) -> None:
        self.changed.append(endpoint_id)

    def worker_released(self, worker_id: str) -> None:
        self.released.append(worker_id)


def service(tmp_path: Path, timeout_ms: int | None = 300_000) -> tuple[Store, JobService, Listener]:
    store = Store(tmp_path / "emulator.sqlite3")
    jobs = JobService(store, lambda _endpoint: timeout_ms, webhook_retry_interval_s=10.0)
    listener = Listener()
    jobs.listener = listener
    return store, jobs, listener


def take(jobs: JobService, count: int = 1, worker: str = "w1", endpoint: str = "ep") -> list[Job]:
    async def work() -> list[Job]:
        return await jobs.take(endpoint, worker, count, 0.01, lambda: True)

    return asyncio.run(work())


def stored(store: Store, job_id: str) -> Job:
    job = store.job(job_id)
    assert job is not None
    return job


# --- validate_request ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ([], "request body must be a JSON object with an 'input' field"),
        ({}, "request body has no 'input' field"),
        ({"input": 1, "webhook": 5}, "webhook must be an http(s) URL"),
        ({"input": 1, "webhook": "ftp://x"}, "webhook must be an http(s) URL"),
        ({"input": 1, "policy": []}, "policy must be an object"),
        ({"input": 1, "policy": {"b": 1, "a": 2, "ttl": 10_000}}, "policy has unknown field(s): a, b"),
        ({"input": 1, "policy": {"ttl": True}}, "policy.ttl must be an integer number of milliseconds"),
        ({"input": 1, "policy": {"ttl": 10_000.0}}, "policy.ttl must be an integer number of milliseconds"),
        (
            {"input": 1, "policy": {"ttl": 9_999}},
            "policy.ttl must be between 10000 and 604800000 ms, got 9999",
        ),
        (
            {"input": 1, "policy": {"executionTimeout": 4_999}},
            "policy.executionTimeout must be between 5000 and 604800000 ms, got 4999",
        ),
        (
            {"input": 1, "policy": {"executionTimeout": 604_800_001}},
            "policy.executionTimeout must be between 5000 and 604800000 ms, got 604800001",
        ),
        ({"input": 1, "policy": {"lowPriority": "yes"}}, "policy.lowPriority must be true or false"),
        ({"input": 1, "s3Config": "x"}, "s3Config must be an object"),
    ],
)
def test_validate_request_refuses(body: Any, detail: str) -> None:
    with pytest.raises(HttpError) as caught:
        validate_request(body)
    assert (caught.value.status, caught.value.detail) == (400, detail)


def test_validate_request_accepts_the_bounds_and_returns_the_body() -> None:
    low, high = EXECUTION_TIMEOUT_RANGE_MS
    for timeout in (low, high):
        for ttl in JOB_TTL_RANGE_MS:
            body = {"input": None, "policy": {"executionTimeout": timeout, "ttl": ttl, "lowPriority": True}}
            assert validate_request(body) is body
    for webhook in ("http://h/x", "https://h/x", None):
        assert validate_request({"input": {}, "webhook": webhook, "s3Config": {}})["input"] == {}
    assert validate_request({"input": 1, "policy": {"ttl": None}}) == {"input": 1, "policy": {"ttl": None}}


# --- transitions --------------------------------------------------------------------------


def test_submit_and_take_hand_out_jobs_in_order_with_deadlines(tmp_path: Path) -> None:
    store, jobs, listener = service(tmp_path)
    first = jobs.submit("ep", {"input": 1, "policy": {"executionTimeout": 5_000}}, sync=False)
    second = jobs.submit("ep", {"input": 2, "webhook": "http://h/", "s3Config": {"b": 1}}, sync=True)
    assert second.id.startswith("sync-")
    assert listener.changed == ["ep", "ep"]
    assert jobs.queue_stats("ep", now=second.created_at + 2)[:2] == (2, 0)
    assert jobs.queue_stats("ep", now=first.created_at + 2)[2] == pytest.approx(2.0)
    got = take(jobs, count=5)
    assert [job.id for job in got] == [first.id, second.id]
    assert listener.changed == ["ep", "ep", "ep"]
    one, two = stored(store, first.id), stored(store, second.id)
    assert (one.status, one.worker_id) == ("IN_PROGRESS", "w1")
    assert one.exec_deadline - one.started_at == pytest.approx(5.0)  # type: ignore[operator]
    assert two.exec_deadline - two.started_at == pytest.approx(300.0)  # type: ignore[operator]
    assert jobs.held_by("w1") == {first.id, second.id}
    assert jobs.queue_stats("ep")[:2] == (0, 2)
    assert jobs.queue_stats("other") == (0, 0, 0.0)
    assert jobs.held_job("w1", first.id) is not None
    assert jobs.held_job("w2", first.id) is None
    assert JobService.worker_payload(one) == {"id": first.id, "input": 1}
    assert JobService.worker_payload(two) == {
        "id": second.id,
        "input": 2,
        "webhook": "http://h/",
        "s3Config": {"b": 1},
    }
    assert take(jobs) == []


def test_take_honours_count_and_skips_jobs_no_longer_queued(tmp_path: Path) -> None:
    store, jobs, _ = service(tmp_path, timeout_ms=None)
    a = jobs.submit("ep", {"input": "a"}, sync=False)
    b = jobs.submit("ep", {"input": "b"}, sync=False)
    c = jobs.submit("ep", {"input": "c"}, sync=False)
    jobs.cancel(a)
    assert [job.id for job in take(jobs, count=1)] == [b.id]
    assert stored(store, b.id).exec_deadline is None  # no timeout anywhere: no deadline
    assert [job.id for job in take(jobs, count=1)] == [c.id]


def test_take_skips_queue_entries_whose_record_is_gone_or_no_longer_queued(tmp_path: Path) -> None:
    """Records changed behind the queue's back (deleted, ended) are passed over, not started."""
    store, jobs, _ = service(tmp_path)
    gone, ended, fine = (jobs.submit("ep", {"input": n}, sync=False) for n in range(3))
    store.delete_job(gone.id)
    record = stored(store, ended.id)
    record.status = "CANCELLED"
    store.save_job(record)
    assert [job.id for job in take(jobs, count=3)] == [fine.id]
    assert stored(store, ended.id).status == "CANCELLED"


class FullAt(Store):
    """A store whose disk fills at one job's write (the real full disk, SQLite's own
    SQLITE_FULL, is tested in test_emulator_store.py; here the moment is chosen)."""

    full_for: str | None = None

    def save_job(self, job: Job) -> None:
        if job.id == self.full_for:
            raise StoreError("emulator state store failed: database or disk is full")
        super().save_job(job)


def test_a_take_that_cannot_record_a_start_loses_no_job(tmp_path: Path) -> None:
    store = FullAt(tmp_path / "s.sqlite3")
    jobs = JobService(store, lambda _endpoint: None, webhook_retry_interval_s=10.0)
    first, second = (jobs.submit("ep", {"input": n}, sync=False) for n in range(2))
    store.full_for = second.id
    with pytest.raises(StoreError, match="database or disk is full"):
        take(jobs, count=2)
    assert [stored(store, j.id).status for j in (first, second)] == ["IN_QUEUE", "IN_QUEUE"]
    store.full_for = None
    assert [job.id for job in take(jobs, count=2)] == [first.id, second.id]  # order kept


def test_a_job_that_cannot_start_fails_with_why_and_the_queue_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_endpoint: str) -> int:
        raise KeyError("endpoint gone")

    store = Store(tmp_path / "s.sqlite3")
    jobs = JobService(store, broken, webhook_retry_interval_s=10.0)
    job = jobs.submit("ep", {"input": 1}, sync=False)
    good = jobs.submit("ep", {"input": 2, "policy": {"executionTimeout": 6_000}}, sync=False)
    assert [j.id for j in take(jobs, count=2)] == [good.id]
    failed = stored(store, job.id)
    assert failed.status == "FAILED"
    assert failed.error == "the emulator could not hand this job to a worker: 'endpoint gone'"
    assert failed.completed_at is None
    assert [(r.name, r.getMessage()) for r in caplog.records if r.levelno >= logging.ERROR] == [
        ("rpdeploy.emulator.jobs", f"job {job.id} cannot be handed to a worker")
    ]


def test_a_new_service_sends_webhooks_with_its_retry_interval(tmp_path: Path) -> None:
    jobs = JobService(Store(tmp_path / "s.sqlite3"), lambda _endpoint: None, webhook_retry_interval_s=2.5)
    assert jobs.webhooks.retry_interval_s == 2.5
    asyncio.run(jobs.close())  # nothing pending: closes at once


def test_each_endpoints_own_timeout_sets_the_execution_deadline(tmp_path: Path) -> None:
    timeouts = {"a": 7_000, "b": None}
    store = Store(tmp_path / "s.sqlite3")
    jobs = JobService(store, timeouts.get, webhook_retry_interval_s=10.0)
    for endpoint in timeouts:
        jobs.submit(endpoint, {"input": 1}, sync=False)
    (on_a,) = take(jobs, endpoint="a")
    (on_b,) = take(jobs, endpoint="b")
    assert on_a.exec_deadline - on_a.started_at == pytest.approx(7.0)  # type: ignore[operator]
    assert on_b.exec_deadline is None


def test_a_stop_wakes_the_workers_stop_long_poll(tmp_path: Path) -> None:
    store, jobs, _ = service(tmp_path)
    job = jobs.submit("ep", {"input": 1}, sync=False)
    take(jobs)

    async def scenario() -> tuple[bool, list[str]]:
        poll = asyncio.create_task(jobs.stop_signals("w1", 5.0))
        await asyncio.sleep(0)
        jobs.cancel(stored(store, job.id))
        for _ in range(10):  # a few turns of the loop, not the 5 s hold
            await asyncio.sleep(0)
        if not poll.done():
            poll.cancel()
            return False, []
        return True, await poll

    assert asyncio.run(scenario()) == (True, [job.id])


def test_a_job_from_an_older_state_gets_the_run_retention(tmp_path: Path) -> None:
    """A record without ``retention_s`` (written before it was stored) keeps its result 30 min."""
    store, _jobs, _ = service(tmp_path)
    now = time.time()
    old = Job(id="old", endpoint_id="ep", status="IN_QUEUE", input=1, options={"policy": {}},
              sync=True, low_priority=False, created_at=now, ttl_deadline=now + 600)  # fmt: skip
    store.insert_job(old)
    _, jobs, _ = service(tmp_path)
    jobs.recover("restarted")
    (held,) = take(jobs)
    jobs.complete(held, {"output": 1})
    done = stored(store, "old")
    assert done.retain_until - done.completed_at == pytest.approx(RUN_RETENTION_S)  # type: ignore[operator]


class Posted:
    """Stands in for the webhook sender (its HTTP delivery is tested in test_emulator_jobs.py)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send(self, url: str, record: dict[str, Any]) -> None:
        self.sent.append((url, record))


def test_a_webhook_is_posted_for_each_final_state_runpod_posts(tmp_path: Path) -> None:
    store, jobs, _ = service(tmp_path)
    posted = Posted()
    jobs.webhooks = posted  # type: ignore[assignment]
    ids = [jobs.submit("ep", {"input": n, "webhook": f"http://h/{n}"}, sync=False).id for n in range(4)]
    quiet = jobs.submit("ep", {"input": 9}, sync=False)
    a, b, c, d, e = take(jobs, count=5)
    jobs.complete(a, {"output": 1})
    jobs.fail(b, "no")
    jobs.time_out(c)
    jobs.cancel(d)  # RunPod posts no webhook for a cancelled job
    jobs.complete(e, {"output": 2})  # no webhook given
    assert [(url, record["id"], record["status"]) for url, record in posted.sent] == [
        ("http://h/0", ids[0], "COMPLETED"),
        ("http://h/1", ids[1], "FAILED"),
        ("http://h/2", ids[2], "TIMED_OUT"),
    ]
    assert posted.sent[0][1] == webhook_record(stored(store, ids[0]))
    assert quiet.id not in {record["id"] for _, record in posted.sent}


def test_sweep_judges_by_the_clock_by_default(tmp_path: Path) -> None:
    store, jobs, _ = service(tmp_path)
    job = jobs.submit("ep", {"input": 1}, sync=False)
    (held,) = take(jobs)
    jobs.complete(held, {"output": 1})
    jobs.keep_result(stored(store, job.id), 0)  # kept until now
    sweep(jobs)
    assert store.job(job.id) is None


def test_give_back_requeues_at_the_head_in_order(tmp_path: Path) -> None:
    store, jobs, listener = service(tmp_path)
    a, b, c = (jobs.submit("ep", {"input": n}, sync=False) for n in range(3))
    got = take(jobs, count=2)
    listener.changed.clear()
    jobs.give_back(got)
    for job_id in (a.id, b.id):
        back = stored(store, job_id)
        assert (back.status, back.worker_id, back.started_at, back.exec_deadline) == (
            "IN_QUEUE",
            None,
            None,
            None,
        )
    assert jobs.held_by("w1") == set()
    assert listener.released == ["w1", "w1"]
    assert listener.changed == ["ep", "ep"]
    assert [job.id for job in take(jobs, count=3)] == [a.id, b.id, c.id]
    # A job that ended meanwhile is not given back.
    finished = stored(store, a.id)
    jobs.complete(finished, {"output": 1})
    jobs.give_back([finished])
    assert stored(store, a.id).status == "COMPLETED"


def test_give_back_skips_an_ended_job_and_goes_on(tmp_path: Path) -> None:
    store, jobs, _ = service(tmp_path)
    a, b = (jobs.submit("ep", {"input": n}, sync=False) for n in range(2))
    first, second = take(jobs, count=2)
    jobs.complete(second, {"output": 1})
    jobs.give_back([first, second])  # the ended one comes first (the list is walked backwards)
    assert (stored(store, a.id).status, stored(store, b.id).status) == ("IN_QUEUE", "COMPLETED")


def test_complete_and_fail(tmp_path: Path) -> None:
    store, jobs, listener = service(tmp_path)
    ids = [jobs.submit("ep", {"input": n}, sync=False).id for n in range(4)]
    held = take(jobs, count=4)
    jobs.complete(held[0], {"output": {"x": 1}})
    jobs.complete(held[1], {"output": "partial", "error": "boom"})
    jobs.complete(held[2], {"error": None})
    jobs.fail(held[3], "result too large")
    done = [stored(store, job_id) for job_id in ids]
    assert [(j.status, j.error) for j in done] == [
        ("COMPLETED", None),
        ("FAILED", "boom"),
        ("COMPLETED", None),
        ("FAILED", "result too large"),
    ]
    assert done[0].output == {"x": 1}
    assert done[1].output == "partial"
    assert not done[2].has_output
    for job in done:
        assert job.completed_at is not None
        assert job.exec_deadline is None
        assert job.retain_until - job.completed_at == pytest.approx(1800)  # type: ignore[operator]
    assert listener.released == ["w1"] * 4
    assert jobs.held_by("w1") == set()
    assert jobs.counts("ep") == {"completed": 2, "failed": 2, "inProgress": 0, "inQueue": 0, "retried": 0}


def test_retry_requeues_failed_and_timed_out_jobs_only(tmp_path: Path) -> None:
    store, jobs, listener = service(tmp_path)
    job = jobs.submit("ep", {"input": 1, "policy": {"ttl": 20_000}}, sync=False)
    with pytest.raises(HttpError) as caught:
        jobs.retry(job)
    assert (caught.value.status, caught.value.detail) == (
        400,
        f"job {job.id} is IN_QUEUE; only FAILED or TIMED_OUT jobs can be retried",
    )
    (held,) = take(jobs)
    jobs.complete(held, {"output": "o", "error": "e"})
    failed = stored(store, job.id)
    before = time.time()
    listener.changed.clear()
    jobs.retry(failed)
    assert listener.changed == ["ep"]
    again = stored(store, job.id)
    assert again.status == "IN_QUEUE"
    assert again.retries == 1
    assert not again.has_output
    assert (again.error, again.worker_id, again.started_at, again.completed_at) == (None, None, None, None)
    assert (again.exec_deadline, again.retain_until) == (None, None)
    assert again.created_at >= before
    assert again.ttl_deadline - again.created_at == pytest.approx(20.0)
    assert jobs.counts("ep") == {"completed": 0, "failed": 0, "inProgress": 0, "inQueue": 1, "retried": 1}
    (held,) = take(jobs)
    jobs.time_out(held)
    timed_out = stored(store, job.id)
    assert (timed_out.status, timed_out.error) == ("TIMED_OUT", "job exceeded its execution timeout")
    assert jobs.counts("ep")["failed"] == 1
    jobs.retry(timed_out)
    assert stored(store, job.id).retries == 2
    done = stored(store, job.id)
    jobs.cancel(done)
    with pytest.raises(HttpError, match="is CANCELLED"):
        jobs.retry(stored(store, job.id))


def test_retry_without_a_ttl_gets_a_day(tmp_path: Path) -> None:
    store, jobs, _ = service(tmp_path)
    job = jobs.submit("ep", {"input": 1}, sync=False)
    (held,) = take(jobs)
    jobs.fail(held, "x")
    jobs.retry(stored(store, job.id))
    again = stored(store, job.id)
    assert again.ttl_deadline - again.created_at == pytest.approx(DAY_MS / 1000)


def test_cancel_queued_and_running_jobs(tmp_path: Path) -> None:
    store, jobs, listener = service(tmp_path)
    running = jobs.submit("ep", {"input": 1}, sync=False)
    queued = jobs.submit("ep", {"input": 2}, sync=False)
    (held,) = take(jobs)
    listener.changed.clear()
    jobs.cancel(stored(store, queued.id))
    assert stored(store, queued.id).status == "CANCELLED"
    assert stored(store, queued.id).completed_at is None
    assert listener.changed == ["ep"]
    assert queued.id not in jobs._queues["ep"]  # not left to be skipped on every take
    jobs.cancel(held)
    assert stored(store, running.id).status == "CANCELLED"
    assert stored(store, running.id).completed_at is not None
    assert asyncio.run(jobs.stop_signals("w1", 0.01)) == [running.id]
    # A finished job is left as it is.
    assert jobs.cancel(stored(store, running.id)).status == "CANCELLED"
    assert take(jobs) == []


def test_purge_cancels_only_queued_jobs_and_counts_them(tmp_path: Path) -> None:
    store, jobs, listener = service(tmp_path)
    running = jobs.submit("ep", {"input": 0}, sync=False)
    take(jobs)
    queued = [jobs.submit("ep", {"input": n}, sync=False) for n in (1, 2)]
    other = jobs.submit("other", {"input": 3}, sync=False)
    listener.changed.clear()
    assert jobs.purge("ep") == 2
    assert listener.changed == ["ep"]
    assert [stored(store, job.id).status for job in queued] == ["CANCELLED", "CANCELLED"]
    assert stored(store, running.id).status == "IN_PROGRESS"
    assert stored(store, other.id).status == "IN_QUEUE"
    assert jobs.purge("ep") == 0


def test_counts_jobs_in_progress(tmp_path: Path) -> None:
    _store, jobs, _ = service(tmp_path)
    for n in range(3):
        jobs.submit("ep", {"input": n}, sync=False)
    take(jobs, count=2)
    assert jobs.counts("ep") == {"completed": 0, "failed": 0, "inProgress": 2, "inQueue": 1, "retried": 0}


def test_held_job_trusts_the_record_not_only_the_holding(tmp_path: Path) -> None:
    """A holding whose record ended or vanished behind the service's back takes no reports."""
    store, jobs, _ = service(tmp_path)
    ended, gone = (jobs.submit("ep", {"input": n}, sync=False) for n in range(2))
    take(jobs, count=2)
    record = stored(store, ended.id)
    record.status = "COMPLETED"
    store.save_job(record)
    store.delete_job(gone.id)
    assert jobs.held_job("w1", ended.id) is None
    assert jobs.held_job("w1", gone.id) is None


def test_purge_skips_a_queue_entry_whose_record_is_gone(tmp_path: Path) -> None:
    store, jobs, _ = service(tmp_path)
    gone, kept = (jobs.submit("ep", {"input": n}, sync=False) for n in range(2))
    store.delete_job(gone.id)
    assert jobs.purge("ep") == 1
    assert stored(store, kept.id).status == "CANCELLED"


def test_queue_stats_measure_the_oldest_wait_on_the_clock_by_default(tmp_path: Path) -> None:
    _store, jobs, _ = service(tmp_path)
    job = jobs.submit("ep", {"input": 1}, sync=False)
    queued, held, wait = jobs.queue_stats("ep")
    after = time.time()
    assert (queued, held) == (1, 0)
    assert 0.0 <= wait <= after - job.created_at


def test_an_expired_job_is_stopped_unqueued_and_its_waiter_woken(tmp_path: Path) -> None:
    store, jobs, _ = service(tmp_path)
    running = jobs.submit("ep", {"input": 1, "policy": {"ttl": 10_000}}, sync=True)
    (held,) = take(jobs)
    queued = jobs.submit("ep", {"input": 2, "policy": {"ttl": 10_000}}, sync=False)

    async def scenario() -> tuple[bool, Job | None]:
        waiter = asyncio.create_task(jobs.wait_final(held, 5.0))
        await asyncio.sleep(0)
        sweep(jobs, queued.ttl_deadline + 1)
        for _ in range(10):  # a few turns of the loop, not the 5 s hold
            await asyncio.sleep(0)
        return waiter.done(), (await waiter if waiter.done() else None)

    assert asyncio.run(scenario()) == (True, None)
    assert store.job(running.id) is None
    assert store.job(queued.id) is None
    assert queued.id not in jobs._queues["ep"]  # not left to be skipped on every take
    assert asyncio.run(jobs.stop_signals("w1", 0.01)) == [running.id]


def test_worker_gone_fails_what_it_held_and_forgets_it(tmp_path: Path) -> None:
    store, jobs, _ = service(tmp_path)
    ids = sorted(jobs.submit("ep", {"input": n}, sync=False).id for n in range(2))
    survivor = jobs.submit("ep", {"input": 9}, sync=False)
    held = take(jobs, count=2)
    take(jobs, worker="w2")
    jobs.complete(stored(store, held[0].id), {"output": 1})
    done_id = held[0].id
    jobs.worker_gone("w1", "worker died (exit 137)")
    for job_id in ids:
        job = stored(store, job_id)
        if job_id == done_id:
            assert (job.status, job.error) == ("COMPLETED", None)
        else:
            assert (job.status, job.error) == ("FAILED", "worker died (exit 137)")
    assert jobs.held_by("w1") == set()
    assert jobs.queue_stats("ep")[1] == 1  # w2 still holds its job
    assert stored(store, survivor.id).status == "IN_PROGRESS"
    jobs.worker_gone("nobody", "x")  # a worker that held nothing


def test_worker_gone_forgets_the_worker_even_when_a_held_record_is_gone(tmp_path: Path) -> None:
    """A held job whose record was deleted meanwhile (its endpoint removed out of order) is
    skipped; the worker's holdings, pending stops and long poll are forgotten all the same."""
    store, jobs, _ = service(tmp_path)
    gone, cancelled = (jobs.submit("ep", {"input": n}, sync=False) for n in range(2))
    take(jobs, count=2)
    jobs.cancel(stored(store, cancelled.id))  # a stop signal for w1, not yet collected

    async def scenario() -> list[str]:
        poll = asyncio.create_task(jobs.stop_signals("w2", 5.0))
        await asyncio.sleep(0)
        take_w2 = jobs.submit("ep", {"input": 3}, sync=False)
        assert [job.id for job in await jobs.take("ep", "w2", 1, 0.01, lambda: True)] == [take_w2.id]
        store.delete_job(gone.id)
        jobs.worker_gone("w1", "worker died")
        jobs.worker_gone("w2", "worker died")
        # Nothing of either worker is kept (a long-running emulator sees many come and go).
        for table in (jobs._held, jobs._stops, jobs._stop_wakeups, jobs._worker_endpoint):
            assert not {"w1", "w2"} & set(table), table
        poll.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poll
        return await jobs.stop_signals("w1", 0.01)

    assert asyncio.run(scenario()) == []  # the pending stop went with the worker
    assert jobs.held_by("w1") == set()
    assert jobs.queue_stats("ep")[1] == 0


def test_stop_signals_are_resent_for_jobs_that_ended_here(tmp_path: Path) -> None:
    store, jobs, _ = service(tmp_path)
    a = jobs.submit("ep", {"input": 1}, sync=False)
    b = jobs.submit("ep", {"input": 2}, sync=False)
    take(jobs, count=2)
    jobs.complete(stored(store, a.id), {"output": 1})
    jobs.resignal_stops("ep", "w1", [b.id, "unknown", a.id])
    assert asyncio.run(jobs.stop_signals("w1", 0.01)) == [a.id]  # b is still held: not stopped
    jobs.resignal_stops("other", "w1", [a.id])
    jobs.resignal_stops("ep", "w2", [a.id])
    assert asyncio.run(jobs.stop_signals("w1", 0.01)) == []
    assert asyncio.run(jobs.stop_signals("w2", 0.01)) == []


def test_recover_fails_held_jobs_and_requeues_queued_ones(tmp_path: Path) -> None:
    store, jobs, _ = service(tmp_path)
    running = jobs.submit("ep", {"input": 1}, sync=False)
    take(jobs)
    queued = jobs.submit("ep", {"input": 2}, sync=False)
    _, fresh, _ = service(tmp_path)
    assert fresh.recover("the emulator restarted") == 1
    failed = stored(store, running.id)
    assert (failed.status, failed.error) == ("FAILED", "the emulator restarted (worker w1 was running it)")
    assert [job.id for job in take(fresh)] == [queued.id]


def test_recover_counts_every_held_job_it_failed(tmp_path: Path) -> None:
    _store, jobs, _ = service(tmp_path)
    for n in range(3):
        jobs.submit("ep", {"input": n}, sync=False)
    take(jobs, count=2)
    _, fresh, _ = service(tmp_path)
    assert fresh.recover("restarted") == 2


def test_sweep_times_out_expires_and_drops_by_the_given_clock(tmp_path: Path) -> None:
    store, jobs, _ = service(tmp_path)
    slow = jobs.submit("ep", {"input": 1, "policy": {"executionTimeout": 5_000}}, sync=False)
    (held,) = take(jobs)
    stale = jobs.submit("ep", {"input": 2, "policy": {"ttl": 10_000}}, sync=False)
    now = time.time()
    sweep(jobs, now)
    assert stored(store, slow.id).status == "IN_PROGRESS"
    sweep(jobs, held.started_at + 5.0 + 1)  # type: ignore[operator]
    timed_out = stored(store, slow.id)
    assert timed_out.status == "TIMED_OUT"
    assert asyncio.run(jobs.stop_signals("w1", 0.01)) == [slow.id]
    assert stored(store, stale.id).status == "IN_QUEUE"  # its 10 s TTL has not passed
    sweep(jobs, stale.ttl_deadline + 0.5)
    assert store.job(stale.id) is None
    assert take(jobs) == []
    sweep(jobs, timed_out.retain_until + 1)  # type: ignore[operator]
    assert store.job(slow.id) is None


def test_get_hides_other_endpoints_and_expired_jobs(tmp_path: Path) -> None:
    store, jobs, _ = service(tmp_path)
    job = jobs.submit("ep", {"input": 1}, sync=False)
    assert jobs.get("ep", job.id) is not None
    assert jobs.get("other", job.id) is None
    assert jobs.get("ep", "missing") is None
    jobs.cancel(job)
    done = stored(store, job.id)
    done.retain_until = time.time() - 1
    store.save_job(done)
    assert jobs.get("ep", job.id) is None


def test_expired_compares_inclusively() -> None:
    job = Job(
        id="j", endpoint_id="ep", status="COMPLETED", input={}, options={}, sync=False,
        low_priority=False, created_at=0.0, ttl_deadline=10.0, retain_until=20.0,
    )  # fmt: skip
    assert JobService.expired(job, 19.9) is False
    assert JobService.expired(job, 20.0) is True


def test_forget_endpoint_after_the_store_deleted_it_stops_and_wakes_everything(tmp_path: Path) -> None:
    """The order of a real DELETE (control.delete_endpoint): the store's records go first."""
    store, jobs, _ = service(tmp_path)
    elsewhere = jobs.submit("other", {"input": 3}, sync=False)
    take(jobs, worker="w0", endpoint="other")  # another endpoint's worker, met first
    running = jobs.submit("ep", {"input": 1}, sync=True)
    (held,) = take(jobs)
    queued = jobs.submit("ep", {"input": 2}, sync=True)

    async def scenario() -> list[bool]:
        waiters = [asyncio.create_task(jobs.wait_final(job, 5.0)) for job in (held, queued)]
        await asyncio.sleep(0)
        store.delete_endpoint("ep")
        jobs.forget_endpoint("ep")
        for _ in range(10):  # a few turns of the loop, not the 5 s holds
            await asyncio.sleep(0)
        done = [task.done() for task in waiters]
        for task in waiters:
            task.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
        return done

    assert asyncio.run(scenario()) == [True, True]  # the running and the queued job's waiters
    assert asyncio.run(jobs.stop_signals("w1", 0.01)) == [running.id]
    assert asyncio.run(jobs.stop_signals("w0", 0.01)) == []
    assert jobs.held_by("w1") == set()
    assert jobs.held_by("w0") == {elsewhere.id}
    assert stored(store, elsewhere.id).status == "IN_PROGRESS"
    assert "ep" not in jobs._queues
    jobs.forget_endpoint("never-used")  # nothing to forget


def test_forget_endpoint_wakes_a_long_poll_on_it(tmp_path: Path) -> None:
    """The woken poll asks its worker again, which no longer accepts (its endpoint is gone)."""
    _store, jobs, _ = service(tmp_path)
    accepting = [True]

    async def scenario() -> tuple[bool, list[Job]]:
        poll = asyncio.create_task(jobs.take("ep", "w9", 1, 5.0, lambda: accepting[0]))
        await asyncio.sleep(0)  # waiting on the empty queue
        accepting[0] = False
        jobs.forget_endpoint("ep")
        for _ in range(10):  # a few turns of the loop, not the 5 s hold
            await asyncio.sleep(0)
        if not poll.done():
            poll.cancel()
            return False, []
        return True, await poll

    assert asyncio.run(scenario()) == (True, [])


def test_forget_endpoint_cancels_what_the_store_still_holds(tmp_path: Path) -> None:
    """Called before the store's delete (out of order), it cancels the unfinished jobs itself."""
    store, jobs, listener = service(tmp_path)
    running = jobs.submit("ep", {"input": 1}, sync=False)
    take(jobs)
    queued = jobs.submit("ep", {"input": 2}, sync=False)
    elsewhere = jobs.submit("other", {"input": 3}, sync=False)
    take(jobs, worker="w2", endpoint="other")
    listener.changed.clear()
    jobs.forget_endpoint("ep")
    assert listener.changed == ["ep"]  # the queued job's cancel
    assert store.job(running.id) is None
    assert store.job(queued.id) is None
    assert stored(store, elsewhere.id).status == "IN_PROGRESS"
    assert asyncio.run(jobs.stop_signals("w1", 0.01)) == [running.id]
    assert asyncio.run(jobs.stop_signals("w2", 0.01)) == []
    assert jobs.held_by("w1") == set()
    assert jobs.held_by("w2") == {elsewhere.id}


def test_webhook_record_is_the_full_sorted_job_without_worker() -> None:
    job = Job(
        id="j", endpoint_id="ep", status="FAILED", input={"a": 1}, options={}, sync=False,
        low_priority=False, created_at=1.0, ttl_deadline=1e9, webhook="http://h/", error="e",
        worker_id="w", started_at=2.0, completed_at=2.5,
    )  # fmt: skip
    record = webhook_record(job)
    assert record == {
        "delayTime": 1000,
        "error": "e",
        "executionTime": 500,
        "id": "j",
        "input": {"a": 1},
        "status": "FAILED",
        "webhook": "http://h/",
    }
    assert list(record) == sorted(record)


def test_webhook_record_of_a_job_no_worker_took() -> None:
    """A job cancelled in the queue never had a worker: its record is posted all the same."""
    job = Job(
        id="j", endpoint_id="ep", status="CANCELLED", input=None, options={}, sync=False,
        low_priority=False, created_at=1.0, ttl_deadline=1e9, webhook="http://h/",
    )  # fmt: skip
    assert webhook_record(job) == {"id": "j", "input": None, "status": "CANCELLED", "webhook": "http://h/"}


# --- autoscaler ---------------------------------------------------------------------------


def test_scaling_settings_of_an_endpoint() -> None:
    doc = {"scaling": {"type": "QUEUE_DELAY", "queueDelay": 7, "requestCount": 2},
           "workers": {"min": 1, "max": 5, "idleTimeout": 30}}  # fmt: skip
    assert ScalingSettings.of_endpoint(doc) == ScalingSettings("QUEUE_DELAY", 7.0, 2, 1, 5, 30.0)
    bare = ScalingSettings.of_endpoint(
        {"scaling": {"type": "REQUEST_COUNT"}, "workers": {"min": 0, "max": 3}}
    )
    assert bare == ScalingSettings("REQUEST_COUNT", 4.0, 4, 0, 3, DEFAULT_IDLE_TIMEOUT_S)
    assert DEFAULT_IDLE_TIMEOUT_S == 5


def test_request_count_scaling_rounds_up_within_bounds() -> None:
    settings = ScalingSettings("REQUEST_COUNT", request_count=4, min_workers=1, max_workers=3)
    assert wanted_workers(QueueState(0, 0, 0.0), [], settings) == 1
    assert wanted_workers(QueueState(4, 0, 0.0), [], settings) == 1
    assert wanted_workers(QueueState(4, 1, 0.0), [], settings) == 2
    assert wanted_workers(QueueState(40, 0, 0.0), [], settings) == 3


def test_queue_delay_scaling() -> None:
    settings = ScalingSettings("QUEUE_DELAY", queue_delay_s=4.0, max_workers=3, idle_timeout_s=5.0)
    busy = WorkerState("b", ready=True, busy=True)
    idle = WorkerState("i", ready=True, busy=False, idle_for_s=1.0)
    starting = WorkerState("s", ready=False, busy=False)
    assert wanted_workers(QueueState(1, 0, 0.0), [], settings) == 1  # from zero at once
    assert wanted_workers(QueueState(1, 0, 3.9), [busy], settings) == 1  # not waited long enough
    assert wanted_workers(QueueState(1, 0, 4.0), [busy], settings) == 2
    assert wanted_workers(QueueState(1, 0, 9.0), [busy, idle], settings) == 2  # a free worker takes it
    assert wanted_workers(QueueState(2, 0, 9.0), [busy, idle], settings) == 3
    assert wanted_workers(QueueState(1, 0, 9.0), [busy, starting], settings) == 2  # starting counts as free
    assert wanted_workers(QueueState(0, 1, 0.0), [busy, idle], settings) == 2  # idle not expired yet
    expired = WorkerState("e", ready=True, busy=False, idle_for_s=5.0)
    assert wanted_workers(QueueState(0, 1, 0.0), [busy, expired], settings) == 1
    assert wanted_workers(QueueState(0, 0, 0.0), [starting, expired], settings) == 1
    assert (
        wanted_workers(QueueState(0, 1, 0.0), [busy, expired, idle], settings) == 2
    )  # one expired: one less
    assert wanted_workers(QueueState(0, 0, 0.0), [], ScalingSettings("QUEUE_DELAY", min_workers=2)) == 2


def test_plan_starts_within_max_and_stops_the_longest_idle() -> None:
    settings = ScalingSettings("REQUEST_COUNT", request_count=1, max_workers=3, idle_timeout_s=5.0)
    draining = WorkerState("d", ready=True, busy=True, draining=True)
    assert plan(QueueState(3, 0, 0.0), [], settings) == ScalingPlan(start=3)
    assert plan(QueueState(3, 0, 0.0), [draining], settings) == ScalingPlan(start=2)
    busy = WorkerState("b", ready=True, busy=True)
    assert plan(QueueState(0, 1, 0.0), [busy], settings) == ScalingPlan()
    idle_a = WorkerState("a", ready=True, busy=False, idle_for_s=6.0)
    idle_c = WorkerState("c", ready=True, busy=False, idle_for_s=9.0)
    fresh = WorkerState("f", ready=True, busy=False, idle_for_s=1.0)
    assert plan(QueueState(0, 1, 0.0), [busy, idle_a, idle_c], settings) == ScalingPlan(stop=("c", "a"))
    assert plan(QueueState(0, 1, 0.0), [busy, fresh], settings) == ScalingPlan(stop=())
    # Over max (max lowered): stop idle workers even before their timeout.
    low = ScalingSettings("REQUEST_COUNT", request_count=1, max_workers=1, idle_timeout_s=5.0)
    assert plan(QueueState(0, 1, 0.0), [busy, fresh], low) == ScalingPlan(stop=("f",))
    assert plan(QueueState(0, 0, 0.0), [fresh, idle_a], low) == ScalingPlan(stop=("a", "f"))


# --- HTTP helpers ----------------------------------------------------------------------------


def request(query: bytes = b"", headers: dict[str, str] | None = None, body: bytes = b"") -> Request:
    chunks = [body]

    async def receive() -> dict[str, Any]:
        data = chunks.pop(0) if chunks else b""
        return {"type": "http.request", "body": data, "more_body": False}

    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    return Request({"type": "http", "query_string": query, "headers": raw}, receive)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"  ", "request body is empty; expected JSON"),
        (b"\xff", "request body is not valid JSON: not UTF-8 (invalid start byte at byte 0)"),
        (b"NaN", "request body is not valid JSON: NaN is not a JSON number"),
        (b"1e999", "request body is not valid JSON: number 1e999 is out of range"),
        (b"9" * 45 + b"e999", "request body is not valid JSON: number " + "9" * 40 + " is out of range"),
        (b"-1e999", "request body is not valid JSON: number -1e999 is out of range"),
        (b'"\\ud800"', "request body is not valid JSON: a string holds a lone UTF-16 surrogate"),
        (b'{"\\udfff": 1}', "request body is not valid JSON: a string holds a lone UTF-16 surrogate"),
        (b"[" * 257 + b"]" * 257, "request body is not valid JSON: nesting deeper than 256 levels"),
        (b"{", "request body is not valid JSON: Expecting property name"),
    ],
)
def test_parse_json_refuses(body: bytes, detail: str) -> None:
    with pytest.raises(HttpError) as caught:
        parse_json(body)
    assert caught.value.status == 400
    assert caught.value.detail.startswith(detail)


def test_parse_json_accepts_what_it_can_serve() -> None:
    assert parse_json(b'{"a": [1, 2.5, "\\u00e9", null]}') == {"a": [1, 2.5, "é", None]}
    assert parse_json(b"[" * 256 + b"]" * 256, what="x") == parse_json(b"[" * 256 + b"]" * 256)
    digits = httputil.MAX_INT_DIGITS
    assert parse_json(b"-" + b"9" * digits) == -int("9" * digits)
    with pytest.raises(HttpError, match=f"an integer of {digits + 1} digits exceeds the limit of {digits}"):
        parse_json(b"9" * (digits + 1))
    with pytest.raises(HttpError, match=r"^input is empty"):
        parse_json(b"", what="input")


def test_query_int() -> None:
    assert query_int(request(b"n=5"), "n", 1, 5) == 5
    assert query_int(request(b"n=1"), "n", 1, 5) == 1
    assert query_int(request(b""), "n", 1, 5, default=3) == 3
    for raw in (b"n=0", b"n=6", b"n=-1", b"n=x", b"n=%C2%B2", b"n=" + b"9" * 19):
        with pytest.raises(HttpError) as caught:
            query_int(request(raw), "n", 1, 5)
        assert (caught.value.status, caught.value.detail) == (400, "n must be an integer between 1 and 5")


def test_presented_key_and_matching() -> None:
    assert presented_key(request(headers={"Authorization": "Bearer  k1 "}), allow_raw=False) == "k1"
    assert presented_key(request(headers={"Authorization": "bearer k1"}), allow_raw=False) == "k1"
    assert presented_key(request(headers={"Authorization": "k2"}), allow_raw=True) == "k2"
    assert presented_key(request(headers={"Authorization": "k2"}), allow_raw=False) is None
    assert presented_key(request(b"api_key=k3"), allow_raw=True, allow_query=True) == "k3"
    assert presented_key(request(b"api_key=k3"), allow_raw=True) is None
    assert key_matches("k", "k") is True
    assert key_matches("k", "K") is False
    assert key_matches(None, "k") is False
    assert key_matches("\ud800", "k") is False


def test_read_body_limits() -> None:
    async def read(req: Request, limit: int) -> bytes:
        return await httputil.read_body(req, limit)

    mb = httputil.MB
    assert asyncio.run(read(request(body=b"x" * 10), mb)) == b"x" * 10
    assert asyncio.run(read(request(body=b"x" * mb), mb)) == b"x" * mb
    with pytest.raises(HttpError, match=r"^request body exceeds the limit of 1 MB$"):
        asyncio.run(read(request(body=b"x" * (mb + 1)), mb))
    with pytest.raises(HttpError, match=rf"^request body is {2 * mb} bytes; the limit is 1 MB$"):
        asyncio.run(read(request(headers={"Content-Length": str(2 * mb)}), mb))
    with pytest.raises(HttpError, match=r"^request body is over 1 MB; the limit is 1 MB$"):
        asyncio.run(read(request(headers={"Content-Length": "9" * 19}), mb))
    for status_of in (
        request(body=b"x" * (mb + 1)),
        request(headers={"Content-Length": str(2 * mb)}),
        request(headers={"Content-Length": "9" * 19}),
    ):
        with pytest.raises(HttpError) as caught:
            asyncio.run(read(status_of, mb))
        assert caught.value.status == 400
    # Chunks are added up: two that fit one by one may not fit together.
    chunks = [b"x" * (mb // 2 + 1), b"x" * (mb // 2 + 1)]

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": chunks.pop(0), "more_body": bool(chunks)}

    with pytest.raises(HttpError, match=r"^request body exceeds the limit of 1 MB$"):
        asyncio.run(read(Request({"type": "http", "query_string": b"", "headers": []}, receive), mb))
    # A declared length at the limit is read (and then measured).
    assert asyncio.run(read(request(headers={"Content-Length": str(mb)}, body=b"ab"), mb)) == b"ab"


# --- long polls: woken by what they wait for, ended by a shut-down --------------------------
# A wake-up that never comes would end each poll empty after its hold (a few seconds).


def submit_during_take(jobs: JobService, hold: float) -> tuple[Job, list[Job]]:
    """A take holding for ``hold`` seconds, and a job submitted while it waits."""

    async def scenario() -> tuple[Job, list[Job]]:
        waiter = asyncio.create_task(jobs.take("ep", "w1", 1, hold, lambda: True))
        await asyncio.sleep(0)  # the take is now waiting
        job = jobs.submit("ep", {"input": 1}, sync=False)
        return job, await waiter

    return asyncio.run(scenario())


def test_a_waiting_take_gets_a_job_submitted_meanwhile(tmp_path: Path) -> None:
    _store, jobs, _listener = service(tmp_path)
    job, taken = submit_during_take(jobs, 5.0)
    assert [t.id for t in taken] == [job.id]
    assert jobs.held_job("w1", job.id) is not None


def test_a_short_hold_waits_too(tmp_path: Path) -> None:
    """A hold under a second is a wait like any other (the SDK polls with its own holds)."""
    _store, jobs, _listener = service(tmp_path)
    job, taken = submit_during_take(jobs, 0.9)
    assert [t.id for t in taken] == [job.id]
    assert take(jobs) == []  # and an empty queue answers nothing after the hold


def test_a_take_while_not_accepting_or_shut_down_hands_out_nothing(tmp_path: Path) -> None:
    _store, jobs, _listener = service(tmp_path)
    job = jobs.submit("ep", {"input": 1}, sync=False)

    async def refused() -> list[Job]:
        return await jobs.take("ep", "w1", 1, 5.0, lambda: False)

    assert asyncio.run(refused()) == []

    async def shut_while_waiting() -> tuple[list[Job], list[str]]:
        taker = asyncio.create_task(jobs.take("other", "w1", 1, 5.0, lambda: True))
        stops = asyncio.create_task(jobs.stop_signals("w1", 5.0))
        await asyncio.sleep(0)
        jobs.shut_down()
        return await taker, await stops

    assert asyncio.run(shut_while_waiting()) == ([], [])
    assert take(jobs) == []  # the queued job stays queued for the next start
    assert jobs.get("ep", job.id) is not None
    assert (jobs.get("ep", job.id) or job).status == "IN_QUEUE"


def test_a_waiting_stop_poll_gets_the_cancelled_job(tmp_path: Path) -> None:
    _store, jobs, _listener = service(tmp_path)
    job = jobs.submit("ep", {"input": 1}, sync=False)
    (held,) = take(jobs)

    async def scenario() -> list[str]:
        stops = asyncio.create_task(jobs.stop_signals("w1", 5.0))
        await asyncio.sleep(0)
        jobs.cancel(held)
        return await stops

    assert asyncio.run(scenario()) == [job.id]
    assert jobs.held_job("w1", job.id) is None  # cancelled: its reports are no longer taken


def test_wait_final_returns_when_the_job_completes(tmp_path: Path) -> None:
    store, jobs, _listener = service(tmp_path)
    jobs.submit("ep", {"input": 1}, sync=True)
    (held,) = take(jobs)

    async def scenario() -> Job | None:
        waiter = asyncio.create_task(jobs.wait_final(held, 5.0))
        await asyncio.sleep(0)
        jobs.complete(held, {"output": {"ok": True}})
        for _ in range(10):  # a few turns of the loop, not the 5 s hold
            await asyncio.sleep(0)
        assert waiter.done()
        return await waiter

    final = asyncio.run(scenario())
    assert final is not None
    assert (final.status, final.output) == ("COMPLETED", {"ok": True})
    assert asyncio.run(jobs.wait_final(final, 5.0)) == stored(store, held.id)  # final: no wait


def test_wait_final_gives_the_unfinished_job_when_its_wait_ends(tmp_path: Path) -> None:
    store, jobs, _listener = service(tmp_path)
    jobs.submit("ep", {"input": 1}, sync=True)
    (held,) = take(jobs)

    async def scenario() -> tuple[Job | None, Job | None]:
        waited = await jobs.wait_final(held, 0.01)
        store.delete_job(held.id)
        return waited, await jobs.wait_final(held, 0.01)

    waited, removed = asyncio.run(scenario())
    assert waited is not None
    assert waited.status == "IN_PROGRESS"
    assert removed is None  # removed meanwhile


def test_progress_streams_and_counts(tmp_path: Path) -> None:
    store, jobs, _listener = service(tmp_path)
    a, b, _c, d = (jobs.submit("ep", {"input": i}, sync=False) for i in range(4))
    ja, jb, jc = take(jobs, 3)
    jobs.progress(ja, {"step": 1})
    assert stored(store, a.id).output == {"step": 1}
    jobs.stream_chunk(ja, "x")
    jobs.stream_chunk(ja, {"y": 2})
    assert jobs.drain_stream(ja) == ["x", {"y": 2}]
    assert jobs.drain_stream(ja) == []
    jobs.complete(ja, {"output": 1})
    jobs.complete(jb, {"error": "boom"})
    jobs.time_out(jc)
    jobs.retry(stored(store, b.id))
    assert jobs.counts("ep") == {"completed": 1, "failed": 1, "inProgress": 0, "inQueue": 2, "retried": 1}
    assert jobs.counts("other") == {"completed": 0, "failed": 0, "inProgress": 0, "inQueue": 0, "retried": 0}
    assert {job.id for job in store.queued_jobs()} == {b.id, d.id}


def test_json_bodies_and_lookups() -> None:
    mb = httputil.MB
    assert asyncio.run(httputil.json_body(request(body=b'{"a": [1]}'), mb)) == {"a": [1]}
    with pytest.raises(HttpError, match=r"^request body is empty; expected JSON$"):
        asyncio.run(httputil.json_body(request(body=b" "), mb))
    with pytest.raises(HttpError, match=r"^request body exceeds the limit of 1 MB$"):
        asyncio.run(httputil.json_body(request(body=b"1" * (mb + 1)), mb))
    assert asyncio.run(httputil.optional_json(request(body=b" \n"), mb)) is None
    assert asyncio.run(httputil.optional_json(request(body=b"[]"), mb)) == []
    with pytest.raises(HttpError, match=r"^request body is not valid JSON: "):
        asyncio.run(httputil.optional_json(request(body=b"{"), mb))
    with pytest.raises(HttpError, match=r"^the patch ") as caught:
        asyncio.run(httputil.optional_json(request(body=b"{"), mb, what="the patch"))
    assert caught.value.status == 400
    assert httputil.found(0, "job") == 0  # a falsy value is still found
    assert HttpError(400, "bad", ["a: x"]).errors == ["a: x"]
    with pytest.raises(HttpError) as caught:
        httputil.found(None, "endpoint e1")
    assert (caught.value.status, caught.value.detail) == (404, "endpoint e1 not found")


def test_the_sweep_loop_outlives_a_failing_sweep(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store, jobs, _listener = service(tmp_path)
    store.close()  # every sweep now fails with a StoreError

    async def scenario() -> None:
        loop = asyncio.create_task(run_forever(jobs, 0))
        for _ in range(20):
            await asyncio.sleep(0)
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop

    with caplog.at_level(logging.ERROR, logger="rpdeploy.emulator.sweeper"):
        asyncio.run(scenario())
    failures = [r for r in caplog.records if r.getMessage() == "sweep failed"]
    assert len(failures) >= 2  # it went on after the first
    assert all(r.exc_info and isinstance(r.exc_info[1], StoreError) for r in failures)
