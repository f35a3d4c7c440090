"""The validation runner: every case as a real job on an endpoint, concurrently, each checked
against its expectations.

Per case: submit (``/run``, or ``/runsync`` then ``/status`` if not done in its wait), poll
``/status`` (or drain ``/stream`` for streaming cases) with a growing pause, and stop at the
case's timeout: an overdue job is cancelled (``/cancel``) and its status read back, so no job
is left running and billing. Cases run on a thread pool (the work is waiting on HTTP); a
Ctrl-C cancels every job still in flight before it propagates.

Cold starts: the endpoint's workers are read before the run; a job that ran on a worker not
among them, and was the first to start there, met a cold worker (scale from zero or up).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from deploy.api import RunPodApi
from deploy.api.jobs import FINAL_STATES, JobsApi
from deploy.errors import ApiError
from deploy.release.cases import Case, CaseSet
from deploy.release.expect import Outcome, failures

#: Polling: first pause, growth factor and longest pause (s). RunPod allows 2000 /status calls
#: per 10 s per endpoint; four cases at the longest pause use a fraction of a percent of it.
POLL_FIRST_S = 0.05
POLL_GROWTH = 1.5
POLL_MAX_S = 1.0
#: Longest /runsync wait asked for: the HTTP read must end well within the client's timeout.
RUNSYNC_WAIT_MAX_MS = 20000
#: Pseudo-statuses for cases that ended without a final job status of their own.
ERROR = "ERROR"

__all__ = ["CaseResult", "ValidateListener", "ValidationReport", "run"]


class ValidateListener(Protocol):
    """Progress callbacks; called from the runner's threads, so they must be thread-safe."""

    def case_started(self, case: Case) -> None: ...

    def case_finished(self, result: CaseResult) -> None: ...


@dataclass(frozen=True)
class CaseResult:
    """One case's job and verdict. Times in ms; ``latency_ms`` is submit to final status, as seen here."""

    name: str
    status: str
    passed: bool
    delay_ms: int | None = None
    execution_ms: int | None = None
    latency_ms: int | None = None
    cold: bool = False
    #: The failure lines joined (None when passed); secrets masked.
    error: str | None = None
    failures: list[str] = field(default_factory=list)
    job_id: str | None = None
    worker_id: str | None = None
    #: The runner cancelled the job at the case's timeout (read back as CANCELLED).
    cancelled: bool = False
    chunks: int | None = None
    source: str = ""
    #: Seconds from the run's start to the job's start on its worker (orders cold starts).
    started_s: float | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "passed": self.passed,
            "delay_ms": self.delay_ms,
            "execution_ms": self.execution_ms,
            "latency_ms": self.latency_ms,
            "cold": self.cold,
            "error": self.error,
            "failures": self.failures,
            "job_id": self.job_id,
            "worker_id": self.worker_id,
            "cancelled": self.cancelled,
            "chunks": self.chunks,
            "source": self.source,
        }


