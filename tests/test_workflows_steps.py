"""The exact `run:` commands of release.yml and redeploy.yml, run here against the emulator.

tests/workflow_runner.py executes each job's steps from the YAML (the composite action
expanded), with GITHUB_OUTPUT and GITHUB_STEP_SUMMARY pointed at temp files and RunPod's API
(RUNPOD_API_URL, RUNPOD_API_KEY, as a runner's environment would carry them) set to the session
emulator; the tests then read what the steps wrote and what the emulator holds. The YAML cannot
drift from the CLI: a renamed option or a lost output fails here. Not run: actions/checkout
(the project directory stands for the checkout) and actions/setup-python (this Python runs);
the action's install step runs and finds rpdeploy installed (its venv is this one), and `gh`
(GitHub's API is not reachable here) is a stand-in that records its arguments.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MakeProject, copy_echo_project
from tests.emulator.helpers import BASE_IMAGE, INDEX_URL, pushed_sdk_image
from tests.release.conftest import config_text
from tests.release.helpers import endpoint_named, mount_image
from tests.workflow_runner import Runner

pytestmark = pytest.mark.docker


def has_command(name: str) -> bool:
    import click  # noqa: PLC0415

    from deploy.cli.main import cli  # noqa: PLC0415

    return isinstance(cli, click.Group) and cli.get_command(click.Context(cli), name) is not None


MISSING_VALIDATE = not has_command("validate")
MISSING_RELEASE = not has_command("release")


@pytest.fixture
def runner(tmp_path: Path, emulator_environ: dict[str, str]) -> Runner:
    temp = tmp_path / "runner-temp"
    temp.mkdir()
    # The action installs rpdeploy into $RUNNER_TEMP/rpdeploy-venv once per job: this venv is it.
    (temp / "rpdeploy-venv").symlink_to(Path(sys.prefix))
    stub_bin = tmp_path / "stub-bin"
    stub_bin.mkdir()
    gh = stub_bin / "gh"
    # GitHub's API cannot be reached here: `gh` records its arguments and the notes file.
    gh.write_text(
        '#!/usr/bin/env bash\nprintf "%s\\n" "$@" > "$RUNNER_TEMP/gh-args"\n'
        'while [ $# -gt 0 ]; do [ "$1" = --notes-file ] && cp "$2" "$RUNNER_TEMP/gh-notes"; shift; done\n'
    )
    gh.chmod(0o755)
    environ = {
        "PATH": f"{stub_bin}{os.pathsep}{os.environ['PATH']}",
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "RUNPOD_API_URL": emulator_environ["RUNPOD_API_URL"],
    }
    secrets = {"RUNPOD_API_KEY": emulator_environ["RUNPOD_API_KEY"]}
    github = {"ref_name": "v1.2.3", "repository": "acme/worker", "token": "gh-token-not-used"}
    return Runner(workspace=tmp_path, temp=temp, environ=environ, github=github, secrets=secrets)


@pytest.fixture
def deployed_project(make_project: MakeProject, runner: Runner) -> Path:
    """A project (unique name on the session emulator) used as the runner's workspace."""
    import secrets  # noqa: PLC0415

    root = make_project(config_text(f"t{secrets.token_hex(4)}"), name="checkout")
    runner.workspace = root
    return root


def redeploy_inputs(image: str, *, skip_validation: bool) -> dict[str, Any]:
    return {"environment": "staging", "image": image, "ref": "", "skip_validation": skip_validation}


def project_name(root: Path) -> str:
    return next(
        line.split(":", 1)[1].strip()
        for line in (root / "rpdeploy.yaml").read_text().splitlines()
        if line.startswith("project:")
    )


def test_redeploy_workflow_applies_the_image_and_writes_outputs_and_summary(
    runner: Runner, deployed_project: Path, api: Any
) -> None:
    image = mount_image("rpdeploy-test/workflow-redeploy")
    job = runner.run_job("redeploy.yml", "redeploy", redeploy_inputs(image, skip_validation=True))
    assert not job.failed, job.log()

    endpoint = endpoint_named(api, f"{project_name(deployed_project)}-staging")
    assert endpoint is not None
    assert endpoint["image"] == image
    outputs = job.outputs["redeploy"]
    assert outputs["passed"] == "true"
    assert outputs["image"] == image
    assert outputs["digest"] == image.split("@", 1)[1]
    assert outputs["endpoint_id"] == endpoint["id"]
    assert outputs["release"].isdigit()
    assert "### rpdeploy redeploy (staging): passed" in job.summary

    # Run again: the same image is a no-op apply, and the outputs say the same.
    again = runner.run_job("redeploy.yml", "redeploy", redeploy_inputs(image, skip_validation=True))
    assert not again.failed, again.log()
    assert again.outputs["redeploy"]["endpoint_id"] == endpoint["id"]
    assert again.outputs["redeploy"]["release"] == outputs["release"]


