"""`--output` and `--debug` mean the same before the command name and after it.

`rpdeploy -o json build` was a usage error; CI scripts write it either way. Every
leaf command is run both ways through the real CLI (in-process click runner) with
arguments that reach the command's body, and must answer the same.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from deploy.errors import ExitCode
from tests.conftest import REPO, envelope
from tests.test_cli_edge import _leaf_commands

RunCli = Callable[..., Result]

#: Arguments per leaf command that get past click's parsing into the command (or its
#: own checks) without Docker, a registry or a running emulator.
ARGS: dict[str, list[str]] = {
    "config validate": ["-c", "missing.yaml"],
    "config show": ["-c", "missing.yaml"],
    "render": ["-c", "missing.yaml"],
    "build": ["-c", "missing.yaml"],
    "push": ["-c", "missing.yaml"],
    "env build": ["-c", "missing.yaml"],
    "validate": ["-c", "missing.yaml"],
    "image report": ["bad::ref"],
    "secrets sync": ["-c", "missing.yaml"],
    "plan": ["-c", "missing.yaml"],
    "apply": ["-c", "missing.yaml"],
    "releases": ["-c", "missing.yaml"],
    "rollback": ["-c", "missing.yaml"],
    "promote": ["-c", "missing.yaml", "--from", "staging", "--to", "production"],
    "destroy": ["-c", "missing.yaml", "--yes"],
    "release": ["-c", "missing.yaml"],
    "emulator status": ["--state", "{state}"],
    "emulator stop": ["--state", "{state}"],
    "emulator env": ["--state", "{state}"],
    "emulator logs": ["--state", "{state}", "no-such-endpoint"],
    # serve/start would start a server: a bad port is the cheapest answer they give.
    "emulator serve": ["--port", "not-a-port"],
    "emulator start": ["--port", "not-a-port"],
}


def test_the_table_covers_every_command() -> None:
    assert sorted(ARGS) == sorted(_leaf_commands())


def _args(name: str, state: Path) -> list[str]:
    return [arg.replace("{state}", str(state)) for arg in ARGS[name]]


@pytest.mark.parametrize("name", sorted(ARGS))
def test_output_json_before_the_command_equals_after(name: str, run_cli: RunCli, tmp_path: Path) -> None:
    args = [*name.split(), *_args(name, tmp_path)]
    before = run_cli("-o", "json", *args, cwd=tmp_path)
    after = run_cli(*args, "-o", "json", cwd=tmp_path)
    long_form = run_cli("--output=json", *args, cwd=tmp_path)
    assert before.exit_code == after.exit_code == long_form.exit_code
    assert before.exit_code != ExitCode.INTERNAL, before.stderr
    assert before.stdout == after.stdout == long_form.stdout
    payload = json.loads(before.stdout)
    envelope(before.stdout, name, status=payload["status"])


@pytest.mark.parametrize("name", sorted(ARGS))
def test_text_stays_the_default(name: str, run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli(*name.split(), *_args(name, tmp_path), cwd=tmp_path)
    assert not result.stdout.lstrip().startswith("{"), result.stdout


def test_the_command_own_option_wins_over_the_root_one(run_cli: RunCli) -> None:
    result = run_cli("-o", "json", "config", "validate", "-o", "text", cwd=REPO)
    assert result.exit_code == 0
    assert result.stdout.startswith("rpdeploy.yaml: valid"), result.stdout


def test_root_output_json_for_a_success(run_cli: RunCli) -> None:
    result = run_cli("-o", "json", "config", "validate", cwd=REPO)
    assert result.exit_code == 0
    assert envelope(result.stdout, "config validate")["data"]["path"] == "rpdeploy.yaml"


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback_in_both_places(where: str, run_cli: RunCli, tmp_path: Path) -> None:
    args = ["config", "validate", "-c", "missing.yaml"]
    result = run_cli(*(["--debug", *args] if where == "before" else [*args, "--debug"]), cwd=tmp_path)
    assert result.exit_code == ExitCode.USAGE
    assert "Traceback" in result.stderr
    assert "error: " in result.stderr
    plain = run_cli(*args, cwd=tmp_path)
    assert "Traceback" not in plain.stderr


def test_a_usage_error_after_root_options_names_the_command(run_cli: RunCli) -> None:
    result = run_cli("--debug", "-o", "json", "config", "nope")
    assert result.exit_code == ExitCode.USAGE
    assert (
        envelope(result.stdout, "config", status="error")["error"]["hint"] == "run `rpdeploy config --help`"
    )


def test_help_says_both_places(run_cli: RunCli) -> None:
    assert "before the command name or after it" in run_cli("--help").stdout
    for name in ARGS:
        help_text = " ".join(run_cli(*name.split(), "--help").stdout.split())
        assert "Accepted before or after the command name" in help_text, name