def percentile(values: Iterable[int], fraction: float) -> int | None:
    """Nearest-rank percentile (None for no values)."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def _latency_summary(results: list[CaseResult]) -> dict[str, int | None]:
    latencies = [r.latency_ms for r in results if r.latency_ms is not None]
    return {
        "count": len(results),
        "p50_ms": percentile(latencies, 0.5),
        "p95_ms": percentile(latencies, 0.95),
    }


@dataclass(frozen=True)
class ValidationReport:
    endpoint_id: str
    tests: list[CaseResult]
    wall_ms: int = 0
    concurrency: int = 1
    warnings: list[str] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(1 for r in self.tests if r.passed)

    @property
    def failed(self) -> int:
        return len(self.tests) - self.passed

    @property
    def ok(self) -> bool:
        return self.failed == 0

    @property
    def p50_ms(self) -> int | None:
        return percentile((r.latency_ms for r in self.tests if r.latency_ms is not None), 0.5)

    @property
    def p95_ms(self) -> int | None:
        return percentile((r.latency_ms for r in self.tests if r.latency_ms is not None), 0.95)

    def to_json(self) -> dict[str, Any]:
        return {
            "endpoint_id": self.endpoint_id,
            "passed": self.passed,
            "failed": self.failed,
            "ok": self.ok,
            "tests": [r.to_json() for r in self.tests],
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "cold": _latency_summary([r for r in self.tests if r.cold]),
            "warm": _latency_summary([r for r in self.tests if not r.cold and r.latency_ms is not None]),
            "wall_ms": self.wall_ms,
            "concurrency": self.concurrency,
            "warnings": self.warnings,
        }


def run(
    api: RunPodApi,
    endpoint_id: str,
    cases: CaseSet,
    *,
    concurrency: int = 4,
    listener: ValidateListener | None = None,
) -> ValidationReport:
    """Run every case on ``endpoint_id``; ApiError (exit 3) when the endpoint cannot be read."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    warm_before = _worker_ids(api, endpoint_id)
    runner = _Runner(api.jobs, endpoint_id, cases, listener)
    started = time.monotonic()
    results = runner.run_all(concurrency)
    wall_ms = round((time.monotonic() - started) * 1000)
    return ValidationReport(
        endpoint_id=endpoint_id,
        tests=mark_cold(results, warm_before),
        wall_ms=wall_ms,
        concurrency=concurrency,
        warnings=list(cases.warnings),
    )


def _worker_ids(api: RunPodApi, endpoint_id: str) -> set[str]:
    """Workers up before the run (their jobs are warm). Also proves the endpoint exists."""
    answer = api.workers(endpoint_id)
    workers = answer.get("workers")
    return (
        {str(w["id"]) for w in workers if isinstance(w, dict) and "id" in w}
        if isinstance(workers, list)
        else set()
    )


def mark_cold(results: list[CaseResult], warm_before: set[str]) -> list[CaseResult]:
    """Each new worker's first job is cold; without worker ids, the first job when none was up."""
    first: dict[str | None, CaseResult] = {}
    for result in results:
        if result.started_s is None or result.worker_id in warm_before:
            continue
        if result.worker_id is None and warm_before:
            continue
        seen = first.get(result.worker_id)
        if seen is None or (seen.started_s is not None and result.started_s < seen.started_s):
            first[result.worker_id] = result
    cold = {id(result) for result in first.values()}
    return [replace(r, cold=True) if id(r) in cold else r for r in results]


