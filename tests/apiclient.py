"""Test helpers for code that uses `deploy.api.RunPodApi` against the emulator.

`ContractLog` is a `requests` response hook: hooked on a client's session
(``client.session.hooks["response"].append(log)``), it checks every answer the client
gets against RunPod's vendored spec as it arrives, and records what it checked. The
`runpod_api`, `contract` and `proxied_api` fixtures (tests/conftest.py) use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests

from deploy.api import RunPodApi
from tests.emulator.helpers import contract_problems, spec_path

#: ``proxied_api(**options)``: a client that talks to the emulator through the fault proxy.
ProxiedApi = Callable[..., RunPodApi]


class ContractLog:
    """Every answer the client got, each checked against the spec as it arrives."""

    def __init__(self) -> None:
        #: (method, spec path template, status) of each answer, in order.
        self.checked: list[tuple[str, str, int]] = []

    def __call__(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        method, path = str(response.request.method), str(response.request.path_url)
        problems = contract_problems(method, path, response)
        assert not problems, f"{method} {path} -> {response.status_code}: {problems}"
        self.checked.append((method, str(spec_path(path)), response.status_code))
