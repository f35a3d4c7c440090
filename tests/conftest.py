"""Shared fixtures: temporary projects, the CLI runner, golden files, RunPod's spec."""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner, Result

from deploy.cli.main import cli

if TYPE_CHECKING:
    from deploy.api import RunPodApi
    from tests.apiclient import ContractLog, ProxiedApi
    from tests.emulator.helpers import Api, EmulatorProcess
    from tests.faultproxy import FaultProxy

REPO = Path(__file__).resolve().parent.parent
#: The echo worker project (config, worker/, rendered files): the fast fixture of the tests.
ECHO = REPO / "examples" / "echo"
#: RunPod's contract as vendored in the package (deploy/runpod/spec/README.md gives source and date).
VENDORED_SPEC = REPO / "deploy" / "runpod" / "spec"
GOLDEN = Path(__file__).resolve().parent / "golden"

#: A small valid config; tests edit its text to make it invalid.
BASE_CONFIG = """\
version: 1
project: demo
image:
  registry: 127.0.0.1:5000
  repository: acme/demo-worker
  base: 127.0.0.1:5000/python:3.11-slim-local
  strategy: slim
runtime:
  requirements: worker/requirements.txt
handler:
  path: worker
  file: handler.py
endpoint:
  type: QUEUE
  gpu:
    pools: [ADA_24]
  workers: {min: 0, max: 2, idleTimeout: 5}
  scaling: {type: QUEUE_DELAY, queueDelay: 4}
secrets:
  - name: AWS_ACCESS_KEY_ID
  - name: AWS_SECRET_ACCESS_KEY
environments:
  staging:
    endpoint:
      workers: {max: 1}
"""


#: The seed of the generated-input tests (schemathesis, generated configs): a new one every
#: run, so each CI run tries other inputs; printed in the report header and named in failures,
#: and replayed with RPDEPLOY_FUZZ_SEED=<seed> (see `make fuzz`).
FUZZ_SEED = int(os.environ.get("RPDEPLOY_FUZZ_SEED") or secrets.randbelow(2**32))


def pytest_report_header() -> str:
    return f"generated-input seed: {FUZZ_SEED} (replay with RPDEPLOY_FUZZ_SEED={FUZZ_SEED})"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden", action="store_true", default=False, help="Rewrite tests/golden files."
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


MakeProject = Callable[..., Path]


@pytest.fixture
def make_project(tmp_path: Path) -> MakeProject:
    """Factory: a project directory with a worker and the given config text."""

    def make(config: str = BASE_CONFIG, name: str = "project", files: dict[str, str] | None = None) -> Path:
        root = tmp_path / name
        (root / "worker").mkdir(parents=True)
        (root / "worker" / "handler.py").write_text("print('handler')\n")
        (root / "worker" / "requirements.txt").write_text("runpod==1.12.0\n")
        (root / "rpdeploy.yaml").write_text(config)
        for rel, content in (files or {}).items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(content)
        return root

    return make


@pytest.fixture
def run_cli() -> Callable[..., Result]:
    """Invoke the real click CLI in-process (stdout and stderr kept apart)."""

    def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Result:
        runner = CliRunner()
        old = Path.cwd()
        try:
            if cwd is not None:
                os.chdir(cwd)
            return runner.invoke(cli, list(args), env=env, catch_exceptions=True)
        finally:
            os.chdir(old)

    return run


ENVELOPE_KEYS = ["version", "command", "status", "data", "error"]


def envelope(stdout: str, command: str, status: str = "ok") -> dict[str, Any]:
    """Parse a command's ``--output json`` and check the envelope (README, "JSON output").

    Returns the envelope; its ``data`` holds the command's fields.
    """
    payload: dict[str, Any] = json.loads(stdout)
    assert list(payload) == ENVELOPE_KEYS, payload
    assert payload["version"] == 2
    assert payload["command"] == command
    assert payload["status"] == status, payload
    assert isinstance(payload["data"], dict)
    if status == "error":
        assert payload["data"] == {}
        assert set(payload["error"]) == {"type", "message", "hint"}
    else:
        assert payload["error"] is None
    return payload


