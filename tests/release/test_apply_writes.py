"""Apply writes only what its plan showed, checks before its first write, reads each resource once,
waits for ready workers, and refuses contradictory options; all against the emulator over HTTP."""

from __future__ import annotations

import os
from typing import Any

import pytest

from deploy.api import RunPodApi
from deploy.config import load_config
from deploy.release import cost, desired
from deploy.release.apply import EndpointChanged, RolloutFailed, apply_plan, prepare, rollout_state
from tests.emulator.helpers import Api
from tests.release.conftest import DEFAULT_ENDPOINT, ProjectFactory
from tests.release.helpers import SECRETS, RunCli, endpoint_named, project_name, run_json, with_secret

pytestmark = pytest.mark.docker


def _secret(emu_api: Api, name: str) -> dict[str, Any] | None:
    found = emu_api.rest("GET", f"/v2/account/secrets?name={name}").json()["secrets"]
    exact = [s for s in found if s["name"] == name]
    return exact[0] if exact else None


def test_apply_never_rotates_a_secret_creates_a_missing_one_and_says_what_it_wrote(
    project: ProjectFactory, run_cli: RunCli, api_env: dict[str, str], images: list[str], emu_api: Api
) -> None:
    root = project(extra=SECRETS)
    secret, env = with_secret(root, api_env)
    result, created = run_json(run_cli, root, env, "apply", "--env", "staging", "--image", images[0])
    assert result.exit_code == 0, result.output
    assert created["data"]["written"] == [
        {"kind": "secret", "name": secret, "action": "create"},
        {"kind": "endpoint", "name": f"{project_name(root)}-staging", "action": "create"},
    ]
    stored = _secret(emu_api, secret)
    assert stored is not None

    # A changed value is a warning pointing at `secrets sync`: no apply rotates it, ephemeral or not.
    changed = {**env, "AWS_ACCESS_KEY_ID": f"key-{os.urandom(6).hex()}"}
    _, plan = run_json(run_cli, root, changed, "plan", "--env", "staging", "--image", images[0])
    check = next(c for c in plan["data"]["preflight"] if c["check"] == "secret")
    assert (check["ok"], check["warning"], check["pending"]) == (True, True, False)
    assert "run `rpdeploy secrets sync` to rotate it" in check["detail"]
    assert plan["data"]["resources"] == []
    noop = run_cli("apply", "--env", "staging", "--image", images[0], cwd=root, env=changed)
    assert noop.exit_code == 0, noop.output
    assert "WARN secret:" in noop.stdout
    assert "unchanged, nothing written: endpoint" in noop.stdout
    assert "0 writes" in noop.stdout
    result, ephemeral = run_json(
        run_cli, root, changed, "apply", "--ephemeral", "pr-42", "--image", images[0]
    )
    assert result.exit_code == 0, result.output
    assert [item["kind"] for item in ephemeral["data"]["written"]] == ["endpoint"]
    assert ephemeral["data"]["api_calls"]["writes"] == 1
    assert _secret(emu_api, secret) == stored  # the value production reads was not touched
    assert run_cli("destroy", "--ephemeral", "pr-42", "--yes", cwd=root, env=changed).exit_code == 0

    # A missing secret is in the plan's resources; apply creates it and says so (changed: true).
    emu_api.rest("DELETE", f"/v2/account/secrets/{stored['id']}")
    _, plan = run_json(run_cli, root, env, "plan", "--env", "staging", "--image", images[0])
    assert plan["data"]["action"] == "none"
    assert plan["data"]["resources"] == [{"kind": "secret", "name": secret, "action": "create"}]
    assert (
        f"resource: create secret {secret}"
        in run_cli("plan", "--env", "staging", "--image", images[0], cwd=root, env=env).stdout
    )
    result, applied = run_json(run_cli, root, env, "apply", "--env", "staging", "--image", images[0])
    assert result.exit_code == 0, result.output
    assert applied["data"]["changed"] is True
    assert applied["data"]["written"] == [{"kind": "secret", "name": secret, "action": "create"}]
    assert applied["data"]["api_calls"] == {"reads": 4, "writes": 1}
    emu_api.rest("DELETE", f"/v2/account/secrets/{_secret(emu_api, secret)['id']}")  # type: ignore[index]
    text = run_cli("apply", "--env", "staging", "--image", images[0], cwd=root, env=env)
    assert f"wrote secret {secret} (created): endpoint" in text.stdout


