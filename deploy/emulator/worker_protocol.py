"""HTTP routes of the worker protocol the unmodified runpod SDK speaks (runpod-platform.md §5.4).

job-take (long poll, one job as a dict), job-take-batch (a list), job-stop (long
poll, `{"jobsToStop": [...]}`), job-done (form content type, JSON body; status
IN_PROGRESS is a progress update; `stopPod` recycles the container), job-stream and
ping. Workers authenticate with the raw RUNPOD_AI_API_KEY header the SDK sends.

A result the emulator refuses (over 20 MB, not strict JSON) ends the job FAILED with
the reason in the job and the worker log, so no job waits for a timeout.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from deploy.emulator.httputil import HttpError, parse_json, query_int, read_body
from deploy.emulator.job_requests import RESULT_LIMIT, STREAM_CHUNK_LIMIT
from deploy.emulator.jobs import JobService
from deploy.emulator.workers import Worker, WorkerPlane

log = logging.getLogger("rpdeploy.emulator.worker_protocol")

MAX_BATCH = 64
#: runpod-python#299: the platform ends a job whose `error` is not a string COMPLETED, without output.
NON_STRING_ERROR_NOTE = (
    "job {job}: the handler returned an error that is not a string ({kind}); the emulator marks the job "
    "FAILED, but RunPod may report it COMPLETED without output (runpod-python#299): return a string error"
)
#: runpod-python#309: the platform answers 400 to an oversized job-done, the client sees COMPLETED.
REFUSED_RESULT_NOTE = (
    "job {job}: result refused ({reason}); the emulator marks the job FAILED, while RunPod may report "
    "it COMPLETED without output (runpod-python#309): upload large results to S3 and return a URL"
)


def router(jobs: JobService, plane: WorkerPlane) -> APIRouter:
    api = APIRouter()
    hold_s = plane.knobs.long_poll_s

    def require_worker(endpoint_id: str, worker_id: str) -> Worker:
        worker = plane.worker(endpoint_id, worker_id)
        if worker is None:
            raise HttpError(404, f"worker {worker_id} is not a live worker of endpoint {endpoint_id}")
        return worker

    async def take(request: Request, endpoint_id: str, worker_id: str, count: int) -> list[Any] | None:
        worker = require_worker(endpoint_id, worker_id)
        plane.mark_ready(worker)
        taken = await jobs.take(endpoint_id, worker_id, count, hold_s, lambda: plane.accepting(worker))
        if taken and await request.is_disconnected():
            # The worker's poll is gone (it was killed or gave up): never hand a job to no one.
            jobs.give_back(taken)
            return None
        return [JobService.worker_payload(job) for job in taken] or None

    @api.get("/v2/{endpoint_id}/job-take/{worker_id}")
    async def job_take(endpoint_id: str, worker_id: str, request: Request) -> Response:
        payloads = await take(request, endpoint_id, worker_id, 1)
        return JSONResponse(payloads[0]) if payloads else Response(status_code=204)

    @api.get("/v2/{endpoint_id}/job-take-batch/{worker_id}")
    async def job_take_batch(endpoint_id: str, worker_id: str, request: Request) -> Response:
        count = query_int(request, "batch_size", 1, MAX_BATCH, default=1)
        assert count is not None
        payloads = await take(request, endpoint_id, worker_id, count)
        return JSONResponse(payloads) if payloads else Response(status_code=204)

    @api.get("/v2/{endpoint_id}/job-stop/{worker_id}")
    async def job_stop(endpoint_id: str, worker_id: str) -> Response:
        require_worker(endpoint_id, worker_id)
        stops = await jobs.stop_signals(worker_id, hold_s)
        return JSONResponse({"jobsToStop": stops}) if stops else Response(status_code=204)

    @api.post("/v2/{endpoint_id}/job-done/{worker_id}/{job_id}")
    async def job_done(endpoint_id: str, worker_id: str, job_id: str, request: Request) -> Response:
        worker = require_worker(endpoint_id, worker_id)
        try:
            # The SDK sends JSON text with a form content type; read the raw body as JSON.
            result = parse_json(await read_body(request, RESULT_LIMIT), what="job-done body")
            if not isinstance(result, dict):
                raise HttpError(400, "job-done body must be a JSON object")
        except HttpError as exc:
            _refuse_result(jobs, plane, worker, job_id, exc.detail)
            raise
        return _job_done(jobs, plane, worker, job_id, result)

    @api.post("/v2/{endpoint_id}/job-stream/{worker_id}/{job_id}")
    async def job_stream(endpoint_id: str, worker_id: str, job_id: str, request: Request) -> Response:
        worker = require_worker(endpoint_id, worker_id)
        try:
            chunk = parse_json(await read_body(request, STREAM_CHUNK_LIMIT), what="job-stream body")
            if not isinstance(chunk, dict) or "output" not in chunk:
                raise HttpError(400, "job-stream body must be a JSON object with an 'output' field")
        except HttpError as exc:
            # The job goes on (its final result decides it); the worker log says a chunk was lost.
            plane.log(worker, f"job {job_id}: stream chunk refused ({exc.detail})")
            raise
        job = jobs.held_job(worker_id, job_id)
        if job is None:
            return _not_held(jobs, endpoint_id, worker_id, job_id)
        jobs.stream_chunk(job, chunk["output"])
        return JSONResponse({})

    @api.get("/v2/{endpoint_id}/ping/{worker_id}")
    async def ping(endpoint_id: str, worker_id: str, request: Request) -> Response:
        _ping(jobs, plane, require_worker(endpoint_id, worker_id), dict(request.query_params))
        return JSONResponse({})

    return api


def _job_done(
    jobs: JobService, plane: WorkerPlane, worker: Worker, job_id: str, result: dict[str, Any]
) -> Response:
    """A progress update (status IN_PROGRESS) or the final result of a job the worker holds."""
    job = jobs.held_job(worker.id, job_id)
    if job is None:
        return _not_held(jobs, worker.endpoint_id, worker.id, job_id)
    if result.get("status") == "IN_PROGRESS":
        jobs.progress(job, result.get("output"))
        return JSONResponse({})
    error = result.get("error")
    if error is not None and not isinstance(error, str):
        plane.log(worker, NON_STRING_ERROR_NOTE.format(job=job_id, kind=type(error).__name__))
    jobs.complete(job, result)
    if result.get("stopPod"):
        plane.refresh(worker)
    return JSONResponse({})


def _refuse_result(jobs: JobService, plane: WorkerPlane, worker: Worker, job_id: str, reason: str) -> None:
    """A job-done the emulator cannot accept: the held job ends FAILED, the worker log says why."""
    job = jobs.held_job(worker.id, job_id)
    if job is None:
        return
    plane.log(worker, REFUSED_RESULT_NOTE.format(job=job_id, reason=reason))
    jobs.fail(job, f"the worker's result was refused: {reason}")


def _ping(jobs: JobService, plane: WorkerPlane, worker: Worker, params: dict[str, str]) -> None:
    """Heartbeat: an unhealthy report marks the worker; listed jobs that ended here get a new stop."""
    if params.get("status") == "unhealthy":
        plane.unhealthy(worker, params.get("check", "unknown"), params.get("reason", "")[:256])
    running = [job_id for job_id in params.get("job_id", "").split(",") if job_id]
    jobs.resignal_stops(worker.endpoint_id, worker.id, running)


def _not_held(jobs: JobService, endpoint_id: str, worker_id: str, job_id: str) -> Response:
    """A report for a job this worker no longer holds (cancelled, timed out): accepted, ignored."""
    job = jobs.get(endpoint_id, job_id)
    if job is None:
        raise HttpError(404, f"job {job_id} not found")
    log.info("ignored a report from worker %s for job %s, which is %s", worker_id, job_id, job.status)
    return JSONResponse({})