def test_redeploy_workflow_fails_and_says_so_when_the_image_is_missing(
    runner: Runner, deployed_project: Path
) -> None:
    missing = "127.0.0.1:5000/rpdeploy-test/never-pushed@sha256:" + "0" * 64
    job = runner.run_job("redeploy.yml", "redeploy", redeploy_inputs(missing, skip_validation=True))
    assert job.failed
    assert job.outputs["redeploy"]["passed"] == "false"
    assert "### rpdeploy redeploy (staging): failed, exit 1" in job.summary
    assert "image" in job.log()


@pytest.mark.xfail(
    MISSING_VALIDATE,
    strict=True,
    reason="needs `rpdeploy validate` (branch validate12, not merged into this branch yet)",
)
def test_redeploy_workflow_rolls_back_when_validation_fails(
    runner: Runner, deployed_project: Path, api: Any
) -> None:
    # The images are the stack's Python base without a handler: no job is ever answered, so the
    # one case runs past its timeout (cancelled by the runner) and validation fails.
    (deployed_project / ".runpod").mkdir()
    (deployed_project / ".runpod" / "tests.json").write_text(
        '{"tests": [{"name": "answers", "input": {"x": 1}, "timeout": 5000}]}'
    )
    first = mount_image("rpdeploy-test/workflow-redeploy")
    second = mount_image("rpdeploy-test/workflow-redeploy-b")
    job = runner.run_job("redeploy.yml", "redeploy", redeploy_inputs(first, skip_validation=True))
    assert not job.failed, job.log()
    before = job.outputs["redeploy"]["release"]

    job = runner.run_job("redeploy.yml", "redeploy", redeploy_inputs(second, skip_validation=False))
    assert job.failed
    assert job.outputs["redeploy"]["passed"] == "false"
    assert f"rolled back automatically to release v{before}" in job.log()
    assert "### rpdeploy redeploy (staging): failed, exit 1" in job.summary
    assert "answers" in job.summary, "validate's report (the failed case) is in the step summary"
    endpoint = endpoint_named(api, f"{project_name(deployed_project)}-staging")
    assert endpoint is not None
    assert endpoint["image"] == first, "the endpoint runs the first image again"


def test_redeploy_workflow_rolls_back_when_the_rollout_fails(
    runner: Runner, deployed_project: Path, api: Any
) -> None:
    # workers.min 1: a rollout is done once a worker of the new release is ready. The SDK test
    # worker becomes ready; the stack's base image (no handler) exits at once, is listed
    # UNHEALTHY, and its rollout fails, before any validation (skipped here: the rollout alone
    # must be enough to roll back).
    config = deployed_project / "rpdeploy.yaml"
    config.write_text(config.read_text().replace("{min: 0, max: 2, idleTimeout: 5}", "{min: 1, max: 1}"))
    good = pushed_sdk_image()
    name = f"{project_name(deployed_project)}-staging"
    try:
        job = runner.run_job("redeploy.yml", "redeploy", redeploy_inputs(good, skip_validation=True))
        assert not job.failed, job.log()
        before = job.outputs["redeploy"]["release"]

        broken = mount_image("rpdeploy-test/workflow-redeploy")
        job = runner.run_job("redeploy.yml", "redeploy", redeploy_inputs(broken, skip_validation=True))
        assert job.failed
        log = job.log()
        assert "is unhealthy" in log
        assert f"rolled back automatically to release v{before}" in log
        assert "redeploy: redeploy to staging failed (exit 1)" in log
        outputs = job.outputs["redeploy"]
        assert outputs["passed"] == "false"
        assert int(outputs["release"]) > int(before), "the rollback is a new release"
        assert "### rpdeploy redeploy (staging): failed, exit 1" in job.summary
        endpoint = endpoint_named(api, name)
        assert endpoint is not None
        assert endpoint["image"] == good, "the endpoint runs the previous release's image again"
        assert endpoint["workers"]["max"] == 1, "a rollback keeps it serving (not scaled to zero)"
    finally:
        found = endpoint_named(api, name)
        if found is not None:  # its warm worker would run for the rest of the session
            api.rest("DELETE", f"/v2/serverless/{found['id']}")


