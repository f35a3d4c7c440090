"""What the job API accepts and answers: request checks, limits, retention and the `/status` view.

Facts from RunPod's operation reference (runpod-platform.md §4): `/run` bodies up to
10 MB and `/runsync` up to 20 MB; `policy.executionTimeout` 5 s to 7 days and
`policy.ttl` 10 s to 7 days, both in ms; results kept 30 min after `/run` and 1 min
after `/runsync` (up to 5 min with `?wait=`); `delayTime` and `executionTime` in ms.
"""

from __future__ import annotations

import uuid
from typing import Any

from deploy.emulator.httputil import MB, HttpError
from deploy.emulator.store import Job

RUN_LIMIT = 10 * MB
RUNSYNC_LIMIT = 20 * MB
STREAM_CHUNK_LIMIT = 1 * MB
#: A worker's result: the SDK warns above 20 MB (rp_tips) and the platform refuses the job-done
#: post (runpod-python#309), so the emulator refuses it too and ends the job FAILED.
RESULT_LIMIT = 20 * MB
#: Bodies of routes that take none (status, cancel, ...): read and checked, then ignored.
SMALL_BODY_LIMIT = 1 * MB
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
RUN_RETENTION_S = 30 * 60
RUNSYNC_RETENTION_S = 60
RUNSYNC_MAX_RETENTION_S = 5 * 60
RUNSYNC_WAIT_DEFAULT_MS = 90_000
RUNSYNC_WAIT_RANGE_MS = (1_000, 300_000)
#: `?ttl=` on a status call: how long a finished result stays retrievable (ms).
RESULT_TTL_RANGE_MS = (10_000, WEEK_MS)
EXECUTION_TIMEOUT_RANGE_MS = (5_000, WEEK_MS)
JOB_TTL_RANGE_MS = (10_000, WEEK_MS)


def ms(seconds: float) -> int:
    """Seconds (the store's clock) to the whole milliseconds RunPod reports."""
    return round(seconds * 1000)


def new_job_id(sync: bool) -> str:
    job_id = str(uuid.uuid4())
    return f"sync-{job_id}" if sync else job_id


def retention_s(sync: bool, wait_ms: int | None) -> float:
    """How long a finished result is kept: 30 min (`/run`), 1 min (`/runsync`), up to 5 min with `?wait=`."""
    if not sync:
        return RUN_RETENTION_S
    if wait_ms is None:
        return RUNSYNC_RETENTION_S
    return min(max(RUNSYNC_RETENTION_S, wait_ms / 1000), RUNSYNC_MAX_RETENTION_S)


def _check_ms(policy: dict[str, Any], name: str, bounds: tuple[int, int]) -> int | None:
    value = policy.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise HttpError(400, f"policy.{name} must be an integer number of milliseconds")
    low, high = bounds
    if not low <= value <= high:
        raise HttpError(400, f"policy.{name} must be between {low} and {high} ms, got {value}")
    return value


def validate_request(body: Any) -> dict[str, Any]:
    """The run/runsync body checked: input present, webhook a URL, policy within RunPod's bounds.

    ``body`` comes from the strict parser (finite numbers, valid Unicode). Raises HttpError(400).
    """
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
    _check_ms(policy, "executionTimeout", EXECUTION_TIMEOUT_RANGE_MS)
    _check_ms(policy, "ttl", JOB_TTL_RANGE_MS)
    if not isinstance(policy.get("lowPriority", False), bool):
        raise HttpError(400, "policy.lowPriority must be true or false")
    s3 = body.get("s3Config")
    if s3 is not None and not isinstance(s3, dict):
        raise HttpError(400, "s3Config must be an object")
    return body


def job_view(job: Job) -> dict[str, Any]:
    """The `/status` answer for a job; `delayTime` (submit to start) and `executionTime` in ms."""
    view: dict[str, Any] = {}
    if job.started_at is not None:
        view["delayTime"] = ms(job.started_at - job.created_at)
        if job.completed_at is not None:
            view["executionTime"] = ms(job.completed_at - job.started_at)
    view["id"] = job.id
    if job.has_output:
        view["output"] = job.output
    if job.error is not None:
        view["error"] = job.error
    view["status"] = job.status
    if job.worker_id is not None:
        view["workerId"] = job.worker_id
    return view


def webhook_record(job: Job) -> dict[str, Any]:
    """The full job record RunPod posts to a webhook (runpod/runpod-python#409, #410)."""
    record = job_view(job)
    record.pop("workerId", None)
    record["input"] = job.input
    record["webhook"] = job.webhook
    return dict(sorted(record.items()))
