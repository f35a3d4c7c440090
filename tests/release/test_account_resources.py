"""plan/apply with RunPod secrets, network volumes and --target local, against the emulator over HTTP."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import json_data
from tests.emulator.helpers import API_KEY, Api, free_port
from tests.release.conftest import DEFAULT_ENDPOINT, ProjectFactory
from tests.release.helpers import SECRETS, RunCli, endpoint_named, project_name, run_json, with_secret

pytestmark = pytest.mark.docker


def test_apply_creates_the_missing_secret_first_and_a_noop_then_reads_four_times(
    project: ProjectFactory, run_cli: RunCli, api_env: dict[str, str], images: list[str], emu_api: Api
) -> None:
    root = project(extra=SECRETS)
    secret, env = with_secret(root, api_env)
    _, plan = run_json(run_cli, root, env, "plan", "--env", "staging", "--image", images[0])
    checks = [c for c in plan["data"]["preflight"] if c["check"] == "secret"]
    assert [(c["ok"], "apply creates it" in c["detail"]) for c in checks] == [(True, True)]

    result, applied = run_json(run_cli, root, env, "apply", "--env", "staging", "--image", images[0])
    assert result.exit_code == 0, result.output
    assert applied["data"]["api_calls"]["writes"] == 2  # the secret, then the endpoint
    assert f"secrets: create {secret}" in result.stderr
    found = emu_api.rest("GET", f"/v2/account/secrets?name={secret}").json()["secrets"]
    assert [s["name"] for s in found] == [secret]
    endpoint = endpoint_named(emu_api, f"{project_name(root)}-staging")
    assert endpoint is not None
    assert endpoint["env"]["AWS_ACCESS_KEY_ID"] == f"{{{{ RUNPOD_SECRET_{secret} }}}}"

    result, noop = run_json(run_cli, root, env, "apply", "--env", "staging", "--image", images[0])
    assert result.exit_code == 0, result.output
    assert noop["data"]["api_calls"] == {"reads": 4, "writes": 0}


def test_a_missing_secret_without_its_value_fails_the_preflight(
    project: ProjectFactory, run_cli: RunCli, api_env: dict[str, str], images: list[str], emu_api: Api
) -> None:
    root = project(extra=SECRETS)
    env = {key: value for key, value in api_env.items() if key != "AWS_ACCESS_KEY_ID"}
    result = run_cli(
        "apply", "--env", "staging", "--image", images[0], cwd=root, env={**env, "AWS_ACCESS_KEY_ID": ""}
    )
    assert result.exit_code == 1, result.output
    assert "error: preflight failed: secret:" in result.stderr
    assert "$AWS_ACCESS_KEY_ID is not set" in result.stderr
    assert endpoint_named(emu_api, f"{project_name(root)}-staging") is None


def test_a_volume_outside_the_allowed_data_centers_fails_the_preflight(
    project: ProjectFactory, run_cli: RunCli, api_env: dict[str, str], images: list[str], emu_api: Api
) -> None:
    created = emu_api.rest(
        "POST",
        "/v2/network-volumes",
        {"name": f"v{os.urandom(4).hex()}", "size": 10, "dataCenter": "US-TX-3"},
    )
    assert created.status_code in (200, 201), created.text
    volume_id = created.json()["id"]
    endpoint = DEFAULT_ENDPOINT + f"  networkVolumes: [{volume_id}]\n  dataCenterIds: [US-KS-2]\n"
    root = project(endpoint)
    result, plan = run_json(run_cli, root, api_env, "plan", "--env", "staging", "--image", images[0])
    assert result.exit_code == 1, result.output
    bad = [c for c in plan["data"]["preflight"] if not c["ok"]]
    assert [c["check"] for c in bad] == ["volume"]
    assert "is in US-TX-3, which is not in dataCenterIds (US-KS-2)" in bad[0]["detail"]
    result = run_cli("apply", "--env", "staging", "--image", images[0], cwd=root, env=api_env)
    assert result.exit_code == 1, result.output
    emu_api.rest("DELETE", f"/v2/network-volumes/{volume_id}")


def test_a_named_volume_is_pending_in_the_plan_and_created_and_attached_by_apply(
    project: ProjectFactory, run_cli: RunCli, api_env: dict[str, str], images: list[str], emu_api: Api
) -> None:
    endpoint = DEFAULT_ENDPOINT + "  networkVolumes:\n    - {name: data, size: 10, dataCenter: US-KS-2}\n"
    root = project(endpoint)
    volume = f"{project_name(root)}/data"
    _, plan = run_json(run_cli, root, api_env, "plan", "--env", "staging", "--image", images[0])
    change = next(c for c in plan["data"]["changes"] if c["field"] == "networkVolumes")
    assert change["new"] == [f"(new: {volume})"]
    result, _applied = run_json(run_cli, root, api_env, "apply", "--env", "staging", "--image", images[0])
    assert result.exit_code == 0, result.output
    volumes = [
        v for v in emu_api.rest("GET", "/v2/network-volumes").json()["networkVolumes"] if v["name"] == volume
    ]
    assert len(volumes) == 1
    endpoint_doc = endpoint_named(emu_api, f"{project_name(root)}-staging")
    assert endpoint_doc is not None
    assert endpoint_doc["networkVolumes"] == [volumes[0]["id"]]
    _, again = run_json(run_cli, root, api_env, "plan", "--env", "staging", "--image", images[0])
    assert again["data"]["action"] == "none"
    run_cli("destroy", "--env", "staging", "--yes", cwd=root, env=api_env)
    emu_api.rest("DELETE", f"/v2/network-volumes/{volumes[0]['id']}")


def test_target_local_takes_the_running_emulator(
    project: ProjectFactory, run_cli: RunCli, images: list[str], tmp_path: Path
) -> None:
    """`--target local` reads URL and key from `rpdeploy emulator start`'s state, not from RUNPOD_*."""
    state = tmp_path / "emulator"
    key = API_KEY
    started = run_cli(
        "emulator", "start", "--port", str(free_port()), "--state", str(state), env={"RUNPOD_API_KEY": key}
    )
    assert started.exit_code == 0, started.output
    try:
        root = project()
        env = {
            "RPDEPLOY_EMULATOR_STATE": str(state),
            "RUNPOD_API_KEY": key,
            "RUNPOD_API_URL": "http://127.0.0.1:9/nothing-listens-here",
        }
        result = run_cli(
            "plan",
            "--env",
            "staging",
            "--image",
            images[0],
            "--target",
            "local",
            "-o",
            "json",
            cwd=root,
            env=env,
        )
        assert result.exit_code == 0, result.output
        assert json_data(result.stdout, "plan")["action"] == "create"
    finally:
        assert run_cli("emulator", "stop", "--state", str(state)).exit_code == 0
