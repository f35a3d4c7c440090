"""Fixtures for the REST v2 client tests: a client on the session emulator whose every
answer is checked against the official spec, and clients behind the fault proxy."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import pytest
import requests

from deploy.api import RunPodApi
from deploy.runpod import schemas
from tests.faultproxy import FaultProxy


@cache
def _templates() -> list[tuple[re.Pattern[str], str]]:
    """Every path of both vendored documents, literal segments before parameters."""
    paths = {path for name in schemas.DOCUMENTS for path in schemas.document(name)["paths"]}
    ordered = sorted(paths, key=lambda p: (p.count("{"), -len(p)))
    return [(re.compile(_pattern(p)), p) for p in ordered]


def _pattern(template: str) -> str:
    parts = re.split(r"\{[^}]+\}", template)
    return "^" + "[^/]+".join(re.escape(part) for part in parts) + "$"


def spec_path(path: str) -> str:
    path = path.split("?", 1)[0]
    found = next((template for pattern, template in _templates() if pattern.match(path)), None)
    assert found is not None, f"{path} is not a path of the vendored spec"
    return found


def contract_problems(response: requests.Response) -> list[str]:
    """Why an answer breaks the spec's declared response for its operation (empty: it conforms)."""
    request = response.request
    method, path = str(request.method), str(request.path_url)
    schema = schemas.response_schema(spec_path(path), method, response.status_code)
    if schema is None:
        return [] if not response.content else [f"{response.status_code} must have no body"]
    kind = response.headers.get("content-type", "")
    wanted = "application/problem+json" if schema == "ErrorResponse" else "application/json"
    problems = [] if kind.startswith(wanted) else [f"content-type {kind!r}, expected {wanted}"]
    return problems + schemas.problems(schema, response.json())


class ContractLog:
    """Every answer the client got, each checked against the spec as it arrives."""

    def __init__(self) -> None:
        self.checked: list[tuple[str, str, int]] = []

    def __call__(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        problems = contract_problems(response)
        request = response.request
        assert not problems, f"{request.method} {request.path_url} -> {response.status_code}: {problems}"
        self.checked.append((str(request.method), spec_path(str(request.path_url)), response.status_code))


@pytest.fixture
def contract() -> ContractLog:
    return ContractLog()


@pytest.fixture
def runpod_api(emulator_environ: dict[str, str], contract: ContractLog) -> Iterator[RunPodApi]:
    """`RunPodApi.from_environ` on the session emulator; every answer is checked against the spec."""
    with RunPodApi.from_environ(emulator_environ) as client:
        client.session.hooks["response"].append(contract)
        yield client


ProxiedApi = Callable[..., RunPodApi]


@pytest.fixture
def proxied_api(fault_proxy: FaultProxy, emulator_environ: dict[str, str]) -> Iterator[ProxiedApi]:
    """Factory: a client that talks to the emulator through the fault proxy (small backoff, so
    retries are quick; ``timeout``/``retries`` as the test needs)."""
    made: list[RunPodApi] = []

    def make(**options: Any) -> RunPodApi:
        options = {"backoff": 0.01, **options}
        client = RunPodApi(fault_proxy.url, emulator_environ["RUNPOD_API_KEY"], **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def endpoint_body(name: str, **overrides: Any) -> dict[str, Any]:
    """A minimal valid CreateEndpointRequest that starts no worker (workers.max 0)."""
    body: dict[str, Any] = {
        "name": name,
        "type": "QUEUE",
        "image": "127.0.0.1:5000/rpdeploy-test/none:0",
        "gpu": {"pools": ["ADA_24"]},
        "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4},
        "workers": {"min": 0, "max": 0, "idleTimeout": 5},
    }
    body.update(overrides)
    return body
