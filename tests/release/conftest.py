"""Fixtures for the deploy-engine tests: one emulator over HTTP, images in the local registry, projects.

Everything is real: the CLI runs in-process against an `rpdeploy emulator serve` child
process (REST v2 over HTTP) and the registry of the local stack; nothing of the API is mocked.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import MakeProject
from tests.emulator.helpers import Api
from tests.release.helpers import mount_image

pytestmark = pytest.mark.docker


@pytest.fixture(scope="session")
def emu_api(api: Api) -> Api:
    """The session emulator (tests/conftest.py), raw HTTP with every answer checked against the spec."""
    return api


@pytest.fixture(scope="session")
def images() -> list[str]:
    """Two image@digest references in the local registry (the base image mounted into two repositories)."""
    return [mount_image("rpdeploy-test/release-a"), mount_image("rpdeploy-test/release-b")]


@pytest.fixture
def api_env(emulator_environ: dict[str, str]) -> dict[str, str]:
    """The environment a deploy command gets: the session emulator as RunPod (``--target runpod``)."""
    return dict(emulator_environ)


ProjectFactory = Callable[..., Path]


@pytest.fixture
def project(make_project: MakeProject) -> ProjectFactory:
    """A project whose name is unique in the session's emulator (endpoint names are identities)."""

    def make(endpoint: str = "", extra: str = "", name: str = "project") -> Path:
        project_name = f"t{secrets.token_hex(4)}"
        return make_project(config_text(project_name, endpoint, extra), name=name)

    return make


DEFAULT_ENDPOINT = """\
endpoint:
  type: QUEUE
  gpu:
    pools: [ADA_24]
    allowedCudaVersions: ["12.4"]
  workers: {min: 0, max: 2, idleTimeout: 5}
  scaling: {type: QUEUE_DELAY, queueDelay: 4}
  disk: 10
  env:
    LOG_LEVEL: INFO
    MODE: fast
"""


def config_text(project_name: str, endpoint: str = "", extra: str = "") -> str:
    return f"""\
version: 1
project: {project_name}
image:
  registry: 127.0.0.1:5000
  repository: acme/demo-worker
  base: 127.0.0.1:5000/python:3.11-slim-local
runtime:
  requirements: worker/requirements.txt
handler:
  path: worker
  file: handler.py
{endpoint or DEFAULT_ENDPOINT}
environments:
  staging:
    endpoint:
      workers: {{max: 1}}
  production:
    endpoint:
      workers: {{min: 1, max: 3}}
{extra}"""
