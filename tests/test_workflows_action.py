"""The composite action's own script, run from action.yml without Docker or an emulator.

Every case here fails before or at the first RunPod call (bad inputs, a config error, an
endpoint that cannot be found): RUNPOD_API_URL is a loopback port that refuses at once, so
nothing waits on a network. What a deploy writes when it succeeds is
in tests/test_workflows_steps.py (against the emulator).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MakeProject
from tests.workflow_runner import ACTION_DIR, JobRun, Runner, load

#: Secrets a caller passes as the action step's `env:` (README, "Use it in your repository").
SECRETS = {
    "RUNPOD_API_KEY": "rpa_secret_key_value",
    "REGISTRY_USERNAME": "reg-user-value",
    "REGISTRY_PASSWORD": "reg-password-value",
    "AWS_ACCESS_KEY_ID": "aws-key-id-value",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-value",
    "AWS_ENDPOINT_URL": "http://s3.invalid",
}


@pytest.fixture
def runner(tmp_path: Path, make_project: MakeProject) -> Runner:
    temp = tmp_path / "runner-temp"
    temp.mkdir()
    # The action installs rpdeploy into $RUNNER_TEMP/rpdeploy-venv once per job: this venv is it.
    (temp / "rpdeploy-venv").symlink_to(Path(sys.prefix))
    environ = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(tmp_path)),
        # Port 9 (discard) on loopback: refused at once, so no call waits on a network.
        "RUNPOD_API_URL": "http://127.0.0.1:9",
        "RUNPOD_API_KEY": "rpa_not_a_real_key",
    }
    github = {"ref_name": "main", "repository": "acme/worker", "token": "gh-token-not-used"}
    return Runner(workspace=make_project(), temp=temp, environ=environ, github=github, secrets={})


def action(runner: Runner, **with_: Any) -> tuple[JobRun, dict[str, str]]:
    job = runner.run_action(with_)
    return job, job.outputs["action"]


def command_step(job: JobRun) -> str:
    """The output of the action's `rpdeploy <command>` step (the install step is a no-op here)."""
    step = job.steps[-1]
    assert step.where.startswith("rpdeploy "), job.log()
    return step.stdout + step.stderr


def assert_one_clear_line(text: str, expected: str) -> None:
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("hint: ")]
    assert len(lines) == 1, text
    assert expected in lines[0], text


# -- 1: no input reaches $GITHUB_OUTPUT raw ---------------------------------------------------


@pytest.mark.parametrize("field", ["image", "env", "ephemeral", "config"])
def test_a_newline_in_an_input_adds_or_overrides_no_output(runner: Runner, field: str) -> None:
    injected = "bad\npassed=true\nendpoint_id=evil\nimage=evil\ndigest=evil"
    job, outputs = action(runner, command="apply", **{field: injected})
    assert job.failed
    assert outputs["passed"] == "false"
    for name in ("endpoint_id", "image", "digest", "release"):
        assert outputs[name] in ("", None), f"{name} came from the {field} input: {outputs}"
    written = job.steps[-1].outputs
    assert "evil" not in " ".join(written.values()), written
    # Nor a line of its own in the step summary (the env input is in its heading).
    assert not any(line.startswith("passed=true") for line in job.summary.splitlines()), job.summary
    assert written.get("passed") == "false", written


def test_a_failed_apply_outputs_no_image(runner: Runner) -> None:
    job, outputs = action(runner, command="apply", image="   ")
    assert job.failed
    assert (outputs["passed"], outputs["image"], outputs["digest"]) == ("false", "", "")


# -- 2: one clear line, no traceback, on every failure path --------------------------------


@pytest.mark.parametrize(
    ("with_", "expected"),
    [
        ({"command": "plan", "env": "nosuch"}, "no environment 'nosuch'"),
        ({"command": "apply", "env": "nosuch"}, "no environment 'nosuch'"),
        ({"command": "plan", "target": "gcp"}, "gcp"),
        # The lookup of a pull request's endpoint fails: releases' own error, nothing after it.
        ({"command": "validate", "ephemeral": "pr-999"}, "127.0.0.1:9"),
        ({"command": "validate", "env": "nosuch", "ephemeral": "pr-1"}, "127.0.0.1:9"),
        ({"command": "deploy-everything"}, "command must be release, redeploy, push, plan"),
        ({"command": "release", "promote": "yes"}, "promote must be true or false"),
        ({"command": "redeploy", "skip-validation": "True"}, "skip-validation must be true or false"),
        ({"command": "release", "ephemeral": "pr-1"}, "ephemeral is for plan, apply, validate"),
        ({"command": "push", "image": "r/x@sha256:" + "1" * 64}, "leave the image input empty"),
    ],
)
def test_every_failure_is_one_clear_line(runner: Runner, with_: dict[str, str], expected: str) -> None:
    job, outputs = action(runner, **with_)
    assert job.failed
    assert outputs["passed"] == "false", "the output description promises false, never empty"
    assert_one_clear_line(command_step(job), expected)


