"""The job API (`api.runpod.ai/v2/{endpoint_id}/...`) and the per-endpoint job queue.

Semantics follow RunPod's operation reference (runpod-platform.md §4): `run` and
`runsync` accept `{"input", "webhook"?, "policy"?, "s3Config"?}`; states are IN_QUEUE,
IN_PROGRESS, COMPLETED, FAILED, CANCELLED, TIMED_OUT; `delayTime` and `executionTime`
are ms; `/stream` drains (each chunk once); results are kept 30 min (`/run`) or
1 min (`/runsync`, up to 5 min with `?wait=`); `policy.ttl` expiry removes the job (404);
`policy.executionTimeout` ends it TIMED_OUT and sends the worker a stop signal.

The queue lives in SQLite; this module keeps only wake-up events in memory, so an
accepted job survives an emulator restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from deploy.emulator.httputil import MB, HttpError, parse_json, read_body
from deploy.emulator.store import Job, Store

log = logging.getLogger("rpdeploy.emulator.jobs")

RUN_LIMIT = 10 * MB
RUNSYNC_LIMIT = 20 * MB
STREAM_CHUNK_LIMIT = 1 * MB
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
RUN_RETENTION_S = 30 * 60
RUNSYNC_RETENTION_S = 60
RUNSYNC_MAX_RETENTION_S = 5 * 60
RUNSYNC_WAIT_DEFAULT_MS = 90_000
RUNSYNC_WAIT_RANGE_MS = (1_000, 300_000)
#: States the SDK's Job.status() treats as final, plus CANCELLED; webhooks go out for the first three.
WEBHOOK_STATES = frozenset({"COMPLETED", "FAILED", "TIMED_OUT"})
WEBHOOK_ATTEMPTS = 3  # the first try and RunPod's 2 retries


class WorkerEvents(Protocol):
    """What the job queue tells the worker plane."""

    def queue_changed(self, endpoint_id: str) -> None: ...

    def worker_released(self, worker_id: str) -> None: ...


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def new_job_id(sync: bool) -> str:
    job_id = str(uuid.uuid4())
    return f"sync-{job_id}" if sync else job_id


def _check_ms(policy: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = policy.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise HttpError(400, f"policy.{name} must be an integer number of milliseconds")
    if not low <= value <= high:
        raise HttpError(400, f"policy.{name} must be between {low} and {high} ms, got {value}")
    return value


def validate_request(body: Any) -> dict[str, Any]:
    """The run/runsync body checked: input present, webhook a URL, policy within RunPod's bounds."""
    if not isinstance(body, dict):
        raise HttpError(400, "request body must be a JSON object with an 'input' field")
    if "input" not in body:
        raise HttpError(400, "request body has no 'input' field")
    webhook = body.get("webhook")
    if webhook is not None and (
        not isinstance(webhook, str) or not webhook.startswith(("http://", "https://"))
    ):
        raise HttpError(400, "webhook must be an http(s) URL")
    policy = body.get("policy", {})
    if not isinstance(policy, dict):
        raise HttpError(400, "policy must be an object")
    unknown = sorted(set(policy) - {"executionTimeout", "ttl", "lowPriority"})
    if unknown:
        raise HttpError(400, f"policy has unknown field(s): {', '.join(unknown)}")
    _check_ms(policy, "executionTimeout", 5_000, WEEK_MS)
    _check_ms(policy, "ttl", 10_000, WEEK_MS)
    if not isinstance(policy.get("lowPriority", False), bool):
        raise HttpError(400, "policy.lowPriority must be true or false")
    s3 = body.get("s3Config")
    if s3 is not None and not isinstance(s3, dict):
        raise HttpError(400, "s3Config must be an object")
    return body


def job_view(job: Job) -> dict[str, Any]:
    """The `/status` answer for a job."""
    view: dict[str, Any] = {}
    if job.started_at is not None:
        view["delayTime"] = _ms(job.started_at - job.created_at)
        if job.completed_at is not None:
            view["executionTime"] = _ms(job.completed_at - job.started_at)
    view["id"] = job.id
    if job.has_output:
        view["output"] = job.output
    if job.error is not None:
        view["error"] = job.error
    view["status"] = job.status
    if job.worker_id is not None:
        view["workerId"] = job.worker_id
    return view