@pytest.fixture
def release_checkout(tmp_path: Path, runner: Runner) -> Path:
    """The echo example (examples/echo) as a tagged git checkout, baked (so that it answers jobs
    under the emulator) and named uniquely; its secrets are left out (their sync is tested
    elsewhere)."""
    import secrets  # noqa: PLC0415

    root = tmp_path / "release-checkout"
    root.mkdir()
    copy_echo_project(root)
    text = (root / "rpdeploy.yaml").read_text()
    text = text.replace("project: echo-worker", f"project: t{secrets.token_hex(4)}")
    text = text.replace("strategy: slim", "strategy: baked").replace(
        "max_compressed_mb: 45", "max_compressed_mb: 500"
    )
    text = text[: text.index("\nsecrets:")] + text[text.index("\nenvironments:") :]
    (root / "rpdeploy.yaml").write_text(text)
    (root / ".gitignore").write_text("build/\n")
    identity = ["-c", "user.email=t@example.com", "-c", "user.name=t"]
    for args in (["init", "-q", "-b", "main"], [*identity, "add", "-A"], [*identity, "commit", "-qm", "v"]):
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)
    subprocess.run(["git", "-C", str(root), "tag", "v1.2.3"], check=True, capture_output=True)
    runner.workspace = root
    runner.environ.update(
        RPDEPLOY_BASE_IMAGE=BASE_IMAGE, RPDEPLOY_INDEX_URL=INDEX_URL, GITHUB_REF="refs/tags/v1.2.3"
    )
    return root


@pytest.mark.xfail(
    MISSING_RELEASE,
    strict=True,
    reason="needs `rpdeploy release` (branch release12, not merged into this branch yet)",
)
def test_release_workflow_staging_then_production_then_github_release(
    runner: Runner, release_checkout: Path, api: Any
) -> None:
    staging = runner.run_job("release.yml", "staging", {})
    assert not staging.failed, staging.log()
    out = staging.outputs["release"]
    assert out["passed"] == "true"
    assert "@sha256:" in out["image"]
    assert out["digest"] == out["image"].split("@", 1)[1]
    name = project_name(release_checkout)
    endpoint = endpoint_named(api, f"{name}-staging")
    assert endpoint is not None
    assert (endpoint["image"], out["endpoint_id"]) == (out["image"], endpoint["id"])
    assert "### rpdeploy release (staging): passed" in staging.summary
    assert out["image"] in staging.summary, "the release's own summary (image, steps, cases) is kept"

    # The production job gets the staging job's outputs as `needs`, like GitHub passes them.
    needs = {"staging": {"outputs": {"image": out["image"], "digest": out["digest"]}}}
    production = runner.run_job("release.yml", "production", {}, needs=needs)
    assert not production.failed, production.log()
    prod = production.outputs["release"]
    assert (prod["passed"], prod["image"]) == ("true", out["image"])
    endpoint = endpoint_named(api, f"{name}-production")
    assert endpoint is not None
    assert (endpoint["image"], prod["endpoint_id"]) == (out["image"], endpoint["id"])
    assert prod["release"].isdigit()

    # The GitHub release is its own job (contents: write, no secret), fed by production's outputs.
    needs = {"production": {"outputs": production.job_outputs}}
    github_release = runner.run_job("release.yml", "github-release", {}, needs=needs)
    assert not github_release.failed, github_release.log()
    args = (runner.temp / "gh-args").read_text().splitlines()
    assert args[:3] == ["release", "create", "v1.2.3"]
    assert "--verify-tag" in args
    notes = (runner.temp / "gh-notes").read_text()
    assert f"Image: `{out['image']}`, endpoint `{endpoint['id']}`" in notes
    assert "release passed" in notes, "the notes carry the release's summary"
    assert "preflight" in notes or "cost:" in notes, "the notes carry the plan's preflight and cost"
    assert "Releases: before" in notes


def test_ci_ephemeral_job_deploys_validates_and_always_destroys_pr_endpoint(
    runner: Runner, release_checkout: Path, api: Any
) -> None:
    runner.github["event"] = {"pull_request": {"number": 7}}
    runner.environ.update(GITHUB_EVENT_NAME="pull_request", GITHUB_REF="refs/pull/7/merge")
    job = runner.run_job("ci.yml", "ephemeral", {})
    assert not job.failed, job.log()
    assert "@sha256:" in job.outputs["push"]["image"]
    applied = job.outputs["apply"]
    assert (applied["passed"], applied["image"]) == ("true", job.outputs["push"]["image"])
    assert applied["endpoint_id"]
    assert "### rpdeploy validate (staging): passed" in job.summary
    assert "### rpdeploy destroy (staging): passed" in job.summary
    assert endpoint_named(api, f"{project_name(release_checkout)}-pr-7") is None, "destroyed"


def test_the_action_refuses_an_unknown_command(runner: Runner, deployed_project: Path) -> None:
    job = runner.run_action({"command": "deploy-everything"})
    assert job.failed
    assert "command must be release, redeploy, push, plan, apply, validate or destroy" in job.log()
    assert job.outputs["action"]["passed"] == "false", "false whatever stopped the command"
