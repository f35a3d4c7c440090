"""Assembly of the emulator's one server: control plane, job API, worker protocol, GraphQL.

Each API keeps the error shape its clients expect: RFC 9457 problem+json for REST v2,
`{"errors": [...]}` for GraphQL, `{"error": "..."}` for the job and worker APIs.
Bad input is a 4xx on every API; a state store that cannot write (full disk) is a
503 with SQLite's reason; a 500 is left only for a bug in the emulator itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from deploy import __version__
from deploy.emulator import (
    account_secrets,
    control,
    graphql,
    job_routes,
    jobs,
    registries,
    sweeper,
    volumes,
    worker_protocol,
)
from deploy.emulator.httputil import HttpError, key_matches, presented_key
from deploy.emulator.settings import WORKER_KEY_FILE, EmulatorSettings, load_or_create_key
from deploy.emulator.store import Store, StoreError, UnservableValue
from deploy.emulator.workers import WorkerPlane

log = logging.getLogger("rpdeploy.emulator")

REST_PREFIXES = (
    "/v2/serverless",
    "/v2/templates",
    "/v2/catalog",
    "/v2/account/",
    "/v2/network-volumes",
    "/v2/registries",
)
WORKER_SEGMENTS = frozenset({"job-take", "job-take-batch", "job-stop", "job-done", "job-stream", "ping"})
HEALTH_PATH = "/_emulator/health"
RATE_POLICY = '"minute";q=60;w=60, "hour";q=3000;w=3600, "day";q=50000;w=86400'
RATE_WINDOWS = (("minute", 60, 60), ("hour", 3000, 3600), ("day", 50000, 86400))


def api_kind(path: str) -> str:
    """Which API a path belongs to: rest, graphql, worker, jobs or emulator."""
    if path.startswith(REST_PREFIXES):
        return "rest"
    if path.startswith("/graphql"):
        return "graphql"
    if path.startswith("/_emulator"):
        return "emulator"
    parts = path.split("/")
    if len(parts) > 3 and parts[1] == "v2" and parts[3] in WORKER_SEGMENTS:
        return "worker"
    return "jobs"


def _printable(text: str) -> str:
    """Text that encodes as UTF-8: a lone surrogate from a decoded URL would crash the JSON answer."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def error_response(path: str, status: int, detail: str, errors: list[str] | None = None) -> Response:
    """The error answer in the shape of the API ``path`` belongs to."""
    kind = api_kind(path)
    detail = _printable(detail)
    errors = [_printable(error) for error in errors] if errors else errors
    if kind == "rest":
        body: dict[str, Any] = {"title": HTTPStatus(status).phrase, "status": status, "detail": detail}
        if errors:
            body["errors"] = errors
        return JSONResponse(body, status_code=status, media_type="application/problem+json")
    if kind == "graphql":
        return JSONResponse({"errors": [{"message": detail}]}, status_code=status)
    return JSONResponse({"error": detail}, status_code=status)


@dataclass
class Emulator:
    """The running parts, reachable from tests and the server process."""

    settings: EmulatorSettings
    store: Store
    control: control.ControlPlane
    jobs: jobs.JobService
    workers: WorkerPlane
    secrets: account_secrets.SecretService
    volumes: volumes.VolumeService
    registries: registries.RegistryService


