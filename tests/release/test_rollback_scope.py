"""Rollback restores what a release rolled out, never the autoscaler settings (docs/deploy.md).

RunPod's release diffs name every field a PATCH changed, `workers.max` included (the
spec's example release, runpod-platform.md §2.6); the emulator records them the same way,
so a rollback that undid whole diffs would shrink the endpoint back as well.
"""

from __future__ import annotations

import pytest

from deploy.config import load_config
from tests.emulator.helpers import Api
from tests.release.conftest import ProjectFactory
from tests.release.helpers import RunCli, endpoint_named, run_json

pytestmark = pytest.mark.docker


def test_rollback_puts_the_image_back_and_leaves_workers_max_as_it_is_now(
    project: ProjectFactory, run_cli: RunCli, api_env: dict[str, str], images: list[str], emu_api: Api
) -> None:
    root = project()
    config = root / "rpdeploy.yaml"
    assert run_cli("apply", "--env", "staging", "--image", images[0], cwd=root, env=api_env).exit_code == 0
    config.write_text(config.read_text().replace("workers: {max: 1}", "workers: {max: 4}"))
    assert run_cli("apply", "--env", "staging", "--image", images[1], cwd=root, env=api_env).exit_code == 0
    name = load_config(config, env="staging").config.endpoint_name("staging")
    endpoint = endpoint_named(emu_api, name)
    assert endpoint is not None
    releases = emu_api.rest("GET", f"/v2/serverless/{endpoint['id']}/releases").json()["releases"]
    # One PATCH, one release whose diff holds both fields (as RunPod's would).
    assert {d["field"] for d in releases[0]["diff"]} == {"image", "workers.max"}

    result, rolled = run_json(run_cli, root, api_env, "rollback", "--env", "staging", "--steps", "1")
    assert result.exit_code == 0, result.output
    assert rolled["data"]["release"] == {"version": 3}
    after = endpoint_named(emu_api, name)
    assert after is not None
    assert (after["image"], after["workers"]["max"]) == (images[0], 4)
