"""The client's retries and error lines when the network or the API misbehaves: real HTTP to
the emulator through the fault-injecting proxy (tests/faultproxy.py), which counts attempts."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest

from deploy import __version__
from deploy.api import ApiError, RunPodApi
from deploy.api.transport import CONNECT_RETRIES
from tests.apiclient import ProxiedApi
from tests.emulator.helpers import endpoint_body, free_port
from tests.faultproxy import Fault, FaultProxy

LIST = "/v2/serverless"

# A hang far longer than the client's timeout, and a timeout far longer than a normal answer
# through the proxy even on a loaded 2-core machine: attempt counts must not depend on load.
TIMEOUT_S = 3.0
HANG_S = 8.0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_429_waits_for_retry_after_then_retries(proxied_api: ProxiedApi, fault_proxy: FaultProxy) -> None:
    fault_proxy.inject("GET", LIST, Fault.answer(429, retry_after=1))
    client = proxied_api()
    assert isinstance(client.list_endpoints(), list)
    assert fault_proxy.attempts("GET", LIST) == 2
    assert client.calls.to_json() == {"reads": 2, "writes": 0}
    first, second = fault_proxy.log
    # Retry-After is honoured: the retry came no earlier than the server asked (a lower bound only).
    assert second.at - first.at >= 1.0


def test_429_on_a_create_is_retried_because_it_was_not_processed(
    proxied_api: ProxiedApi, fault_proxy: FaultProxy, runpod_api: RunPodApi
) -> None:
    name = unique("api-429")
    fault_proxy.inject("POST", LIST, Fault.answer(429, retry_after=0))
    created = proxied_api().create_endpoint(endpoint_body(name))
    try:
        assert fault_proxy.attempts("POST", LIST) == 2
        assert [e["id"] for e in runpod_api.list_endpoints() if e["name"] == name] == [created["id"]]
    finally:
        runpod_api.delete_endpoint(created["id"])


def test_502_and_503_on_a_read_are_retried(proxied_api: ProxiedApi, fault_proxy: FaultProxy) -> None:
    fault_proxy.inject("GET", "/v2/catalog/gpus", Fault.answer(502), Fault.answer(503))
    client = proxied_api()
    assert client.gpu_types()
    assert fault_proxy.attempts("GET", "/v2/catalog/gpus") == 3
    assert client.calls.reads == 3


def test_5xx_until_retries_run_out_is_one_line(proxied_api: ProxiedApi, fault_proxy: FaultProxy) -> None:
    fault_proxy.inject("GET", LIST, *[Fault.answer(503, detail="upstream unavailable")] * 3)
    client = proxied_api(retries=2)
    with pytest.raises(ApiError) as caught:
        client.list_endpoints()
    assert str(caught.value) == "RunPod API 503 on GET /v2/serverless: upstream unavailable"
    assert caught.value.status == 503
    assert fault_proxy.attempts("GET", LIST) == 3
    assert client.calls.reads == 3


def test_delete_is_idempotent_so_a_503_is_retried(
    proxied_api: ProxiedApi, fault_proxy: FaultProxy, runpod_api: RunPodApi
) -> None:
    endpoint = runpod_api.create_endpoint(endpoint_body(unique("api-del")))
    path = f"/v2/serverless/{endpoint['id']}"
    fault_proxy.inject("DELETE", path, Fault.answer(503))
    proxied_api().delete_endpoint(endpoint["id"])
    assert fault_proxy.attempts("DELETE", path) == 2
    assert all(e["id"] != endpoint["id"] for e in runpod_api.list_endpoints())


def test_a_503_on_patch_is_not_repeated_blindly(
    proxied_api: ProxiedApi, fault_proxy: FaultProxy, runpod_api: RunPodApi
) -> None:
    endpoint = runpod_api.create_endpoint(endpoint_body(unique("api-patch")))
    path = f"/v2/serverless/{endpoint['id']}"
    try:
        fault_proxy.inject("PATCH", path, Fault.answer(503, forward_first=True))
        with pytest.raises(ApiError, match=rf"^RunPod API 503 on PATCH {path}: "):
            proxied_api().update_endpoint(endpoint["id"], {"workers": {"max": 1}})
        assert fault_proxy.attempts("PATCH", path) == 1
    finally:
        runpod_api.delete_endpoint(endpoint["id"])


def test_create_whose_answer_is_lost_is_found_by_name_not_repeated(
    proxied_api: ProxiedApi, fault_proxy: FaultProxy, runpod_api: RunPodApi
) -> None:
    name = unique("api-lost")
    # The proxy forwards the POST (the endpoint is created) and then answers 503.
    fault_proxy.inject("POST", LIST, Fault.answer(503, forward_first=True))
    client = proxied_api()
    created = client.create_endpoint(endpoint_body(name))
    try:
        assert created["name"] == name
        assert fault_proxy.attempts("POST", LIST) == 1
        assert [e["id"] for e in runpod_api.list_endpoints() if e["name"] == name] == [created["id"]]
        assert client.calls.to_json() == {"reads": 1, "writes": 1}
    finally:
        runpod_api.delete_endpoint(created["id"])


def test_create_that_failed_before_the_server_is_reported_not_invented(
    proxied_api: ProxiedApi, fault_proxy: FaultProxy
) -> None:
    name = unique("api-failed")
    fault_proxy.inject("POST", LIST, Fault.answer(503, detail="no capacity"))
    with pytest.raises(ApiError) as caught:
        proxied_api().create_endpoint(endpoint_body(name))
    assert str(caught.value) == "RunPod API 503 on POST /v2/serverless: no capacity"
    assert fault_proxy.attempts("POST", LIST) == 1
    assert fault_proxy.attempts("GET", LIST) == 1  # looked it up by name: not there


def test_create_whose_answer_times_out_is_found_by_name(
    proxied_api: ProxiedApi, fault_proxy: FaultProxy, runpod_api: RunPodApi
) -> None:
    name = unique("api-slow")
    fault_proxy.inject("POST", LIST, Fault.hang(HANG_S, forward_first=True))
    client = proxied_api(timeout=TIMEOUT_S)
    created = client.create_endpoint(endpoint_body(name))
    try:
        assert fault_proxy.attempts("POST", LIST) == 1
        assert client.calls.to_json() == {"reads": 1, "writes": 1}  # the timed-out POST was sent
        assert [e["id"] for e in runpod_api.list_endpoints() if e["name"] == name] == [created["id"]]
    finally:
        runpod_api.delete_endpoint(created["id"])


def test_read_timeout_is_retried_for_a_read(proxied_api: ProxiedApi, fault_proxy: FaultProxy) -> None:
    fault_proxy.inject("GET", LIST, Fault.hang(HANG_S))
    client = proxied_api(timeout=TIMEOUT_S)
    assert isinstance(client.list_endpoints(), list)
    assert fault_proxy.attempts("GET", LIST) == 2
    assert client.calls.reads == 2


def test_read_timeouts_until_retries_run_out_name_the_url(
    proxied_api: ProxiedApi, fault_proxy: FaultProxy
) -> None:
    fault_proxy.inject("GET", LIST, Fault.hang(HANG_S), Fault.hang(HANG_S))
    client = proxied_api(timeout=TIMEOUT_S, retries=1)
    with pytest.raises(ApiError) as caught:
        client.list_endpoints()
    url = f"{fault_proxy.url}/v2/serverless"
    expected = f"cannot reach the RunPod API: GET {url}: no answer within {TIMEOUT_S:g} s (timed out)"
    assert str(caught.value) == expected
    assert caught.value.hint is not None
    assert "RUNPOD_API_URL" in caught.value.hint
    assert fault_proxy.attempts("GET", LIST) == 2


def test_api_down_is_one_line_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with RunPodApi(url, "rpa_key", retries=2, backoff=0.01) as client, pytest.raises(ApiError) as caught:
        client.list_endpoints()
    assert str(caught.value) == (
        f"cannot reach the RunPod API: GET {url}/v2/serverless: connection refused (nothing listens there)"
    )
    assert caught.value.status is None
    assert client.calls.to_json() == {"reads": 0, "writes": 0}  # nothing was ever sent


def test_a_refused_connection_is_retried_once_not_with_the_full_backoff() -> None:
    """Nothing listens: one retry, not `retries` (each with a 5xx-sized wait); counted, not timed."""
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with RunPodApi(url, "rpa_key", retries=4) as client, pytest.raises(ApiError) as caught:
        client.list_endpoints()
    assert "connection refused (nothing listens there)" in str(caught.value)
    assert client.calls.unopened == 1 + CONNECT_RETRIES == 2
    assert client.calls.to_json() == {"reads": 0, "writes": 0}


def test_5xx_keeps_every_retry_while_refused_connections_get_one(
    proxied_api: ProxiedApi, fault_proxy: FaultProxy
) -> None:
    fault_proxy.inject("GET", LIST, *[Fault.answer(503)] * 3)
    client = proxied_api(retries=3, backoff=0.01)
    assert isinstance(client.list_endpoints(), list)
    assert fault_proxy.attempts("GET", LIST) == 4
    assert client.calls.unopened == 0


def test_non_json_200_is_one_line(proxied_api: ProxiedApi, fault_proxy: FaultProxy) -> None:
    fault_proxy.inject("GET", LIST, Fault.garbage())
    with pytest.raises(ApiError) as caught:
        proxied_api().list_endpoints()
    message = str(caught.value)
    assert message.startswith("RunPod API answered GET /v2/serverless with 200 but not JSON (text/html: ")
    assert "\n" not in message
    assert fault_proxy.attempts("GET", LIST) == 1


def test_problem_errors_list_becomes_the_line(proxied_api: ProxiedApi, fault_proxy: FaultProxy) -> None:
    fault_proxy.inject("PATCH", "/v2/serverless/abc", Fault.answer(422, errors=["workers.max: must be >= 0"]))
    with pytest.raises(ApiError) as caught:
        proxied_api().update_endpoint("abc", {"workers": {"max": 1}})
    assert str(caught.value) == "RunPod API 422 on PATCH /v2/serverless/abc: workers.max: must be >= 0"
    assert caught.value.status == 422
    assert fault_proxy.pending() == 0


def test_a_secret_value_echoed_by_the_server_is_masked(
    proxied_api: ProxiedApi, fault_proxy: FaultProxy
) -> None:
    value = "s3cr3t-" + uuid.uuid4().hex
    fault_proxy.inject(
        "POST", "/v2/account/secrets", Fault.answer(400, detail=f"value {value!r} is not allowed\nhere")
    )
    fault_proxy.inject("GET", "/v2/account/secrets", Fault.answer(400, detail=f"again {value}"))
    with pytest.raises(ApiError) as caught:
        proxied_api().create_secret("AWS_SECRET_ACCESS_KEY", value)
    # A 400 was not carried out: no lookup, and the line shows *** where the value was.
    assert str(caught.value) == "RunPod API 400 on POST /v2/account/secrets: value '***' is not allowed here"
    assert fault_proxy.attempts("GET", "/v2/account/secrets") == 0


@pytest.mark.parametrize("kind", ["secret", "registry", "volume"])
def test_every_create_whose_answer_is_lost_is_found_by_name(
    kind: str, proxied_api: ProxiedApi, fault_proxy: FaultProxy, runpod_api: RunPodApi
) -> None:
    name = unique(f"api_lost_{kind}")
    client = proxied_api()
    path, create, delete = {
        "secret": (
            "/v2/account/secrets",
            lambda: client.create_secret(name, "value-" + name),
            runpod_api.delete_secret,
        ),
        "registry": (
            "/v2/registries",
            lambda: client.create_registry(name, "bob", "pw-" + name),
            runpod_api.delete_registry,
        ),
        "volume": (
            "/v2/network-volumes",
            lambda: client.create_network_volume({"name": name, "size": 10, "dataCenter": "US-KS-2"}),
            runpod_api.delete_network_volume,
        ),
    }[kind]
    fault_proxy.inject("POST", path, Fault.answer(502, forward_first=True))
    created = create()
    try:
        assert created["name"] == name
        assert fault_proxy.attempts("POST", path) == 1
        assert fault_proxy.attempts("GET", path) == 1
        assert client.calls.to_json() == {"reads": 1, "writes": 1}
    finally:
        delete(created["id"])


def test_a_429_asking_for_an_hour_is_reported_not_waited_out(
    proxied_api: ProxiedApi, fault_proxy: FaultProxy
) -> None:
    hourly = Fault.answer(429, retry_after=1812, detail="rate limit exceeded for the hour")
    fault_proxy.inject("GET", LIST, hourly)
    client = proxied_api()
    with pytest.raises(ApiError) as caught:
        client.list_endpoints()
    assert str(caught.value) == "RunPod API 429 on GET /v2/serverless: rate limit exceeded for the hour"
    assert caught.value.hint == (
        "the account's API rate limit is used up: RunPod asks to wait 1812 s, then run again"
    )
    assert fault_proxy.attempts("GET", LIST) == 1
    assert client.calls.reads == 1


def test_json_of_the_wrong_shape_is_one_line(proxied_api: ProxiedApi, fault_proxy: FaultProxy) -> None:
    wrong = Fault(200, (("Content-Type", "application/json"),), b'["not", "an", "object"]')
    fault_proxy.inject("GET", "/v2/serverless/abc", wrong)
    fault_proxy.inject("GET", LIST, Fault(200, (("Content-Type", "application/json"),), b'{"items": []}'))
    client = proxied_api()
    with pytest.raises(ApiError) as caught:
        client.get_endpoint("abc")
    assert str(caught.value) == "RunPod API answered GET /v2/serverless/abc without a JSON object"
    with pytest.raises(ApiError) as caught:
        client.list_endpoints()
    assert str(caught.value) == "RunPod API answered GET /v2/serverless without the 'endpoints' list"


def test_a_host_that_does_not_resolve_is_one_line() -> None:
    url = "http://rpdeploy-no-such-host.invalid"  # .invalid never resolves (RFC 6761)
    with RunPodApi(url, "rpa_key", retries=0) as client, pytest.raises(ApiError) as caught:
        client.gpu_types()
    assert str(caught.value) == (
        f"cannot reach the RunPod API: GET {url}/v2/catalog/gpus: the host name does not resolve (DNS)"
    )


def test_https_to_a_plain_http_server_is_one_line(emulator_environ: dict[str, str]) -> None:
    url = emulator_environ["RUNPOD_API_URL"].removesuffix("/v2").replace("http://", "https://")
    key = emulator_environ["RUNPOD_API_KEY"]
    with RunPodApi(url, key, retries=0) as client, pytest.raises(ApiError) as caught:
        client.list_endpoints()
    assert str(caught.value) == (
        f"cannot reach the RunPod API: GET {url}/v2/serverless: the TLS handshake failed"
    )
    assert key not in str(caught.value)


def test_debug_logs_carry_neither_the_key_nor_a_secret_value(
    proxied_api: ProxiedApi,
    fault_proxy: FaultProxy,
    runpod_api: RunPodApi,
    emulator_environ: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name, value = unique("api_logged"), "canary-" + uuid.uuid4().hex
    fault_proxy.inject("POST", "/v2/account/secrets", Fault.answer(429, retry_after=0))
    fault_proxy.inject("PATCH", "/v2/account/secrets/none", Fault.hang(HANG_S))
    client = proxied_api(timeout=TIMEOUT_S)
    # A library imported elsewhere in the session may have disabled, detached or quietened
    # these loggers; this test needs them on, whatever ran before it.
    for logger_name in ("urllib3", "urllib3.connectionpool", "urllib3.util.retry", "rpdeploy.api"):
        monkeypatch.setattr(logging.getLogger(logger_name), "disabled", False)
        monkeypatch.setattr(logging.getLogger(logger_name), "propagate", True)
        caplog.set_level(logging.DEBUG, logger=logger_name)  # a library may have raised its level
    with caplog.at_level(logging.DEBUG):
        created = client.create_secret(name, value)
        with pytest.raises(ApiError):
            client.update_secret("none", value=value)
    runpod_api.delete_secret(created["id"])
    assert "Retry" in caplog.text  # urllib3 logged its retries: the check below looked at them
    assert value not in caplog.text
    assert emulator_environ["RUNPOD_API_KEY"] not in caplog.text


def test_every_request_carries_the_bearer_key_and_user_agent_even_with_a_netrc(
    proxied_api: ProxiedApi,
    fault_proxy: FaultProxy,
    runpod_api: RunPodApi,
    emulator_environ: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # requests lets a ~/.netrc entry for the host replace an Authorization header; the
    # client's session-level auth must win.
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password not-the-key\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    client = proxied_api()
    client.gpu_types()
    created = client.create_secret(unique("api_headers"), "value")
    runpod_api.delete_secret(created["id"])
    assert [a.method for a in fault_proxy.log] == ["GET", "POST"]
    for attempt in fault_proxy.log:
        assert attempt.headers["Authorization"] == f"Bearer {emulator_environ['RUNPOD_API_KEY']}"
        assert attempt.headers["User-Agent"] == f"rpdeploy/{__version__}"