def test_an_update_reads_each_resource_once(
    project: ProjectFactory, run_cli: RunCli, api_env: dict[str, str], images: list[str]
) -> None:
    root = project(extra=SECRETS)
    _, env = with_secret(root, api_env)
    assert run_cli("apply", "--env", "staging", "--image", images[0], cwd=root, env=env).exit_code == 0
    result, updated = run_json(run_cli, root, env, "apply", "--env", "staging", "--image", images[1])
    assert result.exit_code == 0, result.output
    # Endpoint list, GPU catalog, data centers, secrets list, the race check's re-read, releases.
    assert updated["data"]["api_calls"] == {"reads": 6, "writes": 1}


def test_the_race_check_comes_before_the_first_write(
    project: ProjectFactory, api_env: dict[str, str], images: list[str], emu_api: Api
) -> None:
    root = project(extra=SECRETS)
    secret, env = with_secret(root, api_env)
    loaded = desired.with_inline_secrets(load_config(root / "rpdeploy.yaml", "staging"), env)
    where = desired.target(loaded)
    with RunPodApi.from_environ(env) as api:
        apply_plan(api, loaded, where, prepare(api, loaded, where, images[0], env), env)
        stored = _secret(emu_api, secret)
        assert stored is not None
        emu_api.rest("DELETE", f"/v2/account/secrets/{stored['id']}")
        planned = prepare(api, loaded, where, images[1], env)
        assert [item["kind"] for item in planned.resources] == ["secret"]
        emu_api.rest("PATCH", f"/v2/serverless/{planned.endpoint_id}", {"disk": 20})
        writes = api.calls.writes
        with pytest.raises(
            EndpointChanged, match=r"changed since this plan read it \(disk\); nothing written"
        ):
            apply_plan(api, loaded, where, planned, env)
        assert api.calls.writes == writes
    assert _secret(emu_api, secret) is None  # the secret the plan listed was not created either


def _worker(status: str, *, stale: bool = False, reason: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"id": f"w-{status.lower()}", "status": status, "isStale": stale, "gpuCount": 1}
    if reason:
        found["statusReason"] = reason
    return found


@pytest.mark.parametrize(
    ("workers", "needed", "done", "state"),
    [
        ([], 1, False, "0/1 ready worker(s) on v2"),  # workers.min 1, no worker: not "0/0 done"
        ([_worker("INITIALIZING")], 1, False, "0/1 ready worker(s) on v2"),
        ([_worker("IDLE"), _worker("IDLE", stale=True)], 1, False, "1 worker(s) on an older version"),
        ([_worker("IDLE")], 1, True, "1 ready worker(s) on v2 (needed 1)"),
        ([], 0, True, "0 ready worker(s) on v2 (needed 0)"),  # workers.min 0: nothing to wait for
    ],
)
def test_rollout_is_done_only_with_ready_workers_on_the_new_version(
    workers: list[dict[str, Any]], needed: int, done: bool, state: str
) -> None:
    """The decision on `/workers` answers shaped as RunPod's ListEndpointWorkersResponse."""
    found, said = rollout_state({"endpointVersion": 2, "workers": workers}, 2, needed)
    assert (found, state in said) == (done, True), said


def test_a_failing_worker_ends_the_wait_at_once() -> None:
    doc = {"endpointVersion": 2, "workers": [_worker("UNHEALTHY", reason="exited with code 1")]}
    with pytest.raises(RolloutFailed, match="worker w-unhealthy is unhealthy: exited with code 1"):
        rollout_state(doc, 2, 1)


