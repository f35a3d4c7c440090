"""The ``build/rpdeploy/<env>/`` layout: where rendered specs and build/deploy records live.

One module owns these paths because render (specs), image (build records) and the
coming release code (deploy records) all read and write them. Paths are relative to
the project root; callers write through `deploy.files`, which keeps them inside it.
"""

from __future__ import annotations

from pathlib import Path

#: Per-environment outputs (not committed: they differ per environment and per build).
BUILD_DIR = Path("build") / "rpdeploy"
#: Folder name used when no environment is selected.
DEFAULT_ENV = "default"
CREATE_SPEC = "endpoint.create.json"
UPDATE_SPEC = "endpoint.update.json"
BUILD_RECORD = "build.json"
DEPLOY_RECORD = "deploy.json"
PUSH_RECORD = "push.json"


def env_dir(environment: str | None) -> Path:
    """``build/rpdeploy/<env>`` (relative), ``default`` when no environment is selected."""
    return BUILD_DIR / (environment or DEFAULT_ENV)


def create_spec(environment: str | None) -> Path:
    """The REST v2 CreateEndpointRequest body rendered for ``environment``."""
    return env_dir(environment) / CREATE_SPEC


def update_spec(environment: str | None) -> Path:
    """The REST v2 UpdateEndpointRequest body rendered for ``environment``."""
    return env_dir(environment) / UPDATE_SPEC


def build_record(environment: str | None) -> Path:
    """What `rpdeploy build` produced (read by `rpdeploy push`)."""
    return env_dir(environment) / BUILD_RECORD


def push_record(environment: str | None) -> Path:
    """What `rpdeploy push` pushed (image@digest): the image deploys use by default."""
    return env_dir(environment) / PUSH_RECORD


def deploy_record(environment: str | None) -> Path:
    """The history of deploys of ``environment`` (appended by `rpdeploy apply`)."""
    return env_dir(environment) / DEPLOY_RECORD


def ephemeral_env(name: str) -> str:
    """The record folder of an ephemeral endpoint (``apply --ephemeral pr-42``)."""
    return f"ephemeral-{name}"
