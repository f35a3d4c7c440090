"""The job API client's settings and request bodies (no server needed: nothing is sent)."""

from __future__ import annotations

from typing import Any

import pytest

from deploy.api import RunPodApi
from deploy.api.jobs import request_body
from deploy.errors import UsageError


def test_runpod_serves_jobs_from_api_runpod_ai() -> None:
    with RunPodApi.from_environ({"RUNPOD_API_KEY": "k"}) as api:
        assert api.jobs.base_url == "https://api.runpod.ai/v2"


def test_another_api_server_serves_both_planes() -> None:
    # The emulator's one base, as `rpdeploy emulator env` exports RUNPOD_API_URL.
    with RunPodApi.from_environ({"RUNPOD_API_KEY": "k", "RUNPOD_API_URL": "http://127.0.0.1:8000/v2"}) as api:
        assert api.jobs.base_url == "http://127.0.0.1:8000/v2"


def test_the_sdk_variable_wins() -> None:
    environ = {
        "RUNPOD_API_KEY": "k",
        "RUNPOD_API_URL": "http://127.0.0.1:8000/v2",
        "RUNPOD_ENDPOINT_BASE_URL": "http://127.0.0.1:9000/v2/",
    }
    with RunPodApi.from_environ(environ) as api:
        assert api.jobs.base_url == "http://127.0.0.1:9000/v2"


@pytest.mark.parametrize("raw", ["ftp://x/v2", "not a url", "http://u:p@host/v2", "http://host/v2?x=1"])
def test_a_bad_job_url_is_a_usage_error(raw: str) -> None:
    with pytest.raises(UsageError, match=r"^RUNPOD_ENDPOINT_BASE_URL must be an http\(s\) URL"):
        RunPodApi.from_environ({"RUNPOD_API_KEY": "k", "RUNPOD_ENDPOINT_BASE_URL": raw})


@pytest.mark.parametrize(
    ("payload", "body"),
    [
        ({"prompt": "hi"}, {"input": {"prompt": "hi"}}),
        ({"input": {"text": "hi"}}, {"input": {"text": "hi"}}),
        ({"input": {"x": 1}, "name": "n", "timeout": 5}, {"input": {"x": 1}, "name": "n", "timeout": 5}),
        ({"input": {}}, {"input": {"input": {}}}),  # a falsy input is wrapped, as the SDK does
        ("text", {"input": "text"}),
        ([1, 2], {"input": [1, 2]}),
    ],
)
def test_request_bodies_follow_the_sdk(payload: Any, body: dict[str, Any]) -> None:
    assert request_body(payload) == body