def test_an_unhealthy_worker_of_an_older_version_does_not_fail_the_rollout() -> None:
    """A rollback's wait: the failed release's worker may still be listed (stale) for a while."""
    doc = {"endpointVersion": 3, "workers": [_worker("UNHEALTHY", stale=True, reason="exited with code 1")]}
    assert rollout_state(doc, 3, 1) == (
        False,
        "1 worker(s) on an older version; 0/1 ready worker(s) on v3",
    )


def test_wait_with_min_workers_fails_when_the_worker_cannot_start(
    project: ProjectFactory, run_cli: RunCli, api_env: dict[str, str], images: list[str], emu_api: Api
) -> None:
    """A real worker container (the base image: no handler, so it exits) with workers.min 1."""
    root = project(
        DEFAULT_ENDPOINT.replace("workers: {min: 0, max: 2, idleTimeout: 5}", "workers: {min: 1, max: 1}")
    )
    result = run_cli(
        "apply", "--env", "staging", "--image", images[0], "--wait", "--timeout", "300", cwd=root, env=api_env
    )
    assert result.exit_code == 1, result.output
    assert "is unhealthy:" in result.stderr
    assert "rollout: done" not in result.stderr
    found = endpoint_named(emu_api, f"{project_name(root)}-staging")
    assert found is not None
    emu_api.rest("PATCH", f"/v2/serverless/{found['id']}", {"workers": {"min": 0, "max": 0}})
    emu_api.rest("DELETE", f"/v2/serverless/{found['id']}")


def test_money_is_fixed_point_and_a_huge_workers_max_is_a_warning(
    project: ProjectFactory, run_cli: RunCli, api_env: dict[str, str], images: list[str]
) -> None:
    assert cost.money(1.116e8) == "$111,600,000.00"
    assert cost.money(0.00046) == "$0.0005"
    assert cost.money(-2.5, sign=True) == "-$2.50"
    assert cost.money(2.5, sign=True) == "+$2.50"
    root = project(DEFAULT_ENDPOINT.replace("max: 2,", "max: 100000,"))
    result, plan = run_json(run_cli, root, api_env, "plan", "--image", images[0])
    assert result.exit_code == 0, result.output  # a warning, not a failure
    warned = [c for c in plan["data"]["preflight"] if c["warning"]]
    assert [c["check"] for c in warned] == ["workers.max"]
    assert "workers.max 100,000 costs up to $" in warned[0]["detail"]
    assert "default account spend limit of $80.00/h" in warned[0]["detail"]
    text = run_cli("plan", "--image", images[0], cwd=root, env=api_env).stdout
    assert "e+" not in text
    assert "WARN workers.max:" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("destroy", "--env", "staging", "--ephemeral", "pr-1", "--yes"),
            "--env and --ephemeral exclude each other",
        ),
        (("releases", "--env", "staging", "--ephemeral", "pr-1"), "--env and --ephemeral exclude each other"),
        (("rollback", "--env", "staging", "--ephemeral", "pr-1"), "--env and --ephemeral exclude each other"),
        (("apply", "--env", "staging", "--timeout", "5"), "--timeout only applies with --wait"),
        (("rollback", "--env", "staging", "--timeout", "5"), "--timeout only applies with --wait"),
        (("promote", "--from", "staging", "--to", "production", "--timeout", "5"), "--timeout only applies"),
    ],
)
def test_contradictory_options_are_a_usage_error(
    project: ProjectFactory, run_cli: RunCli, api_env: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    root = project()
    result = run_cli(*args, cwd=root, env=api_env)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {message}")
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_no_pushed_image_names_the_exact_command(
    project: ProjectFactory, run_cli: RunCli, api_env: dict[str, str]
) -> None:
    result = run_cli("plan", "--env", "staging", cwd=project(), env=api_env)
    assert result.exit_code == 2, result.output
    assert "run `rpdeploy push --env staging`, or pass --image REF" in result.stderr
