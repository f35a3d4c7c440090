"""A private image pulled with the registry credential `registry_auth.ensure` made: a real
registry with htpasswd (bcrypt) auth, a real push, an emulator worker that pulls with the
credential and runs a job; a wrong password leaves the worker unable to pull.

The registry is this module's own (docker-registry and htpasswd, which scripts/stack.sh
installs): the stack's auth registry has one fixed port, and on a machine shared by several
worktrees only the worktree that started it holds its password.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import docker
import httpx
import pytest

from deploy.api import RunPodApi
from deploy.release import preflight, registry_auth
from tests.conftest import BASE_CONFIG, MakeProject
from tests.emulator.helpers import Api, build_sdk_image, endpoint_body, free_port, wait_for
from tests.release.resources import load, project_config, unique_project

pytestmark = pytest.mark.docker


@dataclass(frozen=True)
class AuthRegistry:
    host: str
    username: str
    password: str


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthRegistry]:
    root = tmp_path_factory.mktemp("auth-registry")
    registry = AuthRegistry(f"127.0.0.1:{free_port()}", "puller", secrets.token_urlsafe(18))
    htpasswd = root / "htpasswd"
    # -B: bcrypt, the only hash the registry reads; -i: the password on stdin, never in argv.
    subprocess.run(
        ["htpasswd", "-B", "-i", "-c", str(htpasswd), registry.username],
        input=registry.password,
        text=True,
        check=True,
        capture_output=True,
    )
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\nlog: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}}}\n"
        f"http: {{addr: {registry.host}}}\n"
        f"auth: {{htpasswd: {{realm: rpdeploy-test, path: {htpasswd}}}}}\n"
    )
    with (root / "registry.log").open("ab") as log:
        process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=log)
    try:
        wait_for(lambda: _code(f"http://{registry.host}/v2/") == 401, 120.0, "the auth registry to answer")
        yield registry
    finally:
        process.terminate()
        process.wait(timeout=30)


def _code(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return 0


@pytest.fixture(scope="module")
def private_image(auth_registry: AuthRegistry) -> Iterator[str]:
    """The SDK test worker, pushed to the auth registry; the local tag removed afterwards."""
    client = docker.from_env()
    source = build_sdk_image()
    repository = f"{auth_registry.host}/rpdeploy-test/private-sdk"
    client.images.get(source).tag(repository, "v1")
    auth = {"username": auth_registry.username, "password": auth_registry.password}
    for event in client.api.push(repository, tag="v1", auth_config=auth, stream=True, decode=True):
        assert "error" not in event, event
    yield f"{repository}:v1"
    client.images.remove(f"{repository}:v1")


def config(project: str, host: str) -> str:
    text = BASE_CONFIG.replace("  registry: 127.0.0.1:5000\n", f"  registry: {host}\n").replace(
        "  strategy: slim\n",
        "  strategy: slim\n"
        "  registry_auth: {username_env: PRIVATE_REG_USER, password_env: PRIVATE_REG_PASSWORD}\n",
    )
    return project_config(project, text)


def workers(api: Api, endpoint_id: str) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = api.rest("GET", f"/v2/serverless/{endpoint_id}/workers").json()["workers"]
    return listed


def test_a_worker_pulls_the_private_image_with_the_credential_and_not_with_a_wrong_one(
    make_project: MakeProject,
    runpod_api: RunPodApi,
    api: Api,
    auth_registry: AuthRegistry,
    private_image: str,
) -> None:
    project = unique_project()
    loaded = load(make_project, config(project, auth_registry.host))
    good = {"PRIVATE_REG_USER": auth_registry.username, "PRIVATE_REG_PASSWORD": auth_registry.password}
    bad = {**good, "PRIVATE_REG_PASSWORD": auth_registry.password + "-wrong"}
    env = {"HANDLER_MODE": "plain"}
    client = runpod_api
    credential = registry_auth.ensure(client, loaded, good, dry_run=False)
    assert credential is not None
    body = endpoint_body(f"{project}-ok", image=private_image, registry=credential, env=env)
    body["workers"] = {"min": 0, "max": 1, "idleTimeout": 30}
    pulled = client.create_endpoint(body)
    view = api.job("POST", f"/{pulled['id']}/runsync", {"input": {"mock_return": "pulled"}}).json()
    assert view["status"] == "COMPLETED", view
    assert view["output"]["echo"] == "pulled"

    wrong = registry_auth.ensure(client, loaded, bad, dry_run=False)
    assert wrong not in (None, credential)  # a new password is a new credential
    body = endpoint_body(f"{project}-bad", image=private_image, registry=wrong, env=env)
    body["workers"] = {"min": 1, "max": 1, "idleTimeout": 30}
    refused = client.create_endpoint(body)
    failed = wait_for(
        lambda: [w for w in workers(api, refused["id"]) if w["status"] == "UNHEALTHY"],
        120.0,
        "the worker whose pull is refused",
    )
    reason = failed[0]["statusReason"]
    assert "image pull failed" in reason
    assert "registry credential" in reason
    assert auth_registry.password not in reason
    for endpoint in (pulled, refused):
        client.delete_endpoint(endpoint["id"])


def test_preflight_checks_a_private_image_with_the_pull_credentials(
    make_project: MakeProject, auth_registry: AuthRegistry, private_image: str
) -> None:
    """The image check reads the manifest as RunPod will pull it: with image.registry_auth's variables."""
    loaded = load(make_project, config(unique_project(), auth_registry.host))
    found = preflight.image_check(
        loaded,
        private_image,
        {"PRIVATE_REG_USER": auth_registry.username, "PRIVATE_REG_PASSWORD": auth_registry.password},
    )
    assert found.ok, found.detail
    assert "compressed" in found.detail
    refused = preflight.image_check(loaded, private_image, {})
    assert not refused.ok
    assert auth_registry.password not in refused.detail
