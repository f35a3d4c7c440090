"""What a user sees when a command's client fails: one `error:` line (and a `hint:`), the
documented exit code, no traceback, no key. A small probe command stands in for the deploy
commands (which arrive in deploy/cli on another branch) and goes through the real CLI edge
(`deploy.cli.output.cli_command`) and `--target`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from click.testing import CliRunner, Result
from rich.console import Console

from deploy.api import RunPodApi
from deploy.cli.output import Context, cli_command
from deploy.cli.target import target_environ, target_option
from deploy.errors import ExitCode
from tests.emulator.helpers import endpoint_body, free_port


@dataclass(frozen=True)
class Listed:
    count: int
    exit_code: ExitCode = ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {"endpoints": self.count}

    def print_text(self, console: Console) -> None:
        console.print(f"{self.count} endpoints")


@click.command("probe")
@target_option
@click.option("--state", type=click.Path(path_type=Path), default=None)
@click.option("--max-workers", type=int, default=None)
@cli_command
def probe(ctx: Context, *, target: str, state: Path | None, max_workers: int | None) -> Listed:
    with RunPodApi.from_environ(target_environ(target, state)) as client:
        if max_workers is not None:
            client.create_endpoint(endpoint_body("probe", workers={"min": 0, "max": max_workers}))
        return Listed(len(client.list_endpoints()))


def run(*args: str, env: dict[str, str | None]) -> Result:
    return CliRunner().invoke(probe, list(args), env=env)


def errors_of(result: Result) -> list[str]:
    assert "Traceback" not in result.stderr
    return [line for line in result.stderr.splitlines() if not line.startswith("hint: ")]


def test_missing_key_is_exit_2_naming_the_variable() -> None:
    result = run(env={"RUNPOD_API_KEY": None, "RUNPOD_API_URL": None})
    assert result.exit_code == ExitCode.USAGE
    assert errors_of(result) == ["error: RUNPOD_API_KEY is not set: the RunPod API needs an API key"]


def test_api_down_is_exit_3_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run(env={"RUNPOD_API_KEY": "rpa_canary_key_123", "RUNPOD_API_URL": url})
    assert result.exit_code == ExitCode.UNAVAILABLE
    why = "connection refused (nothing listens there)"
    assert errors_of(result) == [f"error: cannot reach the RunPod API: GET {url}/v2/serverless: {why}"]
    assert "rpa_canary_key_123" not in result.output + result.stderr


def test_wrong_key_against_the_emulator_is_exit_3(emulator_environ: dict[str, str]) -> None:
    env: dict[str, str | None] = {**emulator_environ, "RUNPOD_API_KEY": "rpa_canary_wrong_456"}
    result = run("-o", "json", env=env)
    assert result.exit_code == ExitCode.UNAVAILABLE
    assert errors_of(result) == [
        "error: RunPod API refused the key (401): set RUNPOD_API_KEY to a valid API key"
    ]
    assert '"type": "ApiError"' in result.stdout
    assert "rpa_canary_wrong_456" not in result.output + result.stderr


def test_a_request_the_spec_refuses_is_exit_70_and_nothing_is_sent(emulator_environ: dict[str, str]) -> None:
    result = run("--max-workers", "-1", env=dict(emulator_environ))
    assert result.exit_code == ExitCode.INTERNAL
    assert errors_of(result) == [
        "error: rpdeploy built a request RunPod would refuse: POST /v2/serverless: "
        "workers.max: -1 is less than the minimum of 0"
    ]


def test_local_target_without_an_emulator_is_exit_3(tmp_path: Path) -> None:
    result = run("--target", "local", "--state", str(tmp_path), env={"RUNPOD_API_KEY": None})
    assert result.exit_code == ExitCode.UNAVAILABLE
    assert errors_of(result) == ["error: the emulator is not running: rpdeploy emulator start"]