# -- 3: ephemeral keeps the environment's overrides ----------------------------------------


def test_ephemeral_commands_pass_env_along(runner: Runner) -> None:
    # An environment that does not exist is refused: --env reached the CLI with --ephemeral.
    for command in ("plan", "apply"):
        job, _ = action(runner, command=command, env="nosuch", ephemeral="pr-5")
        assert job.failed
        assert_one_clear_line(command_step(job), "no environment 'nosuch'")


# -- 4: plan plans the image it is given ------------------------------------------------------


def test_plan_checks_the_image_input_and_outputs_no_image(runner: Runner) -> None:
    job, outputs = action(runner, command="plan", image="registry.example/worker:latest")
    assert job.failed, "plan got --image: a mutable tag is refused"
    assert_one_clear_line(command_step(job), "the tag 'latest' can move")
    assert (outputs["passed"], outputs["image"]) == ("false", "")


# -- 6: secrets reach only the step that runs rpdeploy --------------------------------------


def test_no_secret_reaches_the_install(runner: Runner, tmp_path: Path) -> None:
    # A fresh job: no venv yet. `python` is a stand-in that records the environment the install
    # runs in (the real pip would fetch from an index this test must not depend on).
    (runner.temp / "rpdeploy-venv").unlink()
    stub = tmp_path / "stub-bin"
    stub.mkdir()
    (stub / "python").write_text(
        '#!/usr/bin/env bash\nenv > "$RUNNER_TEMP/install-env"\n'
        'mkdir -p "$RUNNER_TEMP/rpdeploy-venv/bin"\n'
        "printf '#!/usr/bin/env bash\\nenv >> \"$RUNNER_TEMP/install-env\"\\n' "
        '> "$RUNNER_TEMP/rpdeploy-venv/bin/pip"\n'
        'chmod +x "$RUNNER_TEMP/rpdeploy-venv/bin/pip"\n'
    )
    (stub / "python").chmod(0o755)
    runner.environ["PATH"] = f"{stub}{os.pathsep}{runner.environ['PATH']}"
    # The caller's `env:` on the action step, as README shows it.
    job = runner.run_action({"command": "plan"}, env=SECRETS)
    seen = (runner.temp / "install-env").read_text()
    assert "PATH=" in seen, job.log()
    for name, value in SECRETS.items():
        assert value not in seen, f"{name} reached the install step"


def test_setup_python_gets_the_secrets_blanked() -> None:
    # setup-python is a JavaScript action: the runner cannot run it here, so its env is read.
    steps = load(ACTION_DIR / "action.yml")["runs"]["steps"]
    setup = next(step for step in steps if step.get("uses", "").startswith("actions/setup-python@"))
    assert {name: setup.get("env", {}).get(name) for name in SECRETS} == dict.fromkeys(SECRETS, "")


# -- 10: a promoting release reports the environment it ended on ---------------------------

#: A stand-in for rpdeploy (the real one needs two environments deployed and one failing, a
#: whole release against the emulator): `release` writes what rpdeploy writes for the stages
#: that ran, then fails; `releases` answers for the endpoint of the --env it is given.
STUB = """#!/usr/bin/env bash
case "$1" in
release)
  echo "staging_endpoint_id=ep-staging" >>"$GITHUB_OUTPUT"
  [ "$STUB_REACHED_PRODUCTION" != true ] || echo "production_endpoint_id=ep-production" >>"$GITHUB_OUTPUT"
  exit 1 ;;
releases)
  env=staging
  for arg in "$@"; do [ "$arg" != production ] || env=production; done
  printf '{"data": {"endpoint": {"id": "ep-%s"}, "version": 3}}' "$env" ;;
esac
"""


@pytest.mark.parametrize(("reached", "endpoint"), [(False, "ep-staging"), (True, "ep-production")])
def test_a_failed_promoting_release_reports_where_it_stopped(
    runner: Runner, reached: bool, endpoint: str
) -> None:
    venv = runner.temp / "rpdeploy-venv"
    venv.unlink()
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    (venv / "bin" / "rpdeploy").write_text(STUB)
    (venv / "bin" / "rpdeploy").chmod(0o755)
    runner.environ["STUB_REACHED_PRODUCTION"] = "true" if reached else "false"
    job, outputs = action(runner, command="release", promote="true")
    assert job.failed
    assert (outputs["passed"], outputs["endpoint_id"], outputs["release"]) == ("false", endpoint, "3")
