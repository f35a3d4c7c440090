"""`secrets sync` against the emulator over HTTP: create, no-op, rotate on change, forced rotation,
hand-made secrets, name clashes, the preflight check, and the CLI (JSON, exit codes, canary)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from deploy.api import RunPodApi
from deploy.config import LoadedConfig
from deploy.errors import UsageError
from deploy.release import secrets_sync
from deploy.release.checks import Check
from deploy.release.secrets_sync import tag_matches
from tests.conftest import BASE_CONFIG, MakeProject, json_data
from tests.release.resources import load, project_config, unique_project

INLINE = BASE_CONFIG.replace(
    "  - name: AWS_SECRET_ACCESS_KEY\n",
    "  - name: AWS_SECRET_ACCESS_KEY\n    from_env: B2_APP_KEY\n"
    "  - name: AWS_ENDPOINT_URL\n    mode: inline\n",
)


def values(key_id: str = "key-id-1", app_key: str = "app-key-1") -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": key_id, "B2_APP_KEY": app_key}


def names(loaded: LoadedConfig) -> list[str]:
    return [loaded.config.secret_name(s) for s in loaded.config.secrets if s.mode == "runpod-secret"]


def _check(api: RunPodApi, loaded: LoadedConfig, environ: dict[str, str]) -> list[Check]:
    """The preflight's secret checks, with the one list call a command makes."""
    return secrets_sync.check(loaded, environ, secrets_sync.listed(api, loaded, environ))


def test_create_then_nothing_then_rotate_what_changed(
    make_project: MakeProject, runpod_api: RunPodApi
) -> None:
    project = unique_project()
    loaded = load(make_project, project_config(project, INLINE))
    key_id, app_key = names(loaded)
    api = runpod_api
    first = secrets_sync.sync(api, loaded, values())
    assert [(a.name, a.secret, a.action) for a in first.secrets] == [
        ("AWS_ACCESS_KEY_ID", key_id, "create"),
        ("AWS_SECRET_ACCESS_KEY", app_key, "create"),
    ]
    assert first.changed
    assert any("AWS_ENDPOINT_URL is mode: inline" in w for w in first.warnings)
    stored = {s["name"]: s for s in api.list_secrets()}
    assert tag_matches(stored[key_id]["description"], "key-id-1") is True

    before = api.calls.to_json()
    again = secrets_sync.sync(api, loaded, values())
    assert [a.action for a in again.secrets] == ["none", "none"]
    assert not again.changed
    assert secrets_sync.RESTART_NOTE not in again.warnings
    after = api.calls.to_json()
    assert after["writes"] == before["writes"]  # nothing changed: nothing written
    assert after["reads"] == before["reads"] + 1  # one list call for every secret

    rotated = secrets_sync.sync(api, loaded, values(app_key="app-key-2"))
    assert [a.action for a in rotated.secrets] == ["none", "rotate"]
    assert secrets_sync.RESTART_NOTE in rotated.warnings
    stored = {s["name"]: s for s in api.list_secrets()}
    assert tag_matches(stored[app_key]["description"], "app-key-2") is True
    assert stored[app_key]["valueLastUpdatedAt"] is not None

    forced = secrets_sync.sync(api, loaded, values(app_key="app-key-2"), rotate=True)
    assert [a.action for a in forced.secrets] == ["rotate", "rotate"]


