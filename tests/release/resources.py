"""Helpers for the secrets, registry-credential and volume tests: a project per test.

Each test gets its own project name, so the resources it creates on the shared session
emulator (named after the project) never meet another test's. The client is the shared
`runpod_api` fixture (tests/conftest.py), which checks every answer against the spec.
"""

from __future__ import annotations

import uuid

from deploy.config import LoadedConfig, load_config
from tests.conftest import BASE_CONFIG, MakeProject


def unique_project() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def project_config(project: str, config: str = BASE_CONFIG) -> str:
    return config.replace("project: demo\n", f"project: {project}\n")


def load(make_project: MakeProject, text: str, environment: str | None = None) -> LoadedConfig:
    """``text`` loaded as a project of its own (a directory per project name)."""
    name = next(line for line in text.splitlines() if line.startswith("project: ")).split()[1]
    return load_config(make_project(text, name=name) / "rpdeploy.yaml", environment, environ={})
