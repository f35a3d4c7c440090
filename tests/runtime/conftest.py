"""Fixtures for the bootstrap tests: the bootstrap copied out as the image holds it, a work disk,
the local package index (scripts/stack.sh) and a runner for the bootstrap as a real process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUNTIME_SRC = REPO / "deploy" / "runtime"
STATE = Path(os.environ.get("RPDEPLOY_STATE", REPO / ".state"))
INDEX_URL = os.environ.get("RPDEPLOY_INDEX_URL", "http://127.0.0.1:8099/simple/")
#: A small real wheel the local index serves (a runpod dependency, so always in the wheelhouse).
SMALL_REQUIREMENT = "six==1.17.0\n"


def stack_env() -> dict[str, str]:
    """What scripts/stack.sh up wrote (make test brings the stack up first)."""
    pairs = (line.partition("=") for line in (STATE / "stack.env").read_text().splitlines())
    return {key: value for key, sep, value in pairs if sep and not key.startswith("#")}


def copy_bootstrap(dest: Path) -> Path:
    """deploy/runtime copied to ``dest/rpdeploy_runtime``, as `rpdeploy build` puts it in the image."""
    folder = dest / "rpdeploy_runtime"
    shutil.copytree(RUNTIME_SRC, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


@pytest.fixture(autouse=True, scope="session")
def _remove_bytecode_views() -> Iterator[None]:
    """The bytecode views (/tmp/rpdeploy-bytecode-*) of the bootstraps this session ran as plain
    processes: in a container /tmp goes with the container, on this host it stays."""
    before = set(Path("/tmp").glob("rpdeploy-bytecode-*"))
    yield
    for view in set(Path("/tmp").glob("rpdeploy-bytecode-*")) - before:
        shutil.rmtree(view, ignore_errors=True)


@dataclass
class Setup:
    work: Path
    folder: Path
    requirements: Path
    env: dict[str, str]


Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    work = tmp_path / "work"
    work.mkdir()
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(SMALL_REQUIREMENT)
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(tmp_path),
        # No volume is mounted on this host; the work disk is a folder on the host's disk,
        # which the bootstrap refuses unless told (in a container it is a volume or tmpfs).
        "RPDEPLOY_VOLUME_PATH": str(tmp_path / "no-volume"),
        "RPDEPLOY_WORK_DIR": str(work),
        "RPDEPLOY_ALLOW_OS_DISK": "1",
        "RPDEPLOY_REQUIREMENTS": str(requirements),
        "RPDEPLOY_INDEX_URL": INDEX_URL,
        "RPDEPLOY_MIN_FREE_VOLUME_MB": "1",
        "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
        "PYTHONDONTWRITEBYTECODE": "1",
        # The site's bytecode only: the stdlib's costs 5-15 s per install on this 2-core machine.
        # tests/runtime/test_bootstrap.py::test_the_handler_reads_bytecode_from_the_environment
        # turns it on.
        "RPDEPLOY_STDLIB_BYTECODE": "0",
    }
    return Setup(work, copy_bootstrap(tmp_path / "image"), requirements, env)


def bootstrap_command(setup: Setup, *argv: str) -> list[str]:
    return [sys.executable, str(setup.folder), *argv]


@pytest.fixture
def run(setup: Setup) -> Run:
    def _run(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            bootstrap_command(setup, *argv),
            env={**setup.env, **env},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    return _run


def env_dirs(work: Path) -> list[Path]:
    return sorted((work / "rpdeploy" / "envs").iterdir())


def bootstrap_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("rpdeploy-bootstrap:")]


def s3_env() -> dict[str, str]:
    """The S3 server scripts/stack.sh runs (seaweedfs on loopback, checking signatures)."""
    env = stack_env()
    keys = (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "RPDEPLOY_S3_BUCKET",
    )
    missing = [key for key in keys if key not in env]
    assert not missing, f"{STATE / 'stack.env'} lacks {missing}: run scripts/stack.sh up"
    return {key: env[key] for key in keys}
