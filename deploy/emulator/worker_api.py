"""The worker protocol the unmodified runpod SDK speaks (runpod-platform.md §5.4).

job-take (long poll, one job as a dict), job-take-batch (a list), job-stop (long
poll, `{"jobsToStop": [...]}`), job-done (form content type, JSON body; status
IN_PROGRESS is a progress update; `stopPod` recycles the container), job-stream and
ping. Workers authenticate with the raw RUNPOD_AI_API_KEY header the SDK sends.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from deploy.emulator.httputil import MB, HttpError, parse_json, read_body
from deploy.emulator.jobs import STREAM_CHUNK_LIMIT, JobService
from deploy.emulator.workers import Worker, WorkerPlane

log = logging.getLogger("rpdeploy.emulator.worker_api")

#: job-done carries the handler's whole result; the SDK only warns above 20 MB.
RESULT_LIMIT = 64 * MB
MAX_BATCH = 64


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
        raw = request.query_params.get("batch_size", "1")
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_BATCH:
            raise HttpError(400, f"batch_size must be an integer between 1 and {MAX_BATCH}")
        payloads = await take(request, endpoint_id, worker_id, int(raw))
        return JSONResponse(payloads) if payloads else Response(status_code=204)

    @api.get("/v2/{endpoint_id}/job-stop/{worker_id}")
    async def job_stop(endpoint_id: str, worker_id: str) -> Response:
        require_worker(endpoint_id, worker_id)
        stops = await jobs.stop_signals(worker_id, hold_s)
        return JSONResponse({"jobsToStop": stops}) if stops else Response(status_code=204)

    @api.post("/v2/{endpoint_id}/job-done/{worker_id}/{job_id}")
    async def job_done(endpoint_id: str, worker_id: str, job_id: str, request: Request) -> Response:
        worker = require_worker(endpoint_id, worker_id)
        # The SDK sends JSON text with a form content type; read the raw body as JSON.
        result = parse_json(await read_body(request, RESULT_LIMIT), what="job-done body")
        if not isinstance(result, dict):
            raise HttpError(400, "job-done body must be a JSON object")
        job = jobs.held_job(worker_id, job_id)
        if job is None:
            return _not_held(jobs, endpoint_id, worker_id, job_id)
        if result.get("status") == "IN_PROGRESS":
            jobs.progress(job, result.get("output"))
            return JSONResponse({})
        jobs.complete(job, result)
        if result.get("stopPod"):
            plane.refresh(worker)
        return JSONResponse({})

    @api.post("/v2/{endpoint_id}/job-stream/{worker_id}/{job_id}")
    async def job_stream(endpoint_id: str, worker_id: str, job_id: str, request: Request) -> Response:
        require_worker(endpoint_id, worker_id)
        body = await read_body(request, RESULT_LIMIT)
        if len(body) > STREAM_CHUNK_LIMIT:
            raise HttpError(400, f"stream chunk is {len(body)} bytes; the limit is 1 MB")
        chunk = parse_json(body, what="job-stream body")
        if not isinstance(chunk, dict) or "output" not in chunk:
            raise HttpError(400, "job-stream body must be a JSON object with an 'output' field")
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