class _Runner:
    def __init__(
        self, jobs: JobsApi, endpoint_id: str, cases: CaseSet, listener: ValidateListener | None
    ) -> None:
        self.jobs = jobs
        self.endpoint_id = endpoint_id
        self.cases = cases
        self.listener = listener
        self.origin = time.monotonic()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.in_flight: set[str] = set()

    def run_all(self, concurrency: int) -> list[CaseResult]:
        pool = ThreadPoolExecutor(max_workers=min(concurrency, max(1, len(self.cases.cases))))
        try:
            futures = [pool.submit(self.run_case, case) for case in self.cases.cases]
            return [future.result() for future in futures]
        except BaseException:
            # Ctrl-C (or a bug): stop polling and cancel what is still running, so nothing is left billing.
            self.stop.set()
            self.cancel_in_flight()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def cancel_in_flight(self) -> None:
        with self.lock:
            pending = list(self.in_flight)
        for job_id in pending:
            try:
                self.jobs.cancel(self.endpoint_id, job_id)
            except ApiError:
                continue

    def run_case(self, case: Case) -> CaseResult:
        if self.listener is not None:
            self.listener.case_started(case)
        try:
            result = self._run_case(case)
        except ApiError as exc:
            line = self.cases.mask(str(exc))
            result = CaseResult(case.name, ERROR, False, error=line, failures=[line], source=case.source)
        if self.listener is not None:
            self.listener.case_finished(result)
        return result

    def _run_case(self, case: Case) -> CaseResult:
        submitted = time.monotonic()
        deadline = submitted + case.timeout_ms / 1000
        if case.mode == "runsync":
            wait = min(case.timeout_ms, RUNSYNC_WAIT_MAX_MS)
            view = self.jobs.runsync(self.endpoint_id, case.payload, wait_ms=wait)
        else:
            view = self.jobs.run(self.endpoint_id, case.payload)
        job_id = str(view.get("id", ""))
        with self.lock:
            self.in_flight.add(job_id)
        try:
            chunks: int | None = None
            if case.expect.min_stream_chunks is not None:
                view, chunks = self._drain_stream(job_id, deadline)
            elif view.get("status") not in FINAL_STATES:
                view = self._poll(job_id, deadline)
            latency_ms = round((time.monotonic() - submitted) * 1000)
            overdue = view.get("status") not in FINAL_STATES
            if overdue:
                self.jobs.cancel(self.endpoint_id, job_id)
                view = self.jobs.status(self.endpoint_id, job_id)  # read back: was it cancelled?
        finally:
            with self.lock:
                self.in_flight.discard(job_id)
        return self._verdict(case, view, submitted, latency_ms, chunks=chunks, overdue=overdue)

    def _pause(self, pause: float, deadline: float) -> float:
        """Sleep ``pause`` (never past the deadline); the next, longer pause."""
        self.stop.wait(max(0.0, min(pause, deadline - time.monotonic())))
        return min(pause * POLL_GROWTH, POLL_MAX_S)

    def _poll(self, job_id: str, deadline: float) -> dict[str, Any]:
        pause = POLL_FIRST_S
        while True:
            view = self.jobs.status(self.endpoint_id, job_id)
            if view.get("status") in FINAL_STATES or time.monotonic() >= deadline or self.stop.is_set():
                return view
            pause = self._pause(pause, deadline)

    def _drain_stream(self, job_id: str, deadline: float) -> tuple[dict[str, Any], int]:
        """Read /stream until the job is final and the stream empty (each chunk comes once)."""
        pause = POLL_FIRST_S
        chunks = 0
        while True:
            answer = self.jobs.stream(self.endpoint_id, job_id)
            items = answer.get("stream")
            new = len(items) if isinstance(items, list) else 0
            chunks += new
            final = answer.get("status") in FINAL_STATES
            if (final and not new) or time.monotonic() >= deadline or self.stop.is_set():
                break
            if not new:
                pause = self._pause(pause, deadline)
        return self.jobs.status(self.endpoint_id, job_id), chunks

    def _verdict(
        self,
        case: Case,
        view: dict[str, Any],
        submitted: float,
        latency_ms: int,
        *,
        chunks: int | None,
        overdue: bool,
    ) -> CaseResult:
        status = str(view.get("status", ERROR))
        outcome = Outcome(
            status=status,
            output=view.get("output"),
            has_output="output" in view,
            error=view.get("error"),
            delay_ms=_ms(view.get("delayTime")),
            execution_ms=_ms(view.get("executionTime")),
            latency_ms=latency_ms,
            chunks=chunks,
        )
        cancelled = overdue and status == "CANCELLED"
        if overdue:
            found = [
                f"timeout: not finished within {case.timeout_ms} ms: cancelled (status read back: {status})"
            ]
        else:
            found = [self.cases.mask(line) for line in failures(case.expect, outcome)]
        worker = view.get("workerId")
        started_s = None
        if outcome.delay_ms is not None:
            started_s = submitted - self.origin + outcome.delay_ms / 1000
        return CaseResult(
            name=case.name,
            status=status,
            passed=not found,
            delay_ms=outcome.delay_ms,
            execution_ms=outcome.execution_ms,
            latency_ms=latency_ms,
            error="; ".join(found) if found else None,
            failures=found,
            job_id=str(view.get("id") or "") or None,
            worker_id=str(worker) if worker is not None else None,
            cancelled=cancelled,
            chunks=chunks,
            source=case.source,
            started_s=started_s,
        )


def _ms(value: Any) -> int | None:
    return round(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
