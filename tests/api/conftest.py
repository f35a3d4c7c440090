"""Fixtures for the REST v2 client tests: a client on the session emulator whose every
answer is checked against the official spec, and clients behind the fault proxy."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from deploy.api import RunPodApi
from tests.emulator.helpers import contract_problems, spec_path
from tests.faultproxy import FaultProxy


class ContractLog:
    """Every answer the client got, each checked against the spec as it arrives."""

    def __init__(self) -> None:
        self.checked: list[tuple[str, str, int]] = []

    def __call__(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        method, path = str(response.request.method), str(response.request.path_url)
        problems = contract_problems(method, path, response)
        assert not problems, f"{method} {path} -> {response.status_code}: {problems}"
        self.checked.append((method, str(spec_path(path)), response.status_code))


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
