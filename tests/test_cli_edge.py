"""The CLI edge: escaping, the catch-all internal error, click's own errors, the JSON envelope."""

from __future__ import annotations

import ast
import io
import json
import re
import shutil
import subprocess
import sys
import unicodedata
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from click.testing import Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploy.cli import config_cmd
from deploy.cli.main import COMMANDS, cli
from deploy.cli.output import SafeConsole, escape
from deploy.errors import ExitCode
from tests.conftest import BASE_CONFIG, REPO, MakeProject, envelope, json_data

IMAGE = "127.0.0.1:5000/acme/demo-worker:sha-0123456"
#: What a hostile key or value carries: OSC title, BEL, clear screen, CSI, NUL, C1 CSI,
#: bidi override, rich markup and an emoji code.
HOSTILE = "\x1b]0;PWNED\x07\x1b[2J\x9b31m\x00\u202e[bold red]x[/bold red] :x:"
UNSAFE = {"Cc", "Cf", "Cs", "Zl", "Zp"}
INTERNAL = "; run with --debug and report it"


def unsafe_chars(text: str, allowed: str = "") -> list[str]:
    return [ch for ch in text if ch not in allowed and unicodedata.category(ch) in UNSAFE]


def assert_clean(text: str) -> None:
    """Nothing that acts on a terminal; markup and emoji codes left as typed."""
    assert unsafe_chars(text, allowed="\n") == [], repr(text)


# --- escape: the one function every printed string passes through -------------------------


@given(st.text())
def test_escape_leaves_no_control_character(text: str) -> None:
    assert unsafe_chars(escape(text), allowed="\n\t") == []
    one_line = escape(text, newlines=False)
    assert unsafe_chars(one_line, allowed="\t") == []
    assert "\n" not in one_line


@given(st.text())
def test_escape_is_idempotent(text: str) -> None:
    assert escape(escape(text)) == escape(text)
    assert escape(escape(text, newlines=False), newlines=False) == escape(text, newlines=False)


@given(st.text(st.characters(categories=["L", "M", "N", "P", "S", "Zs"])))
def test_escape_keeps_printable_text(text: str) -> None:
    assert escape(text) == text


@given(st.characters(categories=["Cc", "Cf", "Cs", "Zl", "Zp"]).filter(lambda ch: ch not in "\n\t"))
def test_escape_names_the_character(char: str) -> None:
    assert f"{ord(char):02x}" in escape(f"a{char}b")


@given(st.text())
def test_safe_console_prints_text_literally(text: str) -> None:
    buffer = io.StringIO()
    console = SafeConsole(file=buffer, width=100, soft_wrap=True)  # not a terminal: no colour codes
    console.print(f"[red]{text}[/red] :x:", markup=True, emoji=True)
    console.log(text, markup=True, emoji=True)
    printed = buffer.getvalue()
    assert unsafe_chars(printed, allowed="\n") == []
    assert "[red]" in printed
    assert ":x:" in printed


def test_safe_console_escapes_hostile_string_and_keeps_markup_literal() -> None:
    buffer = io.StringIO()
    SafeConsole(file=buffer, width=200).print(HOSTILE)
    printed = buffer.getvalue()
    assert_clean(printed)
    assert "\\x1b]0;PWNED\\x07\\x1b[2J\\x9b31m\\x00\\u202e[bold red]x[/bold red] :x:" in printed


# --- every message that carries user strings ------------------------------------------------


def test_hostile_key_in_config_is_escaped_in_error_lines(
    make_project: MakeProject, run_cli: Callable[..., Result]
) -> None:
    key = HOSTILE.replace("\x00", "")  # PyYAML refuses NUL before any key exists
    config = BASE_CONFIG.replace("project: demo", f'project: demo\n"{key}": 1'.replace("\x1b", "\\e"))
    config = config.replace("\x07", "\\a").replace("\x9b", "\\x9b").replace("\u202e", "\\u202e")
    result = run_cli("config", "validate", cwd=make_project(config))
    assert result.exit_code == 2
    assert_clean(result.stderr)
    assert ":x:" in result.stderr
    assert "[bold red]" in result.stderr
    assert "\\x1b]0;PWNED" in result.stderr
    assert all(line.startswith(("error: ", "hint: ")) for line in result.stderr.splitlines())