class JobService:
    def __init__(
        self,
        store: Store,
        endpoint_timeout_ms: Callable[[str], int | None],
        webhook_retry_interval_s: float,
    ) -> None:
        self.store = store
        self._endpoint_timeout_ms = endpoint_timeout_ms
        self.webhook_retry_interval_s = webhook_retry_interval_s
        self.listener: WorkerEvents | None = None
        self._queues: dict[str, deque[str]] = {}
        self._wakeups: dict[str, asyncio.Event] = {}
        self._done: dict[str, asyncio.Event] = {}
        self._held: dict[str, set[str]] = {}
        self._stops: dict[str, set[str]] = {}
        self._stop_wakeups: dict[str, asyncio.Event] = {}
        self._worker_endpoint: dict[str, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None
        self._closing = False

    # -- startup and recovery ----------------------------------------------------------------

    def recover(self, reason: str) -> int:
        """Rebuild the queues from SQLite; fail jobs that workers of a previous run held.

        Returns how many held jobs were failed. Requeueing them could run a
        non-idempotent handler twice, so they fail with an error that says why (the
        client can /retry them), as RunPod fails a job whose worker disappears.
        """
        failed = 0
        for job in self.store.jobs_where("status = 'IN_PROGRESS'"):
            self._finish(job, "FAILED", error=f"{reason} (worker {job.worker_id} was running it)")
            failed += 1
        for job in self.store.jobs_where("status = 'IN_QUEUE'"):
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
        event = self._wakeups.pop(endpoint_id, None)
        if event is not None:
            event.set()
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

    def submit(self, endpoint_id: str, body: dict[str, Any], sync: bool, retention_s: float) -> Job:
        now = time.time()
        policy = dict(body.get("policy") or {})
        options: dict[str, Any] = {"policy": policy, "retention_s": retention_s}
        if body.get("s3Config") is not None:
            options["s3Config"] = body["s3Config"]
        job = Job(
            id=new_job_id(sync),
            endpoint_id=endpoint_id,
            status="IN_QUEUE",
            input=body["input"],
            options=options,
            sync=sync,
            low_priority=bool(policy.get("lowPriority", False)),
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
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            event = self._wakeups.setdefault(endpoint_id, asyncio.Event())
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                return []

    def _pop(self, endpoint_id: str, worker_id: str, count: int) -> list[Job]:
        queue = self._queue(endpoint_id)
        taken: list[Job] = []
        now = time.time()
        while queue and len(taken) < count:
            job = self.store.job(queue.popleft())
            if job is None or job.status != "IN_QUEUE":
                continue
            job.status = "IN_PROGRESS"
            job.worker_id = worker_id
            job.started_at = now
            timeout_ms = job.options["policy"].get("executionTimeout") or self._endpoint_timeout_ms(
                endpoint_id
            )
            job.exec_deadline = now + timeout_ms / 1000 if timeout_ms else None
            self.store.save_job(job)
            self._held.setdefault(worker_id, set()).add(job.id)
            self._worker_endpoint[worker_id] = endpoint_id
            taken.append(job)
        if taken and self.listener is not None:
            self.listener.queue_changed(endpoint_id)
        return taken

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

    def _signal_stop(self, job: Job) -> None:
        if job.worker_id is None:
            return
        self._stops.setdefault(job.worker_id, set()).add(job.id)
        event = self._stop_wakeups.pop(job.worker_id, None)
        if event is not None:
            event.set()

    def resignal_stops(self, endpoint_id: str, worker_id: str, running: list[str]) -> None:
        """A ping lists jobs the worker still runs; stop again any that already ended here.

        The SDK drops a stop signal that arrives before the job's task starts
        (`JobScaler.stop_job` finds no task), so one signal is not always enough.
        """
        for job_id in running:
            if job_id in self._held.get(worker_id, ()):
                continue
            job = self.store.job(job_id)
            if (
                job is not None
                and job.endpoint_id == endpoint_id
                and job.worker_id == worker_id
                and job.final
            ):
                self._signal_stop(job)

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
        if job is None or job.endpoint_id != endpoint_id or self._expired(job, time.time()):
            return None
        return job

    def cancel(self, job: Job) -> Job:
        if job.status == "IN_QUEUE":
            with contextlib.suppress(ValueError):
                self._queue(job.endpoint_id).remove(job.id)
            self._finish(job, "CANCELLED")
            self._changed(job.endpoint_id)
        elif job.status == "IN_PROGRESS":
            self._signal_stop(job)
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
        self.store.clear_chunks(job.id)
        self.store.save_job(job)
        self.store.db.execute(
            "UPDATE jobs SET created_at=?, ttl_deadline=? WHERE id=?",
            (job.created_at, job.ttl_deadline, job.id),
        )
        self._queue(job.endpoint_id).append(job.id)
        self._changed(job.endpoint_id)
        return job

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

    async def wait_final(self, job: Job, timeout_s: float) -> Job:
        if not job.final:
            event = self._done.setdefault(job.id, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout_s)
        return self.store.job(job.id) or job

    def forget_endpoint(self, endpoint_id: str) -> None:
        """Endpoint deleted: cancel its queued and running jobs (RunPod: they are cancelled)."""
        for job in self.store.jobs_where(
            "endpoint_id = ? AND status IN ('IN_QUEUE', 'IN_PROGRESS')", (endpoint_id,)
        ):
            self.cancel(job)
        self._queues.pop(endpoint_id, None)
        self.wake_takers(endpoint_id)

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
        job.retain_until = now + float(job.options.get("retention_s", RUN_RETENTION_S))
        self.store.save_job(job)
        event = self._done.pop(job.id, None)
        if event is not None:
            event.set()
        if job.webhook and status in WEBHOOK_STATES:
            self._spawn(self._deliver_webhook(job.webhook, self.webhook_record(job)))

    @staticmethod
    def webhook_record(job: Job) -> dict[str, Any]:
        """The full job record RunPod posts to a webhook (runpod/runpod-python#409, #410)."""
        record = job_view(job)
        record.pop("workerId", None)
        record["input"] = job.input
        record["webhook"] = job.webhook
        return dict(sorted(record.items()))

    # -- sweeper: TTL, execution timeout, retention --------------------------------------------------

    @staticmethod
    def _expired(job: Job, now: float) -> bool:
        if job.final:
            return job.retain_until is not None and job.retain_until <= now
        return job.ttl_deadline <= now

    def sweep(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        for job in self.store.jobs_where(
            "status = 'IN_PROGRESS' AND exec_deadline IS NOT NULL AND exec_deadline <= ?", (now,)
        ):
            self._signal_stop(job)
            self._finish(job, "TIMED_OUT", error="job exceeded its execution timeout")
        for job in self.store.jobs_where(
            "status IN ('IN_QUEUE', 'IN_PROGRESS') AND ttl_deadline <= ?", (now,)
        ):
            # RunPod: "If TTL expires while a job is running, the job is immediately removed".
            self._signal_stop(job)
            self._release(job)
            with contextlib.suppress(ValueError):
                self._queue(job.endpoint_id).remove(job.id)
            self.store.delete_job(job.id)
            self._wake_done(job.id)
        for job in self.store.jobs_where("retain_until IS NOT NULL AND retain_until <= ?", (now,)):
            if job.final:
                self.store.delete_job(job.id)

    def _wake_done(self, job_id: str) -> None:
        event = self._done.pop(job_id, None)
        if event is not None:
            event.set()

    async def sweep_forever(self, interval_s: float) -> None:
        while True:
            try:
                self.sweep()
            except Exception:  # a sweep must never kill the loop that enforces TTLs
                log.exception("sweep failed")
            await asyncio.sleep(interval_s)

    # -- webhooks -----------------------------------------------------------------------------------

    def _spawn(self, coroutine: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver_webhook(self, url: str, record: dict[str, Any]) -> None:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=10.0)
        for attempt in range(1, WEBHOOK_ATTEMPTS + 1):
            try:
                response = await self._http.post(url, json=record)
                if response.status_code == 200:
                    return
                outcome = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            log.warning("webhook for job %s attempt %d failed: %s", record["id"], attempt, outcome)
            if attempt < WEBHOOK_ATTEMPTS:
                await asyncio.sleep(self.webhook_retry_interval_s)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._http is not None:
            await self._http.aclose()


def router(
    service: JobService,
    endpoint_exists: Callable[[str], bool],
    worker_counts: Callable[[str], dict[str, int]],
) -> APIRouter:
    """Routes of the job API. Auth is checked by the app (raw key or Bearer)."""
    api = APIRouter()

    def require_endpoint(endpoint_id: str) -> None:
        if not endpoint_exists(endpoint_id):
            raise HttpError(404, f"endpoint {endpoint_id} not found")

    def require_job(endpoint_id: str, job_id: str) -> Job:
        require_endpoint(endpoint_id)
        job = service.get(endpoint_id, job_id)
        if job is None:
            raise HttpError(404, f"job {job_id} not found")
        return job

    async def accept(request: Request, endpoint_id: str, limit: int, sync: bool, retention_s: float) -> Job:
        require_endpoint(endpoint_id)
        body = validate_request(parse_json(await read_body(request, limit)))
        return service.submit(endpoint_id, body, sync=sync, retention_s=retention_s)

    @api.post("/v2/{endpoint_id}/run")
    async def run(endpoint_id: str, request: Request) -> Response:
        job = await accept(request, endpoint_id, RUN_LIMIT, sync=False, retention_s=RUN_RETENTION_S)
        return JSONResponse({"id": job.id, "status": job.status})

    @api.post("/v2/{endpoint_id}/runsync")
    async def runsync(endpoint_id: str, request: Request) -> Response:
        raw_wait = request.query_params.get("wait")
        wait_ms = _wait_ms(raw_wait)
        retention: float = RUNSYNC_RETENTION_S
        if raw_wait is not None:  # an explicit ?wait= keeps the result up to 5 min
            retention = min(max(RUNSYNC_RETENTION_S, wait_ms / 1000), RUNSYNC_MAX_RETENTION_S)
        job = await accept(request, endpoint_id, RUNSYNC_LIMIT, sync=True, retention_s=retention)
        job = await service.wait_final(job, wait_ms / 1000)
        if not job.final:
            return JSONResponse({"id": job.id, "status": job.status})
        return JSONResponse(job_view(job))

    @api.get("/v2/{endpoint_id}/status/{job_id}")
    @api.post("/v2/{endpoint_id}/status/{job_id}")
    async def status(endpoint_id: str, job_id: str, request: Request) -> Response:
        job = require_job(endpoint_id, job_id)
        ttl = request.query_params.get("ttl")
        if ttl is not None and job.final:
            # `?ttl=<ms>` on a status call sets how long the finished result stays retrievable.
            if not ttl.isdigit() or not 10_000 <= int(ttl) <= WEEK_MS:
                raise HttpError(400, "ttl must be an integer between 10000 and 604800000 ms")
            job.retain_until = time.time() + int(ttl) / 1000
            service.store.save_job(job)
        return JSONResponse(job_view(job))

    @api.get("/v2/{endpoint_id}/stream/{job_id}")
    @api.post("/v2/{endpoint_id}/stream/{job_id}")
    async def stream(endpoint_id: str, job_id: str) -> Response:
        job = require_job(endpoint_id, job_id)
        chunks = service.drain_stream(job)
        return JSONResponse({"status": job.status, "stream": [{"output": chunk} for chunk in chunks]})

    @api.post("/v2/{endpoint_id}/cancel/{job_id}")
    async def cancel(endpoint_id: str, job_id: str) -> Response:
        job = service.cancel(require_job(endpoint_id, job_id))
        return JSONResponse({"id": job.id, "status": job.status})

    @api.post("/v2/{endpoint_id}/retry/{job_id}")
    async def retry(endpoint_id: str, job_id: str) -> Response:
        job = service.retry(require_job(endpoint_id, job_id))
        return JSONResponse({"id": job.id, "status": job.status})

    @api.post("/v2/{endpoint_id}/purge-queue")
    async def purge_queue(endpoint_id: str) -> Response:
        require_endpoint(endpoint_id)
        return JSONResponse({"removed": service.purge(endpoint_id), "status": "completed"})

    @api.get("/v2/{endpoint_id}/health")
    async def health(endpoint_id: str) -> Response:
        require_endpoint(endpoint_id)
        return JSONResponse({"jobs": service.counts(endpoint_id), "workers": worker_counts(endpoint_id)})

    return api


def _wait_ms(raw: str | None) -> int:
    if raw is None:
        return RUNSYNC_WAIT_DEFAULT_MS
    low, high = RUNSYNC_WAIT_RANGE_MS
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise HttpError(400, f"wait must be an integer between {low} and {high} ms")
    return int(raw)
