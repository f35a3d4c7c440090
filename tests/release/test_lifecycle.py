"""releases, rollback, promote, destroy, ephemeral endpoints, races, name collisions, image choice."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from deploy.api import RunPodApi
from deploy.config import load_config
from deploy.release import desired
from deploy.release.apply import EndpointChanged, apply_plan, prepare
from tests.apiclient import ContractLog
from tests.conftest import json_data
from tests.emulator.helpers import Api
from tests.release.conftest import ProjectFactory
from tests.release.helpers import RunCli, endpoint_named, run_json

pytestmark = pytest.mark.docker


def _project_name(root: Path) -> str:
    line = next(li for li in (root / "rpdeploy.yaml").read_text().splitlines() if li.startswith("project:"))
    return line.split(":")[1].strip()


def test_releases_then_rollback_is_a_new_release_with_the_old_image_and_env(
    project: ProjectFactory, run_cli: RunCli, api_env: dict[str, str], images: list[str], emu_api: Api
) -> None:
    root = project()
    config = root / "rpdeploy.yaml"
    assert run_cli("apply", "--env", "staging", "--image", images[0], cwd=root, env=api_env).exit_code == 0
    config.write_text(config.read_text().replace("MODE: fast", "MODE: slow"))
    assert run_cli("apply", "--env", "staging", "--image", images[1], cwd=root, env=api_env).exit_code == 0

    result, listed = run_json(run_cli, root, api_env, "releases", "--env", "staging")
    assert result.exit_code == 0, result.output
    rows = listed["data"]["releases"]
    assert [(r["version"], r["image"]) for r in rows] == [(2, images[1]), (1, images[0])]
    assert rows[0]["changed"] == ["env", "image"]
    assert listed["data"]["version"] == 2

    result, rolled = run_json(run_cli, root, api_env, "rollback", "--env", "staging", "--steps", "1")
    assert result.exit_code == 0, result.output
    data = rolled["data"]
    assert (data["action"], data["release"]) == ("update", {"version": 3})
    after = endpoint_named(emu_api, f"{_project_name(root)}-staging")
    assert after is not None
    assert (after["image"], after["env"]["MODE"]) == (images[0], "fast")
    history = json.loads((root / "build/rpdeploy/staging/deploy.json").read_text())
    assert [entry["version"] for entry in history] == [1, 2, 3]

    result = run_cli("rollback", "--env", "staging", "--to", "9", cwd=root, env=api_env)
    assert result.exit_code == 2
    assert "--to 9: no such release (releases: v3, v2, v1)" in result.stderr
    result = run_cli("rollback", "--env", "staging", "--to", "2", cwd=root, env=api_env)
    assert result.exit_code == 0, result.output
    after = endpoint_named(emu_api, f"{_project_name(root)}-staging")
    assert after is not None
    assert (after["image"], after["env"]["MODE"]) == (images[1], "slow")


def test_promote_deploys_exactly_the_digest_staging_runs(
    project: ProjectFactory, run_cli: RunCli, api_env: dict[str, str], images: list[str], emu_api: Api
) -> None:
    root = project()
    assert run_cli("apply", "--env", "staging", "--image", images[1], cwd=root, env=api_env).exit_code == 0
    result, promoted = run_json(run_cli, root, api_env, "promote", "--from", "staging", "--to", "production")
    assert result.exit_code == 0, result.output
    assert promoted["data"]["action"] == "create"
    production = endpoint_named(emu_api, f"{_project_name(root)}-production")
    assert production is not None
    assert (production["image"], production["workers"]["min"]) == (images[1], 1)
    again = run_cli("promote", "--from", "staging", "--to", "staging", cwd=root, env=api_env)
    assert again.exit_code == 2


def test_ephemeral_create_and_destroy(
    project: ProjectFactory, run_cli: RunCli, api_env: dict[str, str], images: list[str], emu_api: Api
) -> None:
    root = project()
    name = f"{_project_name(root)}-pr-42"
    result, applied = run_json(run_cli, root, api_env, "apply", "--ephemeral", "pr-42", "--image", images[0])
    assert result.exit_code == 0, result.output
    assert applied["data"]["action"] == "create"
    assert endpoint_named(emu_api, name) is not None
    assert (root / "build/rpdeploy/ephemeral-pr-42/deploy.json").exists()

    refused = run_cli("destroy", "--ephemeral", "pr-42", "-o", "json", cwd=root, env=api_env)
    assert refused.exit_code == 2
    assert "pass --yes" in refused.stderr
    assert endpoint_named(emu_api, name) is not None

    result = run_cli("destroy", "--ephemeral", "pr-42", "--yes", "-o", "json", cwd=root, env=api_env)
    assert result.exit_code == 0, result.output
    assert json_data(result.stdout, "destroy") == {
        "endpoint": {"name": name, "id": applied["data"]["endpoint_id"]},
        "deleted": True,
    }
    assert endpoint_named(emu_api, name) is None
    result = run_cli("destroy", "--ephemeral", "pr-42", "--yes", cwd=root, env=api_env)
    assert result.exit_code == 0
    assert f"nothing to delete: no endpoint named {name}" in result.stdout

    bad = run_cli("apply", "--ephemeral", "PR 42!", "--image", images[0], cwd=root, env=api_env)
    assert bad.exit_code == 2
    assert "--ephemeral 'PR 42!'" in bad.stderr
    # An ephemeral name that is an environment's endpoint: never act on that endpoint.
    assert run_cli("apply", "--env", "staging", "--image", images[0], cwd=root, env=api_env).exit_code == 0
    clash = run_cli("destroy", "--ephemeral", "staging", "--yes", cwd=root, env=api_env)
    assert clash.exit_code == 2
    assert f"{_project_name(root)}-staging is the endpoint of environment staging" in clash.stderr
    assert endpoint_named(emu_api, f"{_project_name(root)}-staging") is not None


def test_destroy_an_environment_endpoint(
    project: ProjectFactory, run_cli: RunCli, api_env: dict[str, str], images: list[str], emu_api: Api
) -> None:
    root = project()
    assert run_cli("apply", "--env", "staging", "--image", images[0], cwd=root, env=api_env).exit_code == 0
    result = run_cli("destroy", "--env", "staging", "--yes", cwd=root, env=api_env)
    assert result.exit_code == 0, result.output
    assert endpoint_named(emu_api, f"{_project_name(root)}-staging") is None


def test_an_apply_raced_by_another_write_refuses_and_names_the_fields(
    project: ProjectFactory,
    api_env: dict[str, str],
    images: list[str],
    emu_api: Api,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = project()
    config = root / "rpdeploy.yaml"
    loaded = load_config(config, "staging")
    where = desired.target(loaded)
    with RunPodApi.from_environ(api_env) as api:
        contract = ContractLog()  # every answer the engine reads, checked against the official spec
        api.session.hooks["response"].append(contract)
        created = prepare(api, loaded, where, images[0], api_env)
        apply_plan(api, loaded, where, created, api_env)
        planned = prepare(api, loaded, where, images[1], api_env)
        assert planned.action == "update"
        # Another deploy writes between this plan's read and its PATCH.
        endpoint_id = planned.endpoint_id
        emu_api.rest("PATCH", f"/v2/serverless/{endpoint_id}", {"workers": {"max": 2}, "disk": 20})
        with pytest.raises(EndpointChanged, match=r"changed since this plan read it \(disk, workers\)"):
            apply_plan(api, loaded, where, planned, api_env)
        writes = api.calls.writes
    after = emu_api.rest("GET", f"/v2/serverless/{endpoint_id}").json()
    assert (after["image"], after["disk"]) == (images[0], 20)
    assert writes == 1  # the create; the raced PATCH was never sent
    assert {path for _, path, _ in contract.checked} >= {
        "/v2/serverless",
        "/v2/serverless/{id}",
        "/v2/catalog/gpus",
    }


def test_two_endpoints_sharing_the_name_is_an_error_not_a_guess(
    project: ProjectFactory, run_cli: RunCli, api_env: dict[str, str], images: list[str], emu_api: Api
) -> None:
    root = project()
    name = f"{_project_name(root)}-staging"
    for _ in range(2):
        emu_api.create_endpoint(name=name, image=images[0])
    result = run_cli("apply", "--env", "staging", "--image", images[0], cwd=root, env=api_env)
    assert result.exit_code == 3, result.output
    assert name in result.stderr
    assert (
        len([e for e in emu_api.rest("GET", "/v2/serverless").json()["endpoints"] if e["name"] == name]) == 2
    )


def test_the_deploy_image_comes_from_the_push_record_and_mutable_tags_are_refused(
    project: ProjectFactory, run_cli: RunCli, api_env: dict[str, str], images: list[str]
) -> None:
    root = project()
    result = run_cli("plan", "--env", "staging", cwd=root, env=api_env)
    assert result.exit_code == 2
    assert (
        "error: no pushed image for env staging: run `rpdeploy push --env staging`, or pass --image REF"
        in result.stderr
    )

    record = {"image": images[1], "digest": images[1].split("@")[1], "tags": [], "size": 1, "pushed_at": "x"}
    (root / "build/rpdeploy/staging").mkdir(parents=True)
    (root / "build/rpdeploy/staging/push.json").write_text(json.dumps(record))
    _, plan = run_json(run_cli, root, api_env, "plan", "--env", "staging")
    assert [c["new"] for c in plan["data"]["changes"] if c["field"] == "image"] == [images[1]]

    for mutable in ("127.0.0.1:5000/acme/demo-worker:latest", "127.0.0.1:5000/acme/demo-worker:main"):
        result = run_cli("plan", "--env", "staging", "--image", mutable, cwd=root, env=api_env)
        assert result.exit_code == 2, result.output
        assert "can move" in result.stderr
    pinned = "127.0.0.1:5000/acme/demo-worker:sha-0123abc"
    result = run_cli("plan", "--env", "staging", "--image", pinned, cwd=root, env=api_env)
    # Accepted (no usage error); never pushed, so only the image check fails, and plan exits 1.
    assert (result.exit_code, "FAIL image:" in result.stdout) == (1, True), result.output
    result = run_cli(
        "plan",
        "--env",
        "staging",
        "--image",
        "127.0.0.1:5000/acme/demo-worker:main",
        "--allow-mutable-tag",
        cwd=root,
        env=api_env,
    )
    assert (result.exit_code, "FAIL image:" in result.stdout) == (1, True), result.output


def test_a_canary_secret_appears_in_no_output_and_no_record(
    project: ProjectFactory,
    run_cli: RunCli,
    api_env: dict[str, str],
    images: list[str],
    tmp_path: Path,
    emu_api: Api,
) -> None:
    canary = f"canary-{os.urandom(8).hex()}"
    root = project(extra="secrets:\n  - name: AWS_ENDPOINT_URL\n    mode: inline\n")
    github_output = tmp_path / "github_output"
    env = {**api_env, "AWS_ENDPOINT_URL": canary, "GITHUB_OUTPUT": str(github_output)}
    seen: list[str] = []
    for args in (
        ("plan", "--env", "staging", "--image", images[0]),
        ("apply", "--env", "staging", "--image", images[0]),
        ("apply", "--env", "staging", "--image", images[1], "--wait"),
        ("releases", "--env", "staging"),
        ("rollback", "--env", "staging"),
        ("promote", "--from", "staging", "--to", "production"),
    ):
        for output in ("text", "json"):
            result = run_cli(*args, "-o", output, cwd=root, env=env)
            assert result.exit_code == 0, (args, result.output)
            seen += [result.stdout, result.stderr]
    # The value did reach the endpoint (inline mode): it is masked, not missing.
    deployed = endpoint_named(emu_api, f"{_project_name(root)}-staging")
    assert deployed is not None
    assert deployed["env"]["AWS_ENDPOINT_URL"] == canary
    env["AWS_ENDPOINT_URL"] = canary + "-rotated"
    result = run_cli("plan", "--env", "staging", "--image", images[0], "-o", "json", cwd=root, env=env)
    changes = json_data(result.stdout, "plan")["changes"]
    assert {"field": "env.AWS_ENDPOINT_URL", "old": "***", "new": "***", "rolls_workers": True} in changes
    seen += [result.stdout, result.stderr]
    seen += [path.read_text() for path in (root / "build").rglob("*.json")]
    outputs = github_output.read_text()
    assert "endpoint_id=" in outputs
    assert "release=" in outputs
    seen.append(outputs)
    assert all(canary not in text for text in seen)
    assert any("***" in text for text in seen)