def test_nul_in_config_never_makes_an_unprefixed_line(
    make_project: MakeProject, run_cli: Callable[..., Result]
) -> None:
    config = BASE_CONFIG.replace("project: demo", "project: de\x00mo")
    result = run_cli("config", "validate", cwd=make_project(config))
    assert result.exit_code == 2
    assert_clean(result.stderr)
    assert all(line.startswith(("error: ", "hint: ")) for line in result.stderr.splitlines())
    as_json = run_cli("config", "validate", "-o", "json", cwd=make_project(config, name="json"))
    assert envelope(as_json.stdout, "config validate", status="error")["error"]["type"] == "ConfigError"


def test_render_check_diff_prints_committed_text_literally(
    make_project: MakeProject, run_cli: Callable[..., Result]
) -> None:
    root = make_project()
    assert run_cli("render", "--image", IMAGE, cwd=root).exit_code == 0
    dockerfile = root / "Dockerfile.slim"
    dockerfile.write_text(dockerfile.read_text() + f"# {HOSTILE}\n")
    result = run_cli("render", "--check", "--image", IMAGE, cwd=root)
    assert result.exit_code == 1
    assert_clean(result.stdout)
    assert "-# \\x1b]0;PWNED\\x07\\x1b[2J\\x9b31m\\x00\\u202e[bold red]x[/bold red] :x:" in result.stdout


def test_env_value_with_markup_and_emoji_shows_as_typed(
    make_project: MakeProject, run_cli: Callable[..., Result]
) -> None:
    config = BASE_CONFIG.replace(
        "  type: QUEUE\n", "  type: QUEUE\n  env: {GREETING: '[bold]hi[/bold] :x:'}\n"
    )
    result = run_cli("config", "show", cwd=make_project(config))
    assert result.exit_code == 0, result.output
    assert "[bold]hi[/bold] :x:" in result.stdout
    assert "❌" not in result.stdout


def test_click_usage_errors_are_escaped_and_json_when_asked(run_cli: Callable[..., Result]) -> None:
    result = run_cli("render", "--output", "json", "--env")
    assert result.exit_code == 2
    payload = envelope(result.stdout, "render", status="error")
    assert payload["error"]["type"] == "UsageError"
    assert payload["error"]["hint"] == "run `rpdeploy render --help`"
    hostile = run_cli("config", "validate", f"--{HOSTILE.replace(chr(0), '')}")
    assert hostile.exit_code == 2
    assert_clean(hostile.stderr)
    assert hostile.stderr.splitlines()[0].startswith("error: No such option")
    assert hostile.stderr.splitlines()[-1] == "hint: run `rpdeploy config validate --help`"


def test_unknown_command_is_a_usage_error(run_cli: Callable[..., Result]) -> None:
    result = run_cli("deploy", "-o", "json")
    assert result.exit_code == 2
    assert envelope(result.stdout, "rpdeploy", status="error")["error"]["type"] == "UsageError"


# --- the catch-all: anything unexpected is one line and exit 70 ------------------------------


