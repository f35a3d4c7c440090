"""`rpdeploy release` end to end: real build and push (local engine and registry), the session
emulator over HTTP as RunPod, real worker containers running the unmodified runpod SDK.

Nothing is mocked. The projects are baked (runpod installed at build time from the stack's
index): the release gate is what is under test here, not the slim runtime's cold start.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.conftest import json_data
from tests.emulator.helpers import Api
from tests.release.helpers import RunCli, endpoint_named

pytestmark = pytest.mark.docker

INDEX = "http://127.0.0.1:8099/simple/"
#: The commit time of every test project: reproducible builds give the same digest twice.
EPOCH = "1700000000"

GOOD_HANDLER = """\
# {repository}
import runpod


def handler(job):
    return {{"echo": job["input"].get("message", ""), "version": "good"}}


if __name__ == "__main__":
    runpod.serverless.start({{"handler": handler}})
"""

#: A new release whose handler cannot even be imported: the worker dies before it takes a job.
BROKEN_HANDLER = """\
# {repository}
raise RuntimeError("broken at import: this release must be rolled back")
"""

TESTS_JSON = {"tests": [{"name": "echo", "input": {"message": "hi"}, "timeout": 45000}]}


def config_text(project: str, repository: str) -> str:
    return f"""\
version: 1
project: {project}
image:
  registry: 127.0.0.1:5000
  repository: {repository}
  base: 127.0.0.1:5000/python:3.11-slim-local
  strategy: baked
runtime:
  requirements: worker/requirements.txt
  index_url: {INDEX}
handler:
  path: worker
  file: handler.py
endpoint:
  type: QUEUE
  gpu:
    pools: [ADA_24]
    allowedCudaVersions: ["12.4"]
  workers: {{min: 0, max: 1, idleTimeout: 5}}
  scaling: {{type: QUEUE_DELAY, queueDelay: 4}}
  disk: 10
environments:
  staging:
    endpoint:
      workers: {{max: 1}}
  production:
    endpoint:
      workers: {{min: 1, max: 1}}
tests:
  path: worker/tests.json
"""


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(root), "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        check=True,
        capture_output=True,
    )


class Project:
    """A committed worker project with its own image repository and endpoint names."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.name = f"t{uuid.uuid4().hex[:8]}"
        self.repository = f"rpdeploy-test/release-{self.name}"
        (root / "worker").mkdir(parents=True)
        (root / "worker" / "requirements.txt").write_text("runpod==1.12.0\n")
        (root / "worker" / "tests.json").write_text(json.dumps(TESTS_JSON))
        (root / ".gitignore").write_text("build/\n")
        (root / "rpdeploy.yaml").write_text(config_text(self.name, self.repository))
        self.handler(GOOD_HANDLER, "good handler")

    def handler(self, text: str, message: str) -> None:
        (self.root / "worker" / "handler.py").write_text(text.format(repository=self.repository))
        if not (self.root / ".git").exists():
            git(self.root, "init", "-q", "-b", "main")
        git(self.root, "add", "-A")
        git(self.root, "commit", "-q", "-m", message)


@pytest.fixture
def new_project(tmp_path: Path) -> Iterator[Callable[[], Project]]:
    made: list[Project] = []

    def make() -> Project:
        made.append(Project(tmp_path / f"p{len(made)}"))
        return made[-1]

    yield make
    # Only this test's images: the engine is shared with other runs on this machine. One a worker
    # the emulator is still stopping uses cannot go yet; the session emulator stops that worker.
    client = docker.from_env()
    for project in made:
        # The low-level listing: images.list() inspects each image, and one a parallel test
        # removes meanwhile fails the call.
        for image in client.api.images(name=f"127.0.0.1:5000/{project.repository}"):
            with contextlib.suppress(docker.errors.APIError):
                client.images.remove(image["Id"], force=True)
    client.close()


def release(
    run_cli: RunCli, project: Project, env: dict[str, str], *args: str
) -> tuple[int, dict[str, Any], str]:
    """``rpdeploy release -o json ARGS`` in the project: exit code, JSON data, stderr."""
    result = run_cli(
        "release", "--timeout", "180", *args, "-o", "json",
        cwd=project.root, env={**env, "SOURCE_DATE_EPOCH": EPOCH, "GITHUB_STEP_SUMMARY": None},
    )  # fmt: skip
    status = "ok" if result.exit_code == 0 else "failed"
    return result.exit_code, json_data(result.stdout, "release", status), result.stderr


