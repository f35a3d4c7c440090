"""Helpers for the emulator tests: real emulator processes over HTTP, one SDK worker image.

One emulator serves the whole session (`emulator`); tests that restart or reconfigure
it start their own (`EmulatorProcess`). Every control-plane answer that passes through
`Api.rest` is checked against the official RunPod v2 response schema (the contract).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import httpx
import requests
from docker.errors import BuildError, ImageNotFound

from deploy.emulator.containers import LABEL
from deploy.emulator.settings import state_label
from deploy.runpod import schemas

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
API_KEY = "rpa_test_" + "k" * 24
BASE_IMAGE = "127.0.0.1:5000/python:3.11-slim-local"
INDEX_URL = "http://127.0.0.1:8099/simple/"
#: Knobs that keep a test session fast: short long polls, quick webhook retries, fast pings.
FAST_ENV = {
    "RPDEPLOY_EMULATOR_LONG_POLL_S": "10",
    "RPDEPLOY_EMULATOR_WEBHOOK_RETRY_INTERVAL_S": "0.5",
    "RPDEPLOY_EMULATOR_PING_INTERVAL_MS": "2000",
    "RPDEPLOY_EMULATOR_SWEEP_INTERVAL_S": "0.1",
    "RPDEPLOY_EMULATOR_RESTART_BACKOFF_S": "0.5",
}
SPEC_PATHS = [
    (re.compile(r"^/v2/serverless$"), "/v2/serverless"),
    (re.compile(r"^/v2/serverless/[^/]+$"), "/v2/serverless/{id}"),
    (re.compile(r"^/v2/serverless/[^/]+/workers$"), "/v2/serverless/{id}/workers"),
    (re.compile(r"^/v2/serverless/[^/]+/releases$"), "/v2/serverless/{id}/releases"),
    (re.compile(r"^/v2/templates$"), "/v2/templates"),
    (re.compile(r"^/v2/templates/[^/]+$"), "/v2/templates/{id}"),
    (re.compile(r"^/v2/catalog/gpus$"), "/v2/catalog/gpus"),
    (re.compile(r"^/v2/catalog/datacenters$"), "/v2/catalog/datacenters"),
    (re.compile(r"^/v2/catalog/cpus$"), "/v2/catalog/cpus"),
    (re.compile(r"^/v2/catalog/cpus/[^/]+$"), "/v2/catalog/cpus/{id}"),
    (re.compile(r"^/v2/account/secrets$"), "/v2/account/secrets"),
    (re.compile(r"^/v2/account/secrets/[^/]+$"), "/v2/account/secrets/{id}"),
    (re.compile(r"^/v2/network-volumes$"), "/v2/network-volumes"),
    (re.compile(r"^/v2/network-volumes/[^/]+$"), "/v2/network-volumes/{id}"),
    (re.compile(r"^/v2/registries$"), "/v2/registries"),
    (re.compile(r"^/v2/registries/[^/]+$"), "/v2/registries/{id}"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def endpoint_body(name: str = "test", **overrides: Any) -> dict[str, Any]:
    """A valid CreateEndpointRequest that starts no worker (workers.max 0); None drops a field."""
    body: dict[str, Any] = {
        "name": name,
        "type": "QUEUE",
        "image": "127.0.0.1:5000/rpdeploy-test/none:0",
        "gpu": {"pools": ["ADA_24"]},
        "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4},
        "workers": {"min": 0, "max": 0, "idleTimeout": 5},
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def spec_path(path: str) -> str | None:
    """The spec's path template a concrete REST v2 path answers to, or None."""
    path = path.split("?", 1)[0]
    return next((template for pattern, template in SPEC_PATHS if pattern.match(path)), None)


def contract_problems(method: str, path: str, response: httpx.Response | requests.Response) -> list[str]:
    """Why a control-plane response breaks the official spec (empty list: it conforms)."""
    template = spec_path(path)
    if template is None:
        return [f"{method} {path} is not a REST v2 path of the spec"]
    schema = schemas.response_schema(template, method, response.status_code)
    if schema is None:
        return [] if not response.content else [f"{response.status_code} must have no body"]
    kind = response.headers.get("content-type", "")
    wanted = "application/problem+json" if schema == "ErrorResponse" else "application/json"
    problems = [] if kind.startswith(wanted) else [f"content-type {kind!r}, expected {wanted}"]
    return problems + schemas.problems(schema, response.json())


