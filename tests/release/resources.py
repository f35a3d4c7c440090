"""Helpers for the secrets, registry-credential and volume tests: a real client on the session
emulator (every answer checked against the official spec) and a project per test.

Each test gets its own project name, so the resources it creates on the shared emulator
(named after the project) never meet another test's.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from deploy.api import RunPodApi
from deploy.config import LoadedConfig, load_config
from tests.apiclient import ContractLog
from tests.conftest import BASE_CONFIG, MakeProject


@contextmanager
def connect(environ: dict[str, str]) -> Iterator[RunPodApi]:
    """`RunPodApi.from_environ` on the emulator ``environ`` names; answers checked against the spec."""
    with RunPodApi.from_environ(environ) as client:
        client.session.hooks["response"].append(ContractLog())
        yield client


def unique_project() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def project_config(project: str, config: str = BASE_CONFIG) -> str:
    return config.replace("project: demo\n", f"project: {project}\n")


def load(make_project: MakeProject, text: str, environment: str | None = None) -> LoadedConfig:
    """``text`` loaded as a project of its own (a directory per project name)."""
    name = next(line for line in text.splitlines() if line.startswith("project: ")).split()[1]
    return load_config(make_project(text, name=name) / "rpdeploy.yaml", environment, environ={})
