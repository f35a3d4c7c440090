"""`rpdeploy emulator`: a local RunPod serverless platform (REST v2, job API, docker workers).

This module is the emulator's boundary: the CLI imports only what is named here.
Building the app needs the `emulator` extra (fastapi, uvicorn, graphql-core, httpx);
everything else here (start, stop, status, urls, settings) runs without it, and
`serve`/`start` say which extra to install when it is missing.

Modules: app (assembly), control (REST v2), job_routes/jobs/job_requests/sweeper/
webhooks (job API and queue), worker_protocol (the SDK's worker routes),
workers/autoscaler/containers/worker_env/worker_logs (worker plane), store (SQLite),
settings, server (processes), httputil (strict parsing), graphql, schemas, catalog.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deploy.emulator.server import (
    EXTRA_HINT,
    Status,
    require_server_modules,
    serve,
    start,
    status,
    stop,
    urls,
)
from deploy.emulator.settings import (
    API_KEY_FILE,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_STATE,
    EmulatorSettings,
    check_bind,
    settings_from_env,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

    from deploy.emulator.app import Emulator

__all__ = [
    "API_KEY_FILE",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_STATE",
    "EXTRA_HINT",
    "EmulatorSettings",
    "Status",
    "build_app",
    "check_bind",
    "require_server_modules",
    "serve",
    "settings_from_env",
    "start",
    "status",
    "stop",
    "urls",
]


def build_app(settings: EmulatorSettings) -> tuple[FastAPI, Emulator]:
    """The ASGI app and its running parts (needs the emulator extra; raises EmulatorError without it)."""
    require_server_modules()
    from deploy.emulator.app import build  # noqa: PLC0415 - fastapi is imported only when serving

    return build(settings)
