"""The Docker engine connection (docker SDK), with its failures as `EngineError`."""

from __future__ import annotations

import os

import docker
import docker.errors
import requests

from deploy.errors import EngineError

#: Generous: a build step or a push of a large layer can be silent for a long time.
TIMEOUT_S = 900


def connect() -> docker.DockerClient:
    """A `docker.DockerClient` for ``DOCKER_HOST`` or the default socket; EngineError if none answers."""
    try:
        client = docker.from_env(timeout=TIMEOUT_S)
        client.ping()
    except (docker.errors.DockerException, requests.RequestException) as exc:
        where = os.environ.get("DOCKER_HOST") or "the default socket"
        raise EngineError(
            f"no Docker engine answers at {where}: {first_line(exc)}",
            hint="start one with `scripts/stack.sh up` (or set DOCKER_HOST)",
        ) from None
    return client


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text (docker-py errors can be long and nested)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