def json_data(stdout: str, command: str, status: str = "ok") -> dict[str, Any]:
    """The ``data`` of a command's JSON envelope, after checking the envelope."""
    data: dict[str, Any] = envelope(stdout, command, status)["data"]
    return data


def official_spec() -> dict[str, Any]:
    """RunPod's REST v2 OpenAPI document, read from the vendored file (never from outside the repo)."""
    path = VENDORED_SPEC / "runpod-openapi-v2.json"
    if not path.exists():
        pytest.fail(f"the vendored RunPod spec is missing at {path}")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def copy_repo_project(dest: Path) -> Path:
    """A copy of this repository's own project, the speech-to-text reference worker (config,
    worker, cases, templates, rendered files)."""
    for name in ("rpdeploy.yaml", "Dockerfile.slim", ".dockerignore"):
        shutil.copy2(REPO / name, dest / name)
    for name in ("worker", "templates", ".runpod"):
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def copy_echo_project(dest: Path) -> Path:
    """A copy of examples/echo, the small echo worker the tests and benches deploy (fast: its only
    requirement is runpod). Returns ``dest``."""
    shutil.copytree(ECHO, dest, ignore=shutil.ignore_patterns("__pycache__", "build"), dirs_exist_ok=True)
    return dest


# -- the local RunPod platform, shared by every test directory -----------------------------
# Imported inside the fixtures: the emulator helpers pull in docker and httpx, which the
# fast tests do not need.


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    """One emulator process (`rpdeploy emulator serve` on a free port) for the whole session."""
    from tests.emulator.helpers import EmulatorProcess  # noqa: PLC0415

    proc = EmulatorProcess(tmp_path_factory.mktemp("emulator-state")).start()
    yield proc
    proc.stop()
    proc.remove_volumes()


@pytest.fixture(scope="session")
def api(emulator: EmulatorProcess) -> Api:
    """Raw HTTP on the session emulator, each REST answer checked against the official spec."""
    return emulator.api


@pytest.fixture
def emulator_environ(emulator: EmulatorProcess) -> dict[str, str]:
    """What `eval "$(rpdeploy emulator env)"` gives for the session emulator: URL and key."""
    return {"RUNPOD_API_URL": f"{emulator.api.base}/v2", "RUNPOD_API_KEY": emulator.api.key}


@pytest.fixture
def fault_proxy(emulator: EmulatorProcess) -> Iterator[FaultProxy]:
    """A fault-injecting HTTP proxy in front of the session emulator (tests/faultproxy.py)."""
    from tests.faultproxy import FaultProxy  # noqa: PLC0415

    proxy = FaultProxy(emulator.api.base).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def contract() -> ContractLog:
    """The answers `runpod_api` got, each checked against the vendored spec (tests/apiclient.py)."""
    from tests.apiclient import ContractLog  # noqa: PLC0415

    return ContractLog()


@pytest.fixture
def runpod_api(emulator_environ: dict[str, str], contract: ContractLog) -> Iterator[RunPodApi]:
    """`RunPodApi.from_environ` on the session emulator; every answer is checked against the spec."""
    from deploy.api import RunPodApi  # noqa: PLC0415

    with RunPodApi.from_environ(emulator_environ) as client:
        client.session.hooks["response"].append(contract)
        yield client


@pytest.fixture
def proxied_api(fault_proxy: FaultProxy, emulator_environ: dict[str, str]) -> Iterator[ProxiedApi]:
    """Factory: a client that talks to the emulator through `fault_proxy` (backoff 0.01 s so
    retries are quick; ``timeout``/``retries``/``backoff`` as the test needs)."""
    from deploy.api import RunPodApi  # noqa: PLC0415

    made: list[RunPodApi] = []

    def make(**options: Any) -> RunPodApi:
        options = {"backoff": 0.01, **options}
        client = RunPodApi(fault_proxy.url, emulator_environ["RUNPOD_API_KEY"], **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
