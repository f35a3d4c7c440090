"""Private images: a worker pulls its endpoint's image with the endpoint's registry credential.

Real parts only: the stack's second registry (127.0.0.1:5001, htpasswd with bcrypt; user and
password from stack.env), the Docker engine, an emulator process and the SDK worker image
pushed there. The local copy is untagged before each start, so only a pull with the
credential can bring the image back, as on a fresh RunPod host.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import docker
import pytest
from docker.errors import APIError

from tests.emulator.helpers import Api, EmulatorProcess
from tests.test_image_docker import stack_env

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def private_image(sdk_image: str) -> Iterator[tuple[str, dict[str, str]]]:
    """The SDK worker image pushed to the auth registry, and that registry's credential."""
    env = stack_env()
    auth = {
        "username": env["RPDEPLOY_AUTH_REGISTRY_USERNAME"],
        "password": env["RPDEPLOY_AUTH_REGISTRY_PASSWORD"],
    }
    client = docker.from_env()
    repository = f"{env['RPDEPLOY_AUTH_REGISTRY']}/rpdeploy-test/private-worker"
    tag = sdk_image.rsplit(":", 1)[1]
    client.images.get(sdk_image).tag(repository, tag)
    for event in client.api.push(repository, tag=tag, auth_config=auth, stream=True, decode=True):
        assert "error" not in event, event
    image = f"{repository}:{tag}"
    yield image, auth
    _untag(image)


def _untag(image: str) -> None:
    with contextlib.suppress(APIError):
        docker.from_env().images.remove(image)


def _start(api: Api, image: str, registry: str | None, name: str) -> str:
    _untag(image)
    created = api.create_endpoint(
        name=name,
        image=image,
        registry=registry,
        env={"HANDLER_MODE": "plain"},
        workers={"min": 1, "max": 1, "idleTimeout": 60},
    )
    return str(created["id"])


def _failed_start(api: Api, endpoint_id: str) -> str:
    """The statusReason of the endpoint's first failed worker (polled; generous bound)."""
    deadline = time.monotonic() + 120
    while True:
        listed: list[dict[str, Any]] = api.rest("GET", f"/v2/serverless/{endpoint_id}/workers").json()[
            "workers"
        ]
        reasons = [w["statusReason"] for w in listed if w["status"] == "UNHEALTHY" and w.get("statusReason")]
        if reasons:
            return str(reasons[0])
        assert time.monotonic() < deadline, f"no failed start on {endpoint_id}: {listed}"
        time.sleep(0.2)


def test_the_right_credential_pulls_and_the_worker_runs_jobs(
    api: Api, private_image: tuple[str, dict[str, str]]
) -> None:
    image, auth = private_image
    registry = api.rest("POST", "/v2/registries", {"name": "stack-auth", **auth}).json()
    endpoint_id = _start(api, image, registry["id"], "private-ok")
    view = api.job("POST", f"/{endpoint_id}/runsync", {"input": {"mock_return": "pulled"}}).json()
    assert view["status"] == "COMPLETED", view
    assert view["output"]["echo"] == "pulled"
    api.rest("DELETE", f"/v2/serverless/{endpoint_id}")
    api.rest("DELETE", f"/v2/registries/{registry['id']}")


def test_a_wrong_password_fails_the_worker_start_with_one_line(
    api: Api, emulator: EmulatorProcess, private_image: tuple[str, dict[str, str]]
) -> None:
    image, auth = private_image
    wrong = "wrong-password-canary-5d1"
    registry = api.rest("POST", "/v2/registries", {"name": "stack-wrong", **auth, "password": wrong}).json()
    endpoint_id = _start(api, image, registry["id"], "private-wrong")
    reason = _failed_start(api, endpoint_id)
    assert reason.startswith(
        f"worker start failed: image pull failed for {image} with the endpoint's registry credential: "
    )
    assert "unauthorized" in reason.lower() or "authentication" in reason.lower(), reason
    assert "\n" not in reason
    assert wrong not in emulator.log()
    assert auth["password"] not in emulator.log()
    api.rest("DELETE", f"/v2/serverless/{endpoint_id}")
    api.rest("DELETE", f"/v2/registries/{registry['id']}")


def test_without_a_credential_the_private_image_does_not_pull(
    api: Api, private_image: tuple[str, dict[str, str]]
) -> None:
    image, _ = private_image
    endpoint_id = _start(api, image, None, "private-anonymous")
    reason = _failed_start(api, endpoint_id)
    assert reason.startswith(f"worker start failed: image pull failed for {image}: "), reason
    api.rest("DELETE", f"/v2/serverless/{endpoint_id}")