def run_job(emu_api: Api, endpoint_id: str) -> dict[str, Any]:
    job = emu_api.submit(endpoint_id, {"message": "again"})
    view: dict[str, Any] = emu_api.wait_status(endpoint_id, job, {"COMPLETED", "FAILED"}, timeout=120)
    return view


def destroy(run_cli: RunCli, project: Project, env: dict[str, str], *environments: str) -> None:
    for name in environments:
        run_cli("destroy", "--env", name, "--yes", cwd=project.root, env=env)


def test_a_release_that_fails_validation_is_rolled_back_to_the_previous_image(
    new_project: Callable[[], Project], run_cli: RunCli, api_env: dict[str, str], emu_api: Api, tmp_path: Path
) -> None:
    project = new_project()
    code, first, _ = release(run_cli, project, api_env)
    assert code == 0, first
    good_image = first["image"]
    [staging] = first["environments"]
    assert staging["ok"]
    assert staging["validation"]["passed"] == 1
    endpoint_id = staging["deploy"]["endpoint_id"]
    good_version = staging["deploy"]["release"]["version"]

    project.handler(BROKEN_HANDLER, "a handler that crashes at import")
    summary = tmp_path / "summary.md"
    junit = tmp_path / "release.xml"
    result = run_cli(
        "release", "--timeout", "180", "--junit", str(junit), "-o", "json",
        cwd=project.root, env={**api_env, "SOURCE_DATE_EPOCH": EPOCH, "GITHUB_STEP_SUMMARY": str(summary)},
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    data = json_data(result.stdout, "release", "failed")
    assert data["image"] != good_image
    [stage] = data["environments"]
    assert not stage["ok"]
    assert stage["deploy"]["changed"]
    assert stage["deploy"]["previous_version"] == good_version
    assert stage["validation"]["failed"] == 1
    assert stage["rollback"]["to_version"] == good_version
    assert data["rolled_back"] == ["staging"]
    assert "rolled back automatically to release" in result.stderr
    assert "rolled back automatically to release" in summary.read_text()
    assert 'failures="1"' in junit.read_text()

    # The endpoint, read back from the platform, runs the earlier image again, and answers.
    endpoint = endpoint_named(emu_api, f"{project.name}-staging")
    assert endpoint is not None
    assert endpoint["id"] == endpoint_id
    assert endpoint["image"] == good_image
    view = run_job(emu_api, endpoint_id)
    assert view["status"] == "COMPLETED", view
    assert view["output"]["echo"] == "again"
    destroy(run_cli, project, api_env, "staging")


def test_a_passing_release_is_promoted_and_a_second_run_changes_nothing_but_validates(
    new_project: Callable[[], Project], run_cli: RunCli, api_env: dict[str, str], emu_api: Api
) -> None:
    project = new_project()
    code, data, _ = release(run_cli, project, api_env, "--promote")
    assert code == 0, data
    staging, production = data["environments"]
    assert [staging["env"], production["env"]] == ["staging", "production"]
    for stage in (staging, production):
        assert stage["ok"]
        assert stage["deploy"]["action"] == "create"
        assert stage["validation"]["passed"] == 1
        assert stage["validation"]["failed"] == 0
        endpoint = endpoint_named(emu_api, f"{project.name}-{stage['env']}")
        assert endpoint is not None
        assert endpoint["image"] == data["image"]
    assert "@sha256:" in data["image"]
    assert [step["step"] for step in data["steps"]] == [
        "render", "build", "push", "deploy+validate staging", "deploy+validate production",
    ]  # fmt: skip

    code, again, stderr = release(run_cli, project, api_env, "--promote")
    assert code == 0, again
    assert again["image"] == data["image"]
    for before, after in zip(data["environments"], again["environments"], strict=True):
        deploy = after["deploy"]
        assert deploy["changed"] is False
        assert deploy["action"] == "none"
        assert deploy["api_calls"]["writes"] == 0
        assert deploy["release"]["version"] == before["deploy"]["release"]["version"]
        assert after["validation"]["passed"] == 1
    assert "staging: no change" in stderr
    assert "production: no change" in stderr
    destroy(run_cli, project, api_env, "staging", "production")
