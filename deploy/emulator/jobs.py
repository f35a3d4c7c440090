"""The per-endpoint job queue and every job transition (RunPod's job states, runpod-platform.md §4).

States are IN_QUEUE, IN_PROGRESS, COMPLETED, FAILED, CANCELLED, TIMED_OUT. The queue
lives in SQLite (the store); this module keeps only in-memory wake-up events and
which worker holds which job, so an accepted job survives an emulator restart.
Request checks and views are in job_requests, the HTTP routes in job_routes,
expiry in sweeper, webhook delivery in webhooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from deploy.emulator.httputil import HttpError
from deploy.emulator.job_requests import DAY_MS, RUN_RETENTION_S, new_job_id, retention_s, webhook_record
from deploy.emulator.store import Job, Store, StoreError
from deploy.emulator.webhooks import WEBHOOK_STATES, WebhookSender

log = logging.getLogger("rpdeploy.emulator.jobs")


class WorkerEvents(Protocol):
    """What the job queue tells the worker plane."""

    def queue_changed(self, endpoint_id: str) -> None: ...

    def worker_released(self, worker_id: str) -> None: ...


class JobService:
    """Owns the job queues, job transitions, the worker-to-job holdings and stop signals.

    The durable job records belong to the Store; this service decides every change
    to them. It never touches docker: the worker plane listens through WorkerEvents.
    """

    def __init__(
        self,
        store: Store,
        endpoint_timeout_ms: Callable[[str], int | None],
        webhook_retry_interval_s: float,
    ) -> None:
        self.store = store
        self._endpoint_timeout_ms = endpoint_timeout_ms
        self.webhooks = WebhookSender(webhook_retry_interval_s)
        self.listener: WorkerEvents | None = None
        self._queues: dict[str, deque[str]] = {}
        self._wakeups: dict[str, asyncio.Event] = {}
        self._done: dict[str, asyncio.Event] = {}
        self._held: dict[str, set[str]] = {}
        self._stops: dict[str, set[str]] = {}
        self._stop_wakeups: dict[str, asyncio.Event] = {}
        self._worker_endpoint: dict[str, str] = {}
        self._closing = False  # pragma: no mutate (only tested for truth: None is the same)

    # -- startup and recovery ----------------------------------------------------------------

    def recover(self, reason: str) -> int:
        """Rebuild the queues from SQLite; fail jobs that workers of a previous run held.

        Returns how many held jobs were failed. Requeueing them could run a
        non-idempotent handler twice, so they fail with an error that says why (the
        client can /retry them), as RunPod fails a job whose worker disappears.
        """
        failed = 0
        for job in self.store.running_jobs():
            self._finish(job, "FAILED", error=f"{reason} (worker {job.worker_id} was running it)")
            failed += 1
        for job in self.store.queued_jobs():
            self._queue(job.endpoint_id).append(job.id)
        return failed

    def shut_down(self) -> None:
        """The server is stopping: end every long poll now and hand out no more jobs."""
        self._closing = True
        for event in [*self._wakeups.values(), *self._stop_wakeups.values()]:
            event.set()
        self._wakeups.clear()
        self._stop_wakeups.clear()

    # -- queue -------------------------------------------------------------------------------

    def _queue(self, endpoint_id: str) -> deque[str]:
        return self._queues.setdefault(endpoint_id, deque())

    def _changed(self, endpoint_id: str) -> None:
        """Wake every long poll waiting on this endpoint's queue."""
        self.wake_takers(endpoint_id)
        if self.listener is not None:
            self.listener.queue_changed(endpoint_id)

    def wake_takers(self, endpoint_id: str) -> None:
        """Wake long polls without a queue change (a worker started draining)."""
        event = self._wakeups.pop(endpoint_id, None)
        if event is not None:
            event.set()

    def queue_stats(self, endpoint_id: str, now: float | None = None) -> tuple[int, int, float]:
        """(queued jobs that may trigger scaling, jobs held by workers, oldest wait in seconds)."""
        now = time.time() if now is None else now
        queued, oldest = self.store.queue_summary(endpoint_id)
        held = sum(
            len(jobs) for wid, jobs in self._held.items() if self._worker_endpoint.get(wid) == endpoint_id
        )
        return queued, held, (now - oldest) if oldest is not None else 0.0

    def held_by(self, worker_id: str) -> set[str]:
        return set(self._held.get(worker_id, ()))

    def submit(
        self, endpoint_id: str, body: dict[str, Any], *, sync: bool, wait_ms: int | None = None
    ) -> Job:
        """Queue a checked run/runsync body; the result retention follows from ``sync`` and ``wait_ms``."""
        now = time.time()
        policy = dict(body.get("policy") or {})
        options: dict[str, Any] = {"policy": policy, "retention_s": retention_s(sync, wait_ms)}
        if body.get("s3Config") is not None:
            options["s3Config"] = body["s3Config"]
        job = Job(
            id=new_job_id(sync),
            endpoint_id=endpoint_id,
            status="IN_QUEUE",
            input=body["input"],
            options=options,
            sync=sync,
            # bool() of an absent value is False whatever the default: its mutants are equivalent.
            low_priority=bool(policy.get("lowPriority", False)),  # pragma: no mutate
            created_at=now,
            ttl_deadline=now + policy.get("ttl", DAY_MS) / 1000,
            webhook=body.get("webhook"),
        )
        self.store.insert_job(job)
        self._queue(endpoint_id).append(job.id)
        self._changed(endpoint_id)
        return job

    async def take(
        self, endpoint_id: str, worker_id: str, count: int, hold_s: float, accepting: Callable[[], bool]
    ) -> list[Job]:
        """Long poll: up to ``count`` queued jobs for a worker, waiting at most ``hold_s``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + hold_s
        while True:
            if self._closing or not accepting():
                return []
            jobs = self._pop(endpoint_id, worker_id, count)
            if jobs:
                return jobs
            event = self._wakeups.setdefault(endpoint_id, asyncio.Event())
            try:
                # A deadline already passed times out at once (wait_for with a timeout <= 0).
                await asyncio.wait_for(event.wait(), deadline - loop.time())
            except TimeoutError:
                return []

    def _pop(self, endpoint_id: str, worker_id: str, count: int) -> list[Job]:
        queue = self._queue(endpoint_id)
        taken: list[Job] = []
        now = time.time()
        while queue and len(taken) < count:
            job_id = queue.popleft()
            try:
                job = self.store.job(job_id)
                if job is None or job.status != "IN_QUEUE":
                    continue
                started = self._start(job, worker_id, now)
            except StoreError:
                # The record could not change (full disk): keep the job queued, not lost.
                queue.appendleft(job_id)
                self.give_back(taken)
                raise
            if not started:
                continue
            taken.append(job)
        if taken and self.listener is not None:
            self.listener.queue_changed(endpoint_id)
        return taken

    def _start(self, job: Job, worker_id: str, now: float) -> bool:
        """Hand ``job`` to ``worker_id``; False if it cannot start here (then it ends FAILED, with why)."""
        try:
            timeout_ms = job.options["policy"].get("executionTimeout") or self._endpoint_timeout_ms(
                job.endpoint_id
            )
            exec_deadline = now + timeout_ms / 1000 if timeout_ms else None
        except (ArithmeticError, ValueError, TypeError, KeyError) as exc:
            # Such a job would fail every take and block the queue behind it: end it and go on.
            log.exception("job %s cannot be handed to a worker", job.id)
            self._finish(job, "FAILED", error=f"the emulator could not hand this job to a worker: {exc}")
            return False
        job.status = "IN_PROGRESS"
        job.worker_id = worker_id
        job.started_at = now
        job.exec_deadline = exec_deadline
        self.store.save_job(job)
        self._held.setdefault(worker_id, set()).add(job.id)
        self._worker_endpoint[worker_id] = job.endpoint_id
        return True

    def give_back(self, jobs: list[Job]) -> None:
        """Put jobs a worker never received (its poll was gone) back at the head of the queue."""
        for job in reversed(jobs):
            current = self.store.job(job.id)
            if current is None or current.status != "IN_PROGRESS":
                continue
            self._release(current)
            current.status = "IN_QUEUE"
            current.worker_id = None
            current.started_at = None
            current.exec_deadline = None
            self.store.save_job(current)
            self._queue(current.endpoint_id).appendleft(current.id)
            self._changed(current.endpoint_id)

    @staticmethod
    def worker_payload(job: Job) -> dict[str, Any]:
        """What job-take hands the worker: id and input (extra keys reach the handler's job dict)."""
        payload: dict[str, Any] = {"id": job.id, "input": job.input}
        if job.webhook is not None:
            payload["webhook"] = job.webhook
        if "s3Config" in job.options:
            payload["s3Config"] = job.options["s3Config"]
        return payload

    # -- reports from workers -----------------------------------------------------------------

    def held_job(self, worker_id: str, job_id: str) -> Job | None:
        """The job if this worker holds it now; None if it ended (cancelled, timed out) or is not its."""
        if job_id not in self._held.get(worker_id, ()):
            return None
        job = self.store.job(job_id)
        return job if job is not None and job.status == "IN_PROGRESS" else None

    def progress(self, job: Job, output: Any) -> None:
        job.output = output
        self.store.save_job(job)

    def stream_chunk(self, job: Job, output: Any) -> None:
        self.store.add_chunk(job.id, output)

    def complete(self, job: Job, result: dict[str, Any]) -> None:
        """A final job-done: `error` present means FAILED (output kept), otherwise COMPLETED."""
        if "output" in result:
            job.output = result["output"]
        if "error" in result and result["error"] is not None:
            self._finish(job, "FAILED", error=result["error"])
        else:
            self._finish(job, "COMPLETED")

    def fail(self, job: Job, reason: str) -> None:
        """End a held job FAILED with ``reason`` (a result the emulator refused)."""
        self._finish(job, "FAILED", error=reason)

    def worker_gone(self, worker_id: str, reason: str) -> None:
        """Fail every job a worker held when it died or was removed."""
        for job_id in sorted(self._held.get(worker_id, set())):
            job = self.store.job(job_id)
            if job is not None and job.status == "IN_PROGRESS":
                self._finish(job, "FAILED", error=reason)
        self._held.pop(worker_id, None)
        self._stops.pop(worker_id, None)
        self._stop_wakeups.pop(worker_id, None)
        self._worker_endpoint.pop(worker_id, None)

    # -- stop signals -----------------------------------------------------------------------------

    def _signal_stop(self, worker_id: str | None, job_id: str) -> None:
        if worker_id is None:
            return
        self._stops.setdefault(worker_id, set()).add(job_id)
        event = self._stop_wakeups.pop(worker_id, None)
        if event is not None:
            event.set()

    def resignal_stops(self, endpoint_id: str, worker_id: str, running: list[str]) -> None:
        """A ping lists jobs the worker still runs; stop again any that already ended here.

        The SDK drops a stop signal that arrives before the job's task starts
        (`JobScaler.stop_job` finds no task), so one signal is not always enough.
        """
        for job_id in running:
            # A job the worker still holds here is IN_PROGRESS, never final: it is not stopped.
            job = self.store.job(job_id)
            if (
                job is not None
                and job.endpoint_id == endpoint_id
                and job.worker_id == worker_id
                and job.final
            ):
                self._signal_stop(worker_id, job_id)

    async def stop_signals(self, worker_id: str, hold_s: float) -> list[str]:
        """Long poll for the ids of jobs this worker must stop."""
        pending = self._stops.pop(worker_id, None)
        if pending or self._closing:
            return sorted(pending or ())
        event = self._stop_wakeups.setdefault(worker_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), hold_s)
        return sorted(self._stops.pop(worker_id, set()))

    # -- client operations ------------------------------------------------------------------------

    def get(self, endpoint_id: str, job_id: str) -> Job | None:
        job = self.store.job(job_id)
        if job is None or job.endpoint_id != endpoint_id or self.expired(job, time.time()):
            return None
        return job

    def cancel(self, job: Job) -> Job:
        if job.status == "IN_QUEUE":
            with contextlib.suppress(ValueError):
                self._queue(job.endpoint_id).remove(job.id)
            self._finish(job, "CANCELLED")
            self._changed(job.endpoint_id)
        elif job.status == "IN_PROGRESS":
            self._signal_stop(job.worker_id, job.id)
            self._finish(job, "CANCELLED")
        return job

    def retry(self, job: Job) -> Job:
        if job.status not in {"FAILED", "TIMED_OUT"}:
            raise HttpError(
                400, f"job {job.id} is {job.status}; only FAILED or TIMED_OUT jobs can be retried"
            )
        job.status = "IN_QUEUE"
        job.retries += 1
        job.clear_output()
        job.error = None
        job.worker_id = None
        job.started_at = job.completed_at = job.exec_deadline = job.retain_until = None
        job.created_at = time.time()
        job.ttl_deadline = job.created_at + job.options["policy"].get("ttl", DAY_MS) / 1000
        self.store.restamp_job(job)
        self._queue(job.endpoint_id).append(job.id)
        self._changed(job.endpoint_id)
        return job

    def keep_result(self, job: Job, ttl_ms: int) -> None:
        """`status?ttl=`: keep a finished result ``ttl_ms`` from now (unfinished jobs: no effect)."""
        if job.final:
            job.retain_until = time.time() + ttl_ms / 1000
            self.store.save_job(job)

    def purge(self, endpoint_id: str) -> int:
        removed = 0
        queue = self._queue(endpoint_id)
        while queue:
            job = self.store.job(queue.popleft())
            if job is not None and job.status == "IN_QUEUE":
                self._finish(job, "CANCELLED")
                removed += 1
        self._changed(endpoint_id)
        return removed

    def drain_stream(self, job: Job) -> list[Any]:
        return self.store.drain_chunks(job.id)

    def counts(self, endpoint_id: str) -> dict[str, int]:
        counts = self.store.job_counts(endpoint_id)
        return {
            "completed": counts.get("COMPLETED", 0),
            "failed": counts.get("FAILED", 0) + counts.get("TIMED_OUT", 0),
            "inProgress": counts.get("IN_PROGRESS", 0),
            "inQueue": counts.get("IN_QUEUE", 0),
            "retried": self.store.retried_count(endpoint_id),
        }

    async def wait_final(self, job: Job, timeout_s: float) -> Job | None:
        """The job once final or after ``timeout_s``; None if it was removed meanwhile (TTL, deleted)."""
        if not job.final:
            event = self._done.setdefault(job.id, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout_s)
        return self.store.job(job.id)

    def forget_endpoint(self, endpoint_id: str) -> None:
        """Endpoint deleted (its records already gone from the store): stop its jobs, wake their waiters.

        Running jobs get a stop signal; `/runsync` calls waiting on any of them answer now.
        """
        for job_id in self._queues.pop(endpoint_id, deque()):
            self._wake_done(job_id)
        for worker_id, held in list(self._held.items()):
            if self._worker_endpoint.get(worker_id) != endpoint_id:
                continue
            for job_id in sorted(held):
                self._signal_stop(worker_id, job_id)
                self._wake_done(job_id)
            held.clear()
        for job in self.store.unfinished_jobs(endpoint_id):  # none unless deleted out of order
            self.cancel(job)
        self.store.delete_endpoint(endpoint_id)
        self.wake_takers(endpoint_id)

    # -- expiry (the sweeper decides when) ------------------------------------------------------

    @staticmethod
    def expired(job: Job, now: float) -> bool:
        if job.final:
            return job.retain_until is not None and job.retain_until <= now
        return job.ttl_deadline <= now

    def time_out(self, job: Job) -> None:
        """The job ran past its execution timeout: TIMED_OUT, and the worker is told to stop it."""
        self._signal_stop(job.worker_id, job.id)
        self._finish(job, "TIMED_OUT", error="job exceeded its execution timeout")

    def expire(self, job: Job) -> None:
        """The job's TTL passed: it is removed, running or not (RunPod: "immediately removed")."""
        self._signal_stop(job.worker_id, job.id)
        self._release(job)
        with contextlib.suppress(ValueError):
            self._queue(job.endpoint_id).remove(job.id)
        self.store.delete_job(job.id)
        self._wake_done(job.id)

    def drop_result(self, job: Job) -> None:
        """The finished job's retention passed: it is removed."""
        self.store.delete_job(job.id)

    # -- transitions ------------------------------------------------------------------------------

    def _release(self, job: Job) -> None:
        if job.worker_id is None:
            return
        held = self._held.get(job.worker_id)
        if held is not None:
            held.discard(job.id)
        if self.listener is not None:
            self.listener.worker_released(job.worker_id)

    def _finish(self, job: Job, status: str, error: Any = None) -> None:
        now = time.time()
        self._release(job)
        job.status = status
        if error is not None:
            job.error = error
        job.completed_at = now if job.started_at is not None else None
        job.exec_deadline = None
        # A record without retention_s (written by an older emulator) came from /run: 30 min.
        job.retain_until = now + float(job.options.get("retention_s", RUN_RETENTION_S))
        self.store.save_job(job)
        self._wake_done(job.id)
        if job.webhook and status in WEBHOOK_STATES:
            self.webhooks.send(job.webhook, webhook_record(job))

    def _wake_done(self, job_id: str) -> None:
        event = self._done.pop(job_id, None)
        if event is not None:
            event.set()

    async def close(self) -> None:
        await self.webhooks.close()
