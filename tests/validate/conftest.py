"""Fixtures for the validation tests: the session emulator (tests/conftest.py), the SDK test
worker image (tests/emulator: the unmodified runpod SDK; its handler sleeps, raises, streams
and returns an `error` key on request) and endpoints running it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from deploy.api import RunPodApi
from tests.emulator.helpers import Api, build_sdk_image


@pytest.fixture(scope="session")
def sdk_image() -> str:
    return build_sdk_image()


def make_endpoint(api: Api, image: str, name: str, env: dict[str, str], max_workers: int = 2) -> str:
    body: dict[str, Any] = {
        "name": name,
        "image": image,
        "env": env,
        "workers": {"min": 0, "max": max_workers, "idleTimeout": 30},
    }
    return str(api.create_endpoint(**body)["id"])


@pytest.fixture(scope="module")
def plain_endpoint(api: Api, sdk_image: str) -> str:
    """A queue endpoint whose handler does what each job's input asks (tests/emulator fixture)."""
    return make_endpoint(api, sdk_image, "validate-plain", {"HANDLER_MODE": "plain"})


@pytest.fixture(scope="module")
def stream_endpoint(api: Api, sdk_image: str) -> str:
    """A generator handler: ``{"chunks": N}`` yields N chunks (aggregated as the output)."""
    return make_endpoint(
        api, sdk_image, "validate-stream", {"HANDLER_MODE": "generator", "AGGREGATE": "1"}, 1
    )


@pytest.fixture
def client(emulator_environ: dict[str, str]) -> Iterator[RunPodApi]:
    with RunPodApi.from_environ(emulator_environ) as api:
        yield api
