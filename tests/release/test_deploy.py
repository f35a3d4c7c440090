"""plan/apply end to end against the emulator over HTTP: create, no-op, changes, resets, preflight, cost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploy.release.plan import normalize
from deploy.runpod.catalog import catalog
from tests.conftest import json_data
from tests.emulator.helpers import Api
from tests.release.conftest import DEFAULT_ENDPOINT, ProjectFactory
from tests.release.helpers import RunCli, endpoint_named, run_json

pytestmark = pytest.mark.docker

APPLY_KEYS = ["endpoint_id", "changed", "action", "written", "release", "api_calls", "preflight", "cost"]
PLAN_KEYS = ["endpoint", "action", "changes", "resources", "preflight", "cost"]


def _name(root: Path, env: str = "staging") -> str:
    project = next(
        line for line in (root / "rpdeploy.yaml").read_text().splitlines() if line.startswith("project:")
    )
    return f"{project.split(':')[1].strip()}-{env}"


def test_create_then_noop_with_zero_writes_and_at_most_four_reads(
    project: ProjectFactory, run_cli: RunCli, api_env: dict[str, str], images: list[str], emu_api: Api
) -> None:
    root = project()
    result = run_cli("plan", "--env", "staging", "--image", images[0], "-o", "json", cwd=root, env=api_env)
    assert result.exit_code == 0, result.output
    plan = json_data(result.stdout, "plan")
    assert list(plan) == PLAN_KEYS
    assert plan["endpoint"] == {"name": _name(root), "id": None}
    assert plan["action"] == "create"
    assert {c["field"] for c in plan["changes"]} >= {"image", "workers.max", "gpu.pools", "env"}
    assert all(check["ok"] for check in plan["preflight"]), plan["preflight"]

    result = run_cli("apply", "--env", "staging", "--image", images[0], "-o", "json", cwd=root, env=api_env)
    assert result.exit_code == 0, result.output
    data = json_data(result.stdout, "apply")
    assert list(data) == APPLY_KEYS
    assert (data["action"], data["changed"], data["release"]) == ("create", True, {"version": 1})
    assert data["api_calls"]["writes"] == 1
    created = endpoint_named(emu_api, _name(root))
    assert created is not None
    assert created["id"] == data["endpoint_id"]
    assert (created["image"], created["workers"]["max"], created["disk"]) == (images[0], 1, 10)

    result = run_cli("apply", "--env", "staging", "--image", images[0], "-o", "json", cwd=root, env=api_env)
    assert result.exit_code == 0, result.output
    noop = json_data(result.stdout, "apply")
    assert (noop["action"], noop["changed"], noop["endpoint_id"]) == ("none", False, data["endpoint_id"])
    assert noop["api_calls"]["writes"] == 0
    assert noop["api_calls"]["reads"] <= 4
    assert noop["release"] == {"version": 1}

    history = json.loads((root / "build/rpdeploy/staging/deploy.json").read_text())
    assert [entry["action"] for entry in history] == ["create"]
    assert history[0]["image"] == images[0]
    assert history[0]["version"] == 1
    assert "id" not in json.dumps(history[0]["endpoint"])

    expect = run_cli(
        "plan", "--env", "staging", "--image", images[0], "--expect-no-changes", cwd=root, env=api_env
    )
    assert expect.exit_code == 0, expect.output
    assert "action: none" in expect.stdout


def test_image_change_is_one_write_and_a_new_release_whose_rollout_is_followed(
    project: ProjectFactory, run_cli: RunCli, api_env: dict[str, str], images: list[str], emu_api: Api
) -> None:
    root = project()
    assert run_cli("apply", "--env", "staging", "--image", images[0], cwd=root, env=api_env).exit_code == 0

    drift = run_cli(
        "plan", "--env", "staging", "--image", images[1], "--expect-no-changes", cwd=root, env=api_env
    )
    assert drift.exit_code == 1, drift.output
    assert f"~ image: {images[0]} -> {images[1]}  (release)" in drift.stdout

    result = run_cli(
        "apply",
        "--env",
        "staging",
        "--image",
        images[1],
        "--wait",
        "--timeout",
        "60",
        "-o",
        "json",
        cwd=root,
        env=api_env,
    )
    assert result.exit_code == 0, result.output
    data = json_data(result.stdout, "apply")
    assert (data["action"], data["release"]) == ("update", {"version": 2})
    assert data["api_calls"]["writes"] == 1
    assert "rollout: done" in result.stderr
    releases = emu_api.rest("GET", f"/v2/serverless/{data['endpoint_id']}/releases").json()
    assert releases["endpointVersion"] == 2
    assert releases["rollout"]["inProgress"] is False
    newest = releases["releases"][0]
    assert {"field": "image", "old": images[0], "new": images[1]} in newest["diff"]


def test_a_change_that_does_not_roll_workers_is_marked_in_place(
    project: ProjectFactory, run_cli: RunCli, api_env: dict[str, str], images: list[str]
) -> None:
    root = project()
    assert run_cli("apply", "--env", "staging", "--image", images[0], cwd=root, env=api_env).exit_code == 0
    _, plan = run_json(run_cli, root, api_env, "plan", "--env", "production", "--image", images[0])
    # production is another endpoint: a create. Change staging's workers instead:
    assert plan["data"]["action"] == "create"
    config = root / "rpdeploy.yaml"
    config.write_text(config.read_text().replace("workers: {max: 1}", "workers: {max: 2}"))
    _, plan = run_json(run_cli, root, api_env, "plan", "--env", "staging", "--image", images[0])
    assert plan["data"]["changes"] == [{"field": "workers.max", "old": 1, "new": 2, "rolls_workers": False}]
    _, applied = run_json(run_cli, root, api_env, "apply", "--env", "staging", "--image", images[0])
    assert applied["data"]["release"] == {"version": 1}


def test_env_key_removed_is_shown_and_gone_after_apply(
    project: ProjectFactory, run_cli: RunCli, api_env: dict[str, str], images: list[str], emu_api: Api
) -> None:
    root = project()
    assert run_cli("apply", "--env", "staging", "--image", images[0], cwd=root, env=api_env).exit_code == 0
    config = root / "rpdeploy.yaml"
    config.write_text(config.read_text().replace("    MODE: fast\n", ""))
    result, plan = run_json(run_cli, root, api_env, "plan", "--env", "staging", "--image", images[0])
    assert result.exit_code == 0, result.output
    assert plan["data"]["changes"] == [
        {"field": "env.MODE", "old": "fast", "new": None, "rolls_workers": True}
    ]
    text = run_cli("plan", "--env", "staging", "--image", images[0], cwd=root, env=api_env)
    assert "- env.MODE: fast  (release)" in text.stdout
    assert run_cli("apply", "--env", "staging", "--image", images[0], cwd=root, env=api_env).exit_code == 0
    after = endpoint_named(emu_api, _name(root))
    assert after is not None
    # The slim runtime's settings travel in the endpoint env (Config.runtime_env), defaults included.
    runtime = {name: value for name, value in after["env"].items() if name.startswith("RPDEPLOY_")}
    assert runtime == {
        "RPDEPLOY_INSTALLER": "pip",
        "RPDEPLOY_MIN_FREE_OS_MB": "512",
        "RPDEPLOY_MIN_FREE_VOLUME_MB": "2048",
        "RPDEPLOY_VOLUME_PATH": "/runpod-volume",
    }
    others = {name: value for name, value in after["env"].items() if name not in runtime}
    assert others == {"LOG_LEVEL": "INFO"}


def test_a_field_dropped_from_the_config_is_reset_to_its_default(
    project: ProjectFactory, run_cli: RunCli, api_env: dict[str, str], images: list[str], emu_api: Api
) -> None:
    root = project()
    assert run_cli("apply", "--env", "staging", "--image", images[0], cwd=root, env=api_env).exit_code == 0
    config = root / "rpdeploy.yaml"
    config.write_text(
        config.read_text().replace("  disk: 10\n", "").replace('    allowedCudaVersions: ["12.4"]\n', "")
    )
    _, plan = run_json(run_cli, root, api_env, "plan", "--env", "staging", "--image", images[0])
    assert plan["data"]["changes"] == [
        {"field": "disk", "old": 10, "new": 5, "rolls_workers": True},
        {"field": "gpu.allowedCudaVersions", "old": ["12.4"], "new": [], "rolls_workers": True},
    ]
    assert run_cli("apply", "--env", "staging", "--image", images[0], cwd=root, env=api_env).exit_code == 0
    after = endpoint_named(emu_api, _name(root))
    assert after is not None
    assert after["disk"] == 5
    assert after["gpu"]["allowedCudaVersions"] == []
    _, again = run_json(run_cli, root, api_env, "plan", "--env", "staging", "--image", images[0])
    assert again["data"]["action"] == "none"


def test_drift_made_in_the_console_shows_in_the_plan(
    project: ProjectFactory, run_cli: RunCli, api_env: dict[str, str], images: list[str], emu_api: Api
) -> None:
    root = project()
    _, applied = run_json(run_cli, root, api_env, "apply", "--env", "staging", "--image", images[0])
    endpoint_id = applied["data"]["endpoint_id"]
    emu_api.rest("PATCH", f"/v2/serverless/{endpoint_id}", {"flashboot": "FLASHBOOT", "timeout": 9000})
    _, plan = run_json(run_cli, root, api_env, "plan", "--env", "staging", "--image", images[0])
    assert plan["data"]["changes"] == [
        {"field": "flashboot", "old": "FLASHBOOT", "new": "OFF", "rolls_workers": False},
        {"field": "timeout", "old": 9000, "new": 300000, "rolls_workers": False},
    ]


@pytest.mark.parametrize(
    ("gpu", "image", "check", "detail"),
    [
        ("pools: [NOT_A_POOL]", None, "gpu.pool", "no GPU pool NOT_A_POOL in the catalog"),
        (
            'pools: [BLACKWELL_96]\n    allowedCudaVersions: ["12.4"]',
            None,
            "gpu.cuda",
            "CUDA 12.4 is offered by no GPU type in BLACKWELL_96 (offered: 12.8, 12.9)",
        ),
        (
            "pools: [ADA_24]",
            "127.0.0.1:5000/rpdeploy-test/never-pushed@sha256:" + "0" * 64,
            "image",
            "is not in the registry",
        ),
    ],
)
def test_a_failed_preflight_refuses_to_write(
    project: ProjectFactory,
    run_cli: RunCli,
    api_env: dict[str, str],
    images: list[str],
    emu_api: Api,
    gpu: str,
    image: str | None,
    check: str,
    detail: str,
) -> None:
    endpoint = DEFAULT_ENDPOINT.replace('pools: [ADA_24]\n    allowedCudaVersions: ["12.4"]', gpu)
    root = project(endpoint)
    ref = image or images[0]
    result, plan = run_json(run_cli, root, api_env, "plan", "--env", "staging", "--image", ref)
    assert result.exit_code == 1, result.output  # a failed preflight fails `plan` too (a CI gate)
    bad = [c for c in plan["data"]["preflight"] if not c["ok"]]
    assert [c["check"] for c in bad] == [check]
    assert detail in bad[0]["detail"]
    result = run_cli("apply", "--env", "staging", "--image", ref, cwd=root, env=api_env)
    assert result.exit_code == 1, result.output
    assert f"error: preflight failed: {check}:" in result.stderr
    assert "--force" in result.stderr
    assert endpoint_named(emu_api, _name(root)) is None


def test_force_deploys_despite_a_missing_image(
    project: ProjectFactory, run_cli: RunCli, api_env: dict[str, str], emu_api: Api
) -> None:
    root = project()
    missing = "127.0.0.1:5000/rpdeploy-test/never-pushed@sha256:" + "1" * 64
    result = run_cli("apply", "--env", "staging", "--image", missing, "--force", cwd=root, env=api_env)
    assert result.exit_code == 0, result.output
    assert "deployed despite a failed preflight (--force): image:" in result.stdout
    # The reference as given (repo@sha256:…), never rebuilt as repo:sha256:….
    assert f"image: {missing} is not in the registry" in result.stdout
    assert endpoint_named(emu_api, _name(root)) is not None


def test_cost_comes_from_the_catalog_and_shows_the_change(
    project: ProjectFactory, run_cli: RunCli, api_env: dict[str, str], images: list[str]
) -> None:
    root = project(DEFAULT_ENDPOINT.replace("pools: [ADA_24]", "pools: [ADA_24]\n    count: 2"))
    hourly = catalog().pools["ADA_24"].price_per_hour
    _, plan = run_json(run_cli, root, api_env, "plan", "--env", "production", "--image", images[0])
    cost = plan["data"]["cost"]
    assert cost["per_worker"] == round(hourly * 2, 4)
    assert cost["always_on"] == round(hourly * 2 * 1, 4)
    assert cost["ceiling"] == round(hourly * 2 * 3, 4)
    assert (cost["current"], cost["change"]) == (None, None)
    assert run_cli("apply", "--env", "production", "--image", images[0], cwd=root, env=api_env).exit_code == 0
    config = root / "rpdeploy.yaml"
    config.write_text(config.read_text().replace("workers: {min: 1, max: 3}", "workers: {min: 2, max: 3}"))
    _, plan = run_json(run_cli, root, api_env, "plan", "--env", "production", "--image", images[0])
    cost = plan["data"]["cost"]
    assert cost["current"]["always_on"] == round(hourly * 2, 4)
    assert cost["change"] == {"always_on": round(hourly * 2, 4), "ceiling": 0.0}


def test_normalize_fills_the_server_defaults_so_an_omitted_field_is_no_change() -> None:
    body = {
        "name": "x",
        "type": "QUEUE",
        "image": "i",
        "gpu": {"pools": ["ADA_24"]},
        "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4},
    }
    settings = normalize(body)
    assert settings["disk"] == 5
    assert settings["workers"] == {"min": 0, "max": 3, "idleTimeout": 10}
    assert settings["gpu"] == {
        "pools": ["ADA_24"],
        "count": 1,
        "excludedTypes": [],
        "allowedCudaVersions": [],
        "minCudaVersion": None,
    }


def test_a_cpu_endpoint_is_priced_from_the_cpu_catalog(
    project: ProjectFactory, run_cli: RunCli, api_env: dict[str, str], images: list[str]
) -> None:
    endpoint = DEFAULT_ENDPOINT.replace(
        '  gpu:\n    pools: [ADA_24]\n    allowedCudaVersions: ["12.4"]\n',
        "  cpu:\n    - {id: cpu3c, vcpuCount: 4}\n",
    )
    root = project(endpoint)
    per_vcpu = catalog().cpu_flavors["cpu3c"].serverless_price_per_vcpu_hour
    result, plan = run_json(run_cli, root, api_env, "plan", "--env", "production", "--image", images[0])
    assert result.exit_code == 0, result.output
    cost = plan["data"]["cost"]
    assert cost["per_worker"] == round(per_vcpu * 4, 4)
    assert (cost["always_on"], cost["ceiling"]) == (round(per_vcpu * 4, 4), round(per_vcpu * 4 * 3, 4))
    assert not [c for c in plan["data"]["preflight"] if c["check"].startswith("gpu")]