def test_unexpected_exception_is_one_internal_error_line(
    make_project: MakeProject, run_cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A bug cannot be written into correct code on purpose: this stands in for one (the
    # real triggers below depend on what other fixes turn into typed errors).
    def bug(path: str) -> None:
        raise ValueError("\x1b[2Jboom")

    monkeypatch.setattr(config_cmd, "validate_all", bug)
    root = make_project()
    result = run_cli("config", "validate", cwd=root)
    assert result.exit_code == ExitCode.INTERNAL == 70
    assert result.stderr == f"internal error: ValueError: \\x1b[2Jboom{INTERNAL}\n"
    assert result.stdout == ""
    as_json = run_cli("config", "validate", "-o", "json", cwd=root)
    assert as_json.exit_code == 70
    error = envelope(as_json.stdout, "config validate", status="error")["error"]
    assert error == {
        "type": "InternalError",
        "message": "ValueError: \x1b[2Jboom",
        "hint": "run with --debug and report it",
    }
    debug = run_cli("config", "validate", "--debug", cwd=root)
    assert debug.exit_code == 70
    assert "Traceback" in debug.stderr
    assert_clean(debug.stderr.replace("\x1b[", ""))  # rich may colour the traceback


def rpdeploy(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploy", *args], cwd=cwd, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize("output", ["text", "json"])
def test_render_into_proc_is_one_line_never_a_traceback(make_project: MakeProject, output: str) -> None:
    done = rpdeploy("render", "--image", IMAGE, "--out", "/proc/x", "-o", output, cwd=make_project())
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    # A disk that refuses the write is a typed error naming the full path (exit 3), not exit 70.
    assert done.returncode == ExitCode.UNAVAILABLE
    assert len(lines) == 1
    assert re.fullmatch(r"error: /proc/x/Dockerfile\.\w+: cannot write: .+", lines[0]), lines
    if output == "json":
        assert envelope(done.stdout, "render", status="error")["error"]["message"]
    else:
        assert done.stdout == ""


# --- the envelope, for every command ---------------------------------------------------------


def _leaf_commands() -> list[str]:
    names: list[str] = []
    ctx = click.Context(cli)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        if isinstance(command, click.Group):
            names.extend(f"{name} {sub}" for sub in command.commands)
        else:
            names.append(name)
    return names


@pytest.mark.parametrize("name", _leaf_commands())
def test_every_command_answers_json_errors_in_the_envelope(name: str, run_cli: Callable[..., Result]) -> None:
    result = run_cli(*name.split(), "--no-such-option", "-o", "json")
    assert result.exit_code == ExitCode.USAGE
    payload = envelope(result.stdout, name, status="error")
    assert payload["error"]["type"] == "UsageError"
    assert payload["error"]["hint"] == f"run `rpdeploy {name} --help`"


def test_config_validate_envelope_in_full(run_cli: Callable[..., Result]) -> None:
    result = run_cli("config", "validate", "-o", "json", cwd=REPO)
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    assert payload == {
        "version": 2,
        "command": "config validate",
        "status": "ok",
        "data": json_data(result.stdout, "config validate"),
        "error": None,
    }
    assert payload["data"]["path"] == "rpdeploy.yaml"


def test_reader_leaving_early_is_not_an_error() -> None:
    # `rpdeploy config show | head -1`: the pipe closes before rpdeploy writes its result.
    proc = subprocess.Popen(
        [sys.executable, "-m", "deploy", "config", "show"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    proc.stdout.close()
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0
    assert stderr == ""


def test_a_command_that_cannot_be_imported_is_an_internal_error(
    run_cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real import failure (the module does not exist), as a broken install would give.
    monkeypatch.setitem(COMMANDS, "emulator", "tests.no_such_module:emulator")
    result = run_cli("emulator", "start", "-o", "json")
    assert result.exit_code == 70
    error = envelope(result.stdout, "emulator start", status="error")["error"]
    assert error["message"] == "ModuleNotFoundError: No module named 'tests.no_such_module'"
    assert result.stderr == f"internal error: {error['message']}{INTERNAL}\n"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# Keys that are not settings (x- keys are a place for anchors, Docker Compose's convention).
@given(
    key=st.text(min_size=1, max_size=20).filter(lambda k: not k.startswith("x-")), value=st.text(max_size=20)
)
def test_any_key_or_value_gives_prefixed_clean_lines(
    key: str, value: str, make_project: MakeProject, run_cli: Callable[..., Result]
) -> None:
    # JSON strings are YAML double-quoted scalars: any character reaches the loader escaped.
    entry = f"{json.dumps(key)}: {json.dumps(value)}"
    root = make_project(BASE_CONFIG.replace("project: demo", f"project: demo\n{entry}"), name="p")
    try:
        for output in ("text", "json"):
            result = run_cli("config", "validate", "-o", output, cwd=root)
            assert result.exit_code == 2, result.output
            assert unsafe_chars(result.stderr, allowed="\n") == []
            assert all(line.startswith(("error: ", "hint: ")) for line in result.stderr.splitlines())
            if output == "json":
                assert (
                    envelope(result.stdout, "config validate", status="error")["error"]["type"]
                    == "ConfigError"
                )
    finally:
        shutil.rmtree(root)


PRINTERS = {"print", "echo", "secho", "Console", "pprint", "inspect"}


def test_only_the_output_layer_prints() -> None:
    """Nothing in the package writes to the terminal except `deploy.cli.output` (escaping lives there).

    deploy/runtime is the exception: it runs inside the worker, where stdout is the worker log.
    """
    offenders: list[str] = []
    for path in sorted((REPO / "deploy").rglob("*.py")):
        if path == REPO / "deploy" / "cli" / "output.py" or "runtime" in path.relative_to(REPO).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else ""
            target = ast.unparse(func)
            if name in PRINTERS or target.startswith(("sys.stdout", "sys.stderr", "click.echo", "rich.")):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}: {target}")
    assert offenders == []