class RateLimitHeaders:
    """ASGI middleware: RunPod's `RateLimit` / `RateLimit-Policy` on authenticated REST answers.

    The counts are real (fixed windows); nothing is refused, since RunPod's quotas
    are far above what a local emulator sees.
    """

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app
        self.windows: dict[str, tuple[int, int]] = {}

    def header(self) -> str:
        now = int(time.time())
        parts = []
        for name, quota, length in RATE_WINDOWS:
            start = now - now % length
            window_start, used = self.windows.get(name, (start, 0))
            if window_start != start:
                window_start, used = start, 0
            used += 1
            self.windows[name] = (window_start, used)
            parts.append(f'"{name}";r={max(quota - used, 0)};t={window_start + length - now}')
        return ", ".join(parts)

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or api_kind(scope["path"]) != "rest":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] != 401:
                headers = list(message.get("headers", []))
                headers.append((b"ratelimit", self.header().encode()))
                headers.append((b"ratelimit-policy", RATE_POLICY.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def build(settings: EmulatorSettings) -> tuple[FastAPI, Emulator]:
    """The ASGI app and its parts for ``settings``; opening the store may raise StoreError."""
    store = Store(settings.db_path)
    plane_control = control.ControlPlane(store, settings.base_url)

    def endpoint_timeout_ms(endpoint_id: str) -> int | None:
        doc = plane_control.find_endpoint(endpoint_id)
        return None if doc is None else int(doc["timeout"])

    job_service = jobs.JobService(store, endpoint_timeout_ms, settings.webhook_retry_interval_s)
    worker_key = load_or_create_key(settings.state_dir, WORKER_KEY_FILE)
    volume_service = volumes.VolumeService(store)
    plane = WorkerPlane(settings, store, job_service, worker_key, volume_service.data_center)
    job_service.listener = plane
    plane_control.workers = plane
    volume_service.backend = plane
    secret_service = account_secrets.SecretService(store)
    registry_service = registries.RegistryService(store)
    emulator = Emulator(
        settings, store, plane_control, job_service, plane, secret_service, volume_service, registry_service
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        failed = job_service.recover("the emulator restarted while the job was running")
        if failed:
            log.warning("failed %d job(s) that workers of the previous run held", failed)
        await plane.start()
        sweeping = _task(sweeper.run_forever(job_service, settings.sweep_interval_s))
        try:
            yield
        finally:
            sweeping.cancel()
            await plane.close()
            await job_service.close()
            store.close()

    app = FastAPI(
        title="rpdeploy emulator", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.add_middleware(RateLimitHeaders)

    def user_key(request: Request) -> None:
        kind = api_kind(request.url.path)
        key = presented_key(request, allow_raw=kind == "jobs", allow_query=kind == "graphql")
        if not key_matches(key, settings.api_key):
            raise HttpError(401, "missing bearer token" if key is None else "invalid api key")

    def worker_auth(request: Request) -> None:
        if not key_matches(presented_key(request, allow_raw=True), worker_key):
            raise HttpError(401, "invalid worker key")

    def endpoint_exists(endpoint_id: str) -> bool:
        return plane_control.find_endpoint(endpoint_id) is not None

    for rest in (
        control.router(plane_control),
        account_secrets.router(secret_service),
        volumes.router(volume_service),
        registries.router(registry_service),
    ):
        app.include_router(rest, dependencies=[Depends(user_key)])
    app.include_router(worker_protocol.router(job_service, plane), dependencies=[Depends(worker_auth)])
    app.include_router(
        job_routes.router(job_service, endpoint_exists, plane.health), dependencies=[Depends(user_key)]
    )
    app.include_router(graphql.router(secret_service), dependencies=[Depends(user_key)])

    @app.get(HEALTH_PATH)
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "version": __version__,
            "pid": os.getpid(),
            "schema": store.schema_version,
            "docker": plane.docker_error or "ok",
        }

    _install_error_handlers(app)
    return app, emulator


def _install_error_handlers(app: FastAPI) -> None:
    """Every failure becomes its API's error shape: 4xx for bad input, 503 for the store, 500 for bugs."""

    @app.exception_handler(HttpError)
    async def on_problem(request: Request, exc: HttpError) -> Response:
        return error_response(request.url.path, exc.status, exc.detail, exc.errors)

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404:
            detail = f"no route for {request.method} {request.url.path}"
        return error_response(request.url.path, exc.status_code, detail)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> Response:
        errors = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return error_response(request.url.path, 400, "invalid request parameters", errors)

    @app.exception_handler(StoreError)
    async def on_store(request: Request, exc: StoreError) -> Response:
        log.error("%s %s: %s", request.method, request.url.path, exc)
        return error_response(request.url.path, 503, str(exc))

    @app.exception_handler(UnservableValue)
    async def on_unservable(request: Request, exc: UnservableValue) -> Response:
        return error_response(request.url.path, 400, str(exc))

    @app.exception_handler(Exception)
    async def on_crash(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(request.url.path, 500, f"internal emulator error: {type(exc).__name__}")


def _task(coroutine: Any) -> asyncio.Task[Any]:
    return asyncio.get_running_loop().create_task(coroutine)
