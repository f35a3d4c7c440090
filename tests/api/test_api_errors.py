"""Bad keys, bad settings and bad request bodies: each is one clear line with its exit code,
and nothing is sent that RunPod would refuse (real emulator over HTTP)."""

from __future__ import annotations

import pytest

from deploy.api import ApiError, RunPodApi
from deploy.api.client import api_url
from deploy.errors import ExitCode, RequestInvalid, UsageError
from tests.api.conftest import ContractLog
from tests.emulator.helpers import endpoint_body

KEY = "rpa_" + "Z" * 28


def test_a_wrong_key_says_which_variable_to_set(emulator_environ: dict[str, str]) -> None:
    wrong = {**emulator_environ, "RUNPOD_API_KEY": "rpa_wrong"}
    with RunPodApi.from_environ(wrong) as client, pytest.raises(ApiError) as caught:
        client.list_endpoints()
    assert str(caught.value) == "RunPod API refused the key (401): set RUNPOD_API_KEY to a valid API key"
    assert caught.value.status == 401
    assert caught.value.exit_code == ExitCode.UNAVAILABLE
    assert "rpa_wrong" not in f"{caught.value} {caught.value.hint}"


@pytest.mark.parametrize("environ", [{}, {"RUNPOD_API_KEY": ""}, {"RUNPOD_API_KEY": "  "}])
def test_a_missing_key_is_a_usage_error_naming_the_variable(environ: dict[str, str]) -> None:
    with pytest.raises(UsageError, match=r"^RUNPOD_API_KEY is not set") as caught:
        RunPodApi.from_environ(environ)
    assert caught.value.exit_code == ExitCode.USAGE


def test_the_default_url_is_runpods() -> None:
    with RunPodApi.from_environ({"RUNPOD_API_KEY": KEY}) as client:
        assert client.base_url == "https://api.runpod.io"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://api.runpod.io/", "https://api.runpod.io"),
        # What `rpdeploy emulator env` exports: the REST base with its version.
        ("http://127.0.0.1:8787/v2", "http://127.0.0.1:8787"),
        ("http://127.0.0.1:8787/v2/", "http://127.0.0.1:8787"),
        ("http://[::1]:8787", "http://[::1]:8787"),
    ],
)
def test_api_url_is_the_server_root(raw: str, expected: str) -> None:
    assert api_url(raw) == expected


@pytest.mark.parametrize(
    "raw", ["ftp://api.runpod.io", "api.runpod.io", "http://", "https://u:p@api.runpod.io", "http://h/?q=1"]
)
def test_a_bad_url_is_a_usage_error(raw: str) -> None:
    with pytest.raises(UsageError, match=r"^RUNPOD_API_URL must be"):
        RunPodApi.from_environ({"RUNPOD_API_KEY": KEY, "RUNPOD_API_URL": raw})


def test_the_key_is_in_no_repr(emulator_environ: dict[str, str]) -> None:
    key = emulator_environ["RUNPOD_API_KEY"]
    with RunPodApi.from_environ(emulator_environ) as client:
        shown = f"{client!r} {client.session.auth!r} {client.calls!r}"
    assert key not in shown
    assert "RunPodApi(base_url=" in shown


def test_a_body_the_spec_refuses_is_never_sent(runpod_api: RunPodApi, contract: ContractLog) -> None:
    with pytest.raises(RequestInvalid) as caught:
        runpod_api.create_endpoint(endpoint_body("api-invalid", workers={"min": 0, "max": -1}))
    assert str(caught.value) == (
        "rpdeploy built a request RunPod would refuse: POST /v2/serverless: "
        "workers.max: -1 is less than the minimum of 0"
    )
    assert caught.value.exit_code == ExitCode.INTERNAL
    assert runpod_api.calls.to_json() == {"reads": 0, "writes": 0}
    assert contract.checked == []


def test_an_unknown_field_is_named(runpod_api: RunPodApi) -> None:
    with pytest.raises(RequestInvalid, match=r"PATCH /v2/serverless/x: \$: .*'bogus' was unexpected"):
        runpod_api.update_endpoint("x", {"bogus": 1})
    assert runpod_api.calls.writes == 0


def test_an_invalid_secret_request_never_shows_the_value(runpod_api: RunPodApi) -> None:
    value = "v" * 40
    with pytest.raises(RequestInvalid) as caught:
        runpod_api.create_secret("RUNPOD NAME WITH SPACES", value, description=value)
    assert "name: 'RUNPOD NAME WITH SPACES' does not match" in str(caught.value)
    assert value not in str(caught.value)
    assert runpod_api.calls.writes == 0


def test_a_rule_the_server_enforces_is_one_line(runpod_api: RunPodApi, contract: ContractLog) -> None:
    # Valid by the schema, refused by RunPod's rules: the server's problem body becomes the line.
    body = endpoint_body("api-rule", gpu={"pools": ["ADA_24"], "excludedTypes": ["NVIDIA H100 80GB HBM3"]})
    with pytest.raises(ApiError) as caught:
        runpod_api.create_endpoint(body)
    message = str(caught.value)
    assert message.startswith("RunPod API 400 on POST /v2/serverless: ")
    assert "\n" not in message
    assert caught.value.status == 400
    assert contract.checked == [("POST", "/v2/serverless", 400)]
