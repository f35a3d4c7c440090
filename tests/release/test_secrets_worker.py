"""A synced secret reaches a real worker (the runpod SDK in Docker under the emulator), and a
rotation reaches the workers of the next release: what `secrets sync` tells its users."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from deploy.release import secrets_sync
from deploy.runpod.secrets import reference
from tests.conftest import MakeProject
from tests.emulator.helpers import Api, build_sdk_image, endpoint_body
from tests.release.resources import connect, load, project_config, unique_project

pytestmark = pytest.mark.docker


def env_hash(api: Api, endpoint_id: str, variable: str) -> str:
    """sha256 of ``variable`` in a worker's env (the worker never sends the value itself)."""
    view: dict[str, Any] = api.job(
        "POST", f"/{endpoint_id}/runsync", {"input": {"env_sha256": variable}}
    ).json()
    assert view["status"] == "COMPLETED", view
    return str(view["output"]["env_sha256"])


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def test_workers_of_the_next_release_get_the_rotated_value(
    make_project: MakeProject, emulator_environ: dict[str, str], api: Api
) -> None:
    sdk_image = build_sdk_image()
    project = unique_project()
    loaded = load(make_project, project_config(project))
    name = loaded.config.secret_name(loaded.config.secrets[1])
    first, second = f"{project}-value-1", f"{project}-value-2"
    values = {"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": first}
    with connect(emulator_environ) as client:
        secrets_sync.sync(client, loaded, values)
        env = {"HANDLER_MODE": "plain", "AWS_SECRET_ACCESS_KEY": reference(name)}
        body = endpoint_body(f"{project}-ep", image=sdk_image, env=env)
        body["workers"] = {"min": 0, "max": 1, "idleTimeout": 30}
        endpoint = client.create_endpoint(body)
        assert env_hash(api, endpoint["id"], "AWS_SECRET_ACCESS_KEY") == sha(first)

        rotated = secrets_sync.sync(client, loaded, {**values, "AWS_SECRET_ACCESS_KEY": second})
        assert [a.action for a in rotated.secrets] == ["none", "rotate"]
        # A new release (an env change) replaces the worker; the new one boots with the new value.
        client.update_endpoint(endpoint["id"], {"env": {**env, "RELEASE": "2"}})
        assert env_hash(api, endpoint["id"], "AWS_SECRET_ACCESS_KEY") == sha(second)
        client.delete_endpoint(endpoint["id"])