@dataclass
class Api:
    base: str
    key: str = API_KEY
    client: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=60.0))
    checked: int = 0

    def rest(self, method: str, path: str, body: Any = None, key: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key or self.key}"}
        response = self.client.request(method, self.base + path, json=body, headers=headers)
        problems = contract_problems(method, path, response)
        assert not problems, f"{method} {path} -> {response.status_code}: {problems}\n{response.text}"
        self.checked += 1
        return response

    def job(self, method: str, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": self.key, **kwargs.pop("headers", {})}
        return self.client.request(method, f"{self.base}/v2{path}", json=body, headers=headers, **kwargs)

    def submit(self, endpoint_id: str, job_input: Any, **extra: Any) -> str:
        """POST /run; the job id."""
        response = self.job("POST", f"/{endpoint_id}/run", {"input": job_input, **extra})
        assert response.status_code == 200, response.text
        return str(response.json()["id"])

    def create_endpoint(self, **overrides: Any) -> dict[str, Any]:
        body = endpoint_body(**overrides)
        response = self.rest("POST", "/v2/serverless", body)
        assert response.status_code == 201, response.text
        endpoint: dict[str, Any] = response.json()
        return endpoint

    def wait_status(
        self, endpoint_id: str, job_id: str, states: set[str], timeout: float = 60.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            response = self.job("GET", f"/{endpoint_id}/status/{job_id}")
            assert response.status_code == 200, response.text
            view: dict[str, Any] = response.json()
            if view["status"] in states:
                return view
            assert time.monotonic() < deadline, f"job {job_id} stuck in {view}"
            time.sleep(0.1)

    def wait_gone(self, endpoint_id: str, job_id: str, timeout: float = 60.0) -> None:
        """Poll until the job answers 404 (removed); fails after ``timeout`` s (a generous bound)."""
        deadline = time.monotonic() + timeout
        while self.job("GET", f"/{endpoint_id}/status/{job_id}").status_code != 404:
            assert time.monotonic() < deadline, f"job {job_id} was never removed"
            time.sleep(0.25)


#: How long a test waits for `rpdeploy emulator serve` to answer its health check.
START_TIMEOUT_S = 180


class EmulatorProcess:
    """`rpdeploy emulator serve` as a child process on a free port."""

    def __init__(self, state: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> None:
        self.state = state
        self.args = args  # more `serve` flags
        self.port = free_port()
        self.env = {**os.environ, "RUNPOD_API_KEY": API_KEY, **FAST_ENV, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self.api = Api(f"http://127.0.0.1:{self.port}")

    def start(self) -> EmulatorProcess:
        self.state.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "deploy", "emulator", "serve", "--port", str(self.port)]
        command += ["--state", str(self.state), *self.args]
        with (self.state / "serve.log").open("ab") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=log)
        # A generous bound, not a timing claim: on a loaded 2-core machine the imports alone
        # have taken over 30 s. A process that misses it is killed, never left behind.
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log()
            try:
                if httpx.get(f"{self.api.base}/_emulator/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.process.kill()
        self.process.wait()
        raise AssertionError(f"emulator did not start within {START_TIMEOUT_S} s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def remove_volumes(self) -> None:
        """Network-volume emulation persists on purpose; a test's volumes go with its state."""
        client = docker.from_env()
        mine = {"label": f"{LABEL}={state_label(self.state)}"}
        for volume in client.volumes.list(filters=mine):
            with contextlib.suppress(docker.errors.APIError):
                volume.remove(force=True)

    def log(self) -> str:
        path = self.state / "serve.log"
        return path.read_text(errors="replace") if path.exists() else ""


def build_sdk_image() -> str:
    """The SDK worker image, built once and reused across sessions by content-hash tag."""
    context = FIXTURES / "sdk-worker"
    digest = hashlib.sha256()
    for path in sorted(context.iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    client = docker.from_env()
    digest.update(client.images.get(BASE_IMAGE).id.encode())
    tag = f"127.0.0.1:5000/rpdeploy-test/sdk-worker:{digest.hexdigest()[:12]}"
    try:
        client.images.get(tag)
    except ImageNotFound:
        try:
            client.images.build(
                path=str(context),
                tag=tag,
                network_mode="host",
                buildargs={"BASE_IMAGE": BASE_IMAGE, "INDEX_URL": INDEX_URL},
                rm=True,
            )
        except BuildError as exc:
            log = "".join(str(chunk.get("stream", "")) for chunk in exc.build_log)
            raise AssertionError(f"building {tag} failed: {exc}\n{log[-3000:]}") from None
        _drop_stale_tags(client, tag)
    return tag


def pushed_sdk_image() -> str:
    """The SDK worker image (`build_sdk_image`) pushed to the local registry: ``repository@sha256:…``.

    For deploys through rpdeploy, which takes immutable references only; a worker of it becomes
    ready (it polls for jobs). The push is a no-op once the registry has it.
    """
    tag = build_sdk_image()
    repository, _, name = tag.rpartition(":")
    client = docker.from_env()
    digest = None
    for event in client.api.push(repository, tag=name, stream=True, decode=True):
        assert "error" not in event, event
        digest = (event.get("aux") or {}).get("Digest", digest)
    client.close()
    assert digest, f"pushing {tag} gave no digest"
    return f"{repository}@{digest}"


def _drop_stale_tags(client: docker.DockerClient, keep: str) -> None:
    """Older content-hash tags of the test image only take disk on a shared machine."""
    repository = keep.rsplit(":", 1)[0]
    # The low-level listing: images.list() inspects each image, and one removed meanwhile fails it.
    for image in client.api.images(name=repository):
        for stale in (t for t in image["RepoTags"] or [] if t != keep):
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(stale)


def wait_for(predicate: Any, timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it is truthy; return its value (a generous bound, not a timing check)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
