"""The release gate when the rollout itself fails, on an endpoint the release created.

No earlier release to return to: the stage scales the endpoint to zero workers (it must not
go on billing for workers that never serve) and keeps it, and says so in its result. Real
parts throughout: `rpdeploy release --image` in-process against the session emulator over
HTTP, a real worker container of the stack's base image (it has no handler, so it exits at
once and RunPod's `/workers` lists it UNHEALTHY: the rollout of workers.min 1 fails).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import json_data
from tests.emulator.helpers import Api
from tests.release.conftest import DEFAULT_ENDPOINT, ProjectFactory
from tests.release.helpers import RunCli, endpoint_named, mount_image, project_name

pytestmark = pytest.mark.docker

#: workers.min 1: the rollout is done only once a worker of the new release is ready.
WARM_ENDPOINT = DEFAULT_ENDPOINT.replace(
    "workers: {min: 0, max: 2, idleTimeout: 5}", "workers: {min: 1, max: 1}"
)
TESTS_JSON = '{"tests": [{"name": "answers", "input": {"x": 1}, "timeout": 5000}]}'


def release(
    run_cli: RunCli, root: Path, env: dict[str, str], image: str, timeout: str = "300"
) -> tuple[int, dict[str, Any], str]:
    result = run_cli(
        "release", "--env-first", "staging", "--image", image, "--timeout", timeout, "-o", "json",
        cwd=root, env={**env, "GITHUB_STEP_SUMMARY": None},
    )  # fmt: skip
    status = "ok" if result.exit_code == 0 else "failed"
    return result.exit_code, json_data(result.stdout, "release", status), result.stderr


def test_a_new_endpoint_whose_rollout_fails_is_scaled_to_zero_and_kept(
    project: ProjectFactory, run_cli: RunCli, api_env: dict[str, str], images: list[str], emu_api: Api
) -> None:
    root = project(WARM_ENDPOINT)
    (root / ".runpod").mkdir()
    (root / ".runpod" / "tests.json").write_text(TESTS_JSON)
    name = f"{project_name(root)}-staging"
    try:
        code, data, stderr = release(run_cli, root, api_env, images[0])
        assert code == 1, data
        [stage] = data["environments"]
        assert (stage["ok"], stage["deploy"]["action"], stage["deploy"]["changed"]) == (False, "create", True)
        assert "is unhealthy" in stage["rollout_error"]
        assert stage["validation"] is None, "a rollout that failed is not validated"
        assert stage["rollback"] is None
        assert "created by this release: no earlier release to return to" in stage["no_rollback"]
        assert stage["scaled_to_zero"] is True
        assert (data["rolled_back"], data["scaled_to_zero"]) == ([], ["staging"])
        assert "scaled to zero workers (workers.min 0, workers.max 0) to stop billing" in stderr
        endpoint = endpoint_named(emu_api, name)
        assert endpoint is not None, "kept, with its release history and worker logs"
        assert (endpoint["workers"]["min"], endpoint["workers"]["max"]) == (0, 0)
        assert endpoint["image"] == images[0]

        # The same release again: the config's workers come back (an in-place change, no new
        # release), the rollout fails again, and the endpoint is stopped again, not left serving.
        code, again, _ = release(run_cli, root, api_env, images[0])
        assert code == 1, again
        [stage] = again["environments"]
        assert stage["deploy"]["action"] == "update"
        assert stage["deploy"]["written"] == [{"kind": "endpoint", "name": name, "action": "update"}]
        assert stage["rollout_error"]
        assert stage["no_rollback"] == "the change made no new release (settings changed in place)"
        assert stage["scaled_to_zero"] is True
        assert_kept_at_zero_workers(emu_api, name)
    finally:
        delete_if_there(emu_api, name)


def test_a_new_endpoint_whose_rollout_times_out_is_scaled_to_zero(
    project: ProjectFactory, run_cli: RunCli, api_env: dict[str, str], emu_api: Api
) -> None:
    # A worker that runs but never asks for a job (the base image's command replaced by a
    # sleep) is never ready: the rollout cannot finish, however long the --timeout.
    never_ready = mount_image("rpdeploy-test/never-ready", cmd=["sleep", "infinity"])
    root = project(WARM_ENDPOINT)
    (root / ".runpod").mkdir()
    (root / ".runpod" / "tests.json").write_text(TESTS_JSON)
    name = f"{project_name(root)}-staging"
    try:
        code, data, _ = release(run_cli, root, api_env, never_ready, timeout="2")
        assert code == 1, data
        [stage] = data["environments"]
        assert "not finished after 2s" in stage["rollout_error"]
        # What the timed-out apply wrote is known (it was once taken for "nothing deployed").
        assert stage["deploy"]["changed"] is True
        assert "created by this release" in stage["no_rollback"]
        assert stage["scaled_to_zero"] is True
        assert_kept_at_zero_workers(emu_api, name)
    finally:
        delete_if_there(emu_api, name)


def assert_kept_at_zero_workers(emu_api: Api, name: str) -> None:
    endpoint = endpoint_named(emu_api, name)
    assert endpoint is not None, "the endpoint is kept (its logs and releases)"
    assert (endpoint["workers"]["min"], endpoint["workers"]["max"]) == (0, 0)


def delete_if_there(emu_api: Api, name: str) -> None:
    found = endpoint_named(emu_api, name)
    if found is not None:
        emu_api.rest("DELETE", f"/v2/serverless/{found['id']}")
