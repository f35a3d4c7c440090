"""HTTP routes of the job API (`api.runpod.ai/v2/{endpoint_id}/...`), over JobService.

Every body goes through the strict parser and every numeric query parameter through
`query_int`, including routes whose body RunPod ignores (status, stream, cancel,
retry, purge-queue): what cannot be parsed is a 400, never a 500 or a stranded job.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from deploy.emulator.httputil import HttpError, optional_json, parse_json, query_int, read_body
from deploy.emulator.job_requests import (
    RESULT_TTL_RANGE_MS,
    RUN_LIMIT,
    RUNSYNC_LIMIT,
    RUNSYNC_WAIT_DEFAULT_MS,
    RUNSYNC_WAIT_RANGE_MS,
    SMALL_BODY_LIMIT,
    job_view,
    validate_request,
)
from deploy.emulator.jobs import JobService
from deploy.emulator.store import Job


def router(
    service: JobService,
    endpoint_exists: Callable[[str], bool],
    worker_health: Callable[[str], dict[str, Any]],
) -> APIRouter:
    """Routes of the job API. Auth is checked by the app (raw key or Bearer)."""
    api = APIRouter()

    def require_endpoint(endpoint_id: str) -> None:
        if not endpoint_exists(endpoint_id):
            raise HttpError(404, f"endpoint {endpoint_id} not found")

    async def require_job(endpoint_id: str, job_id: str, request: Request) -> Job:
        require_endpoint(endpoint_id)
        await optional_json(request, SMALL_BODY_LIMIT)  # ignored, but never unparsed
        job = service.get(endpoint_id, job_id)
        if job is None:
            raise HttpError(404, f"job {job_id} not found")
        return job

    async def accept(request: Request, endpoint_id: str, limit: int, sync: bool, wait_ms: int | None) -> Job:
        require_endpoint(endpoint_id)
        body = validate_request(parse_json(await read_body(request, limit)))
        return service.submit(endpoint_id, body, sync=sync, wait_ms=wait_ms)

    @api.post("/v2/{endpoint_id}/run")
    async def run(endpoint_id: str, request: Request) -> Response:
        job = await accept(request, endpoint_id, RUN_LIMIT, sync=False, wait_ms=None)
        return JSONResponse({"id": job.id, "status": job.status})

    @api.post("/v2/{endpoint_id}/runsync")
    async def runsync(endpoint_id: str, request: Request) -> Response:
        low, high = RUNSYNC_WAIT_RANGE_MS
        wait_ms = query_int(request, "wait", low, high)
        job = await accept(request, endpoint_id, RUNSYNC_LIMIT, sync=True, wait_ms=wait_ms)
        final = await service.wait_final(job, (wait_ms or RUNSYNC_WAIT_DEFAULT_MS) / 1000)
        if final is None:
            raise HttpError(404, f"job {job.id} was removed (its TTL passed or the endpoint was deleted)")
        if not final.final:
            return JSONResponse({"id": final.id, "status": final.status})
        return JSONResponse(job_view(final))

    @api.get("/v2/{endpoint_id}/status/{job_id}")
    @api.post("/v2/{endpoint_id}/status/{job_id}")
    async def status(endpoint_id: str, job_id: str, request: Request) -> Response:
        low, high = RESULT_TTL_RANGE_MS
        ttl_ms = query_int(request, "ttl", low, high)
        job = await require_job(endpoint_id, job_id, request)
        if ttl_ms is not None:
            service.keep_result(job, ttl_ms)
        return JSONResponse(job_view(job))

    @api.get("/v2/{endpoint_id}/stream/{job_id}")
    @api.post("/v2/{endpoint_id}/stream/{job_id}")
    async def stream(endpoint_id: str, job_id: str, request: Request) -> Response:
        job = await require_job(endpoint_id, job_id, request)
        chunks = service.drain_stream(job)
        return JSONResponse({"status": job.status, "stream": [{"output": chunk} for chunk in chunks]})

    @api.post("/v2/{endpoint_id}/cancel/{job_id}")
    async def cancel(endpoint_id: str, job_id: str, request: Request) -> Response:
        job = service.cancel(await require_job(endpoint_id, job_id, request))
        return JSONResponse({"id": job.id, "status": job.status})

    @api.post("/v2/{endpoint_id}/retry/{job_id}")
    async def retry(endpoint_id: str, job_id: str, request: Request) -> Response:
        job = service.retry(await require_job(endpoint_id, job_id, request))
        return JSONResponse({"id": job.id, "status": job.status})

    @api.post("/v2/{endpoint_id}/purge-queue")
    async def purge_queue(endpoint_id: str, request: Request) -> Response:
        require_endpoint(endpoint_id)
        await optional_json(request, SMALL_BODY_LIMIT)
        return JSONResponse({"removed": service.purge(endpoint_id), "status": "completed"})

    @api.get("/v2/{endpoint_id}/health")
    async def health(endpoint_id: str) -> Response:
        require_endpoint(endpoint_id)
        return JSONResponse({"jobs": service.counts(endpoint_id), **worker_health(endpoint_id)})

    return api