def test_a_hand_made_secret_is_rotated_once_and_keeps_its_description(
    make_project: MakeProject, runpod_api: RunPodApi
) -> None:
    project = unique_project()
    loaded = load(make_project, project_config(project))
    key_id = names(loaded)[0]
    env = {"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "key"}
    api = runpod_api
    api.create_secret(key_id, "made in the console", "B2 key id (ops)")
    checks = _check(api, loaded, env)
    assert [c.ok for c in checks] == [True, True]
    assert "no rpdeploy hash" in checks[0].detail
    assert "is missing: apply creates it" in checks[1].detail

    result = secrets_sync.sync(api, loaded, env)
    assert [a.action for a in result.secrets] == ["rotate", "create"]
    stored = {s["name"]: s for s in api.list_secrets()}
    assert stored[key_id]["description"].startswith("B2 key id (ops) rpdeploy:v1:sha256:")
    assert [a.action for a in secrets_sync.sync(api, loaded, env).secrets] == ["none", "none"]
    changed = {**env, "AWS_ACCESS_KEY_ID": "id-2"}
    assert (
        "AWS_ACCESS_KEY_ID differs: run `rpdeploy secrets sync` to rotate it"
        in _check(api, loaded, changed)[0].detail
    )


def test_check_fails_a_missing_secret_without_a_value(
    make_project: MakeProject, runpod_api: RunPodApi
) -> None:
    loaded = load(make_project, project_config(unique_project()))
    api = runpod_api
    checks = _check(api, loaded, {"AWS_ACCESS_KEY_ID": "id"})
    assert [(c.check, c.ok, c.where) for c in checks] == [
        ("secret", True, "secrets[0]"),
        ("secret", False, "secrets[1]"),
    ]
    assert "AWS_SECRET_ACCESS_KEY is not set to create it" in checks[1].detail


def test_a_secret_differing_only_in_case_is_refused(make_project: MakeProject, runpod_api: RunPodApi) -> None:
    project = unique_project()
    loaded = load(make_project, project_config(project))
    _, key = names(loaded)
    api = runpod_api
    api.create_secret(key.upper(), "other")
    values = {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}
    clash = _check(api, loaded, values)[1]
    assert not clash.ok
    assert clash.detail == (
        f"RunPod has a secret {key.upper()!r}, which differs from {key!r} only in case:"
        " a reference names one exactly; rename one of them"
    )
    writes = api.calls.writes
    with pytest.raises(UsageError, match=r"differs from .* only in case"):
        secrets_sync.sync(api, loaded, values)
    assert api.calls.writes == writes  # refused before any write, the first secret's too


def test_a_config_without_runpod_secrets_makes_no_call(
    make_project: MakeProject, runpod_api: RunPodApi
) -> None:
    text = project_config(unique_project()).replace(
        "secrets:\n  - name: AWS_ACCESS_KEY_ID\n  - name: AWS_SECRET_ACCESS_KEY\n", "secrets: []\n"
    )
    loaded = load(make_project, text)
    api = runpod_api
    assert _check(api, loaded, {}) == []
    assert not secrets_sync.sync(api, loaded, {}).changed
    assert api.calls.to_json() == {"reads": 0, "writes": 0}


# -- the command ----------------------------------------------------------------------------------

RunCli = Callable[..., Result]


def test_the_command_syncs_and_never_shows_a_value(
    make_project: MakeProject, run_cli: RunCli, emulator_environ: dict[str, str]
) -> None:
    canary = f"canary-{unique_project()}-value"
    root = make_project(project_config(unique_project(), INLINE))
    env = {
        **emulator_environ,
        "AWS_ACCESS_KEY_ID": canary + "-id",
        "B2_APP_KEY": canary,
        "AWS_ENDPOINT_URL": canary + "-url",
    }
    created = run_cli("secrets", "sync", "-o", "json", cwd=root, env=env)
    assert created.exit_code == 0, created.output
    data = json_data(created.stdout, "secrets sync")
    assert set(data) == {"secrets", "changed", "warnings"}
    assert [item["action"] for item in data["secrets"]] == ["create", "create"]
    assert set(data["secrets"][0]) == {"name", "secret", "action"}
    assert data["changed"] is True

    rotated = run_cli("secrets", "sync", "--rotate", cwd=root, env=env)
    assert rotated.exit_code == 0, rotated.output
    assert "rotated" in rotated.stdout
    assert "running workers keep the old value" in rotated.stdout
    assert "warning: AWS_ENDPOINT_URL is mode: inline" in rotated.stdout

    for result in (created, rotated):
        assert canary not in result.stdout + result.stderr
    # Nothing the command wrote in the project holds it either.
    for path in root.rglob("*"):
        if path.is_file():
            assert canary.encode() not in path.read_bytes(), path


def test_the_command_names_every_missing_variable_before_any_call(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = make_project(project_config(unique_project(), INLINE))
    # The API is unreachable on purpose: the error must come before any call.
    env = {"RUNPOD_API_URL": "http://127.0.0.1:9", "RUNPOD_API_KEY": "rpa_x", "AWS_ACCESS_KEY_ID": ""}
    result = run_cli("secrets", "sync", "-o", "json", cwd=root, env=env)
    assert result.exit_code == 2, result.output
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "UsageError"
    assert "AWS_ACCESS_KEY_ID (secrets[0]), B2_APP_KEY (secrets[1])" in error["message"]
    assert "Traceback" not in result.stderr


def test_target_local_goes_through_the_emulator_state_folder(
    make_project: MakeProject, run_cli: RunCli, tmp_path: Path
) -> None:
    """--target local resolves the API from the emulator's state folder (deploy.cli.target, whose
    own tests start one): with none running there, one line naming the folder, exit 3."""
    root = make_project(project_config(unique_project()))
    env = {
        "RUNPOD_API_URL": "http://127.0.0.1:9",
        "RUNPOD_API_KEY": "rpa_x",
        "RPDEPLOY_EMULATOR_STATE": str(tmp_path / "no-emulator"),
        "AWS_ACCESS_KEY_ID": "a",
        "AWS_SECRET_ACCESS_KEY": "b",
    }
    result = run_cli("secrets", "sync", "--target", "local", cwd=root, env=env)
    assert result.exit_code == 3, result.output
    assert "error: the emulator is not running" in result.stderr
    assert str(tmp_path / "no-emulator") in result.stderr


def test_a_secret_created_by_a_racing_sync_is_rotated_not_refused(
    make_project: MakeProject, runpod_api: RunPodApi
) -> None:
    """Another sync creates the secret between this one's list call and its create: RunPod
    answers 409, and this sync finds the secret and writes its own value instead."""
    project = unique_project()
    loaded = load(make_project, project_config(project))
    name = names(loaded)[0]
    api = runpod_api
    stale = api.list_secrets()  # this sync's view, taken before the other one writes
    api.create_secret(name, "the other sync's value", "the other sync")
    assert secrets_sync._sync_one(api, stale, name, "our value", rotate=False) == "rotate"
    found = api.find_secret(name)
    assert found is not None
    assert tag_matches(found["description"], "our value") is True
