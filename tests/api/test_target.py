"""`--target runpod|local`: the local target is exactly what `eval "$(rpdeploy emulator env)"`
gives (a real emulator started with `rpdeploy emulator start`), and the client takes one path."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from deploy.api import RunPodApi
from deploy.cli.target import target_environ, target_option
from deploy.errors import EmulatorError, ExitCode
from tests.emulator.helpers import FAST_ENV, ROOT, free_port

RUNPOD_VARIABLES = ("RUNPOD_API_URL", "RUNPOD_ENDPOINT_BASE_URL", "RUNPOD_GRAPHQL_URL", "RUNPOD_API_BASE_URL")


def rpdeploy_emulator(*args: str) -> subprocess.CompletedProcess[str]:
    # Without RUNPOD_API_KEY the emulator generates its key into the state folder (mode 0600).
    env = {k: v for k, v in os.environ.items() if k != "RUNPOD_API_KEY"}
    return subprocess.run(
        [sys.executable, "-m", "deploy", "emulator", *args],
        cwd=ROOT,
        env={**env, **FAST_ENV},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def started_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The state folder of an emulator started as a user starts it (`rpdeploy emulator start`)."""
    state = tmp_path_factory.mktemp("target") / "state"
    started = rpdeploy_emulator("start", "--port", str(free_port()), "--state", str(state))
    assert started.returncode == 0, started.stderr
    yield state
    stopped = rpdeploy_emulator("stop", "--state", str(state))
    assert stopped.returncode == 0, stopped.stderr


def test_local_target_is_what_emulator_env_exports(
    started_state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)
    for name in RUNPOD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    exported = rpdeploy_emulator("env", "--state", str(started_state))
    assert exported.returncode == 0, exported.stderr
    shell = subprocess.run(
        [
            "bash",
            "-c",
            exported.stdout
            + '\nprintf "%s\\0" "$RUNPOD_API_KEY" '
            + " ".join(f'"${name}"' for name in RUNPOD_VARIABLES),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    from_shell = dict(zip(("RUNPOD_API_KEY", *RUNPOD_VARIABLES), shell.stdout.split("\0"), strict=False))

    environ = target_environ("local", started_state)
    assert {name: environ[name] for name in from_shell} == from_shell
    assert environ["RUNPOD_API_KEY"] == (started_state / "api-key").read_text().strip()
    assert environ["PATH"] == os.environ["PATH"]  # laid over the process environment

    with RunPodApi.from_environ(environ) as client:
        assert client.list_endpoints() == []
        assert client.base_url == environ["RUNPOD_API_BASE_URL"]


def test_local_target_without_an_emulator_says_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(EmulatorError) as caught:
        target_environ("local", tmp_path / "nothing-runs-here")
    assert str(caught.value) == "the emulator is not running: rpdeploy emulator start"
    assert caught.value.exit_code == ExitCode.UNAVAILABLE
    assert str(tmp_path / "nothing-runs-here") in str(caught.value.hint)


def test_emulator_env_without_an_emulator_is_the_same_line(tmp_path: Path) -> None:
    result = rpdeploy_emulator("env", "--state", str(tmp_path))
    assert result.returncode == ExitCode.UNAVAILABLE
    assert result.stderr.splitlines()[0] == "error: the emulator is not running: rpdeploy emulator start"


def test_runpod_target_is_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", "rpa_from_the_environment")
    monkeypatch.setenv("RUNPOD_API_URL", "https://api.runpod.io")
    assert target_environ("runpod") == dict(os.environ)


def test_target_option_defaults_to_runpod_and_refuses_others() -> None:
    @click.command()
    @target_option
    def show(target: str) -> None:
        click.echo(target)

    runner = CliRunner()
    assert runner.invoke(show, []).output == "runpod\n"
    assert runner.invoke(show, ["--target", "local"]).output == "local\n"
    refused = runner.invoke(show, ["--target", "staging"])
    assert refused.exit_code == ExitCode.USAGE
    assert "'staging' is not one of 'runpod', 'local'" in refused.output
