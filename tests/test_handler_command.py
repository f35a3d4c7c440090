"""handler.command becomes the image's exec-form CMD: no shell ever reads it.

Shell syntax in it (``cd app && …``, ``A=1 python3 …``, ``| tee``, ``> f``, ``$HOME``,
backticks, ``;``, ``# comment``) would pass to the program as literal arguments and fail
only when a worker starts, so `config validate` refuses it with one line that says why
and how to get a shell. Quoted text is literal in a shell too, so ``sh -c '…'`` passes.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from click.testing import Result

from deploy.config.schema import shell_syntax
from tests.conftest import BASE_CONFIG, MakeProject

Run = Callable[..., Result]
IMAGE = "127.0.0.1:5000/acme/demo-worker:sha-0000000"


def with_command(command: str) -> str:
    yaml_value = json.dumps(command)  # a YAML double-quoted scalar
    return BASE_CONFIG.replace("  file: handler.py\n", f"  file: handler.py\n  command: {yaml_value}\n", 1)


SHELL = [
    ("cd app && python3 h.py", "'&'"),
    ("A=1 python3 x.py", "the variable assignment 'A'="),
    ("python3 x.py | tee log", "'|'"),
    ("python3 x.py > out.txt", "'>'"),
    ("python3 x.py < in.txt", "'<'"),
    ("python3 $HOME/x.py", "'$'"),
    ('python3 "$HOME/x.py"', "'$'"),
    ("python3 x.py # start", "'#'"),
    ("python3 `which x`.py", "'`'"),
    ("python3 $(which x)", "'$'"),
    ("python3 a.py; python3 b.py", "';'"),
    ("python3 a.py &", "'&'"),
    ("python3 a.py || true", "'|'"),
    ("(python3 a.py)", "'('"),
    ("python3 ~/x.py", "'~'"),
]


@pytest.mark.parametrize(("command", "found"), SHELL)
def test_shell_syntax_is_refused_at_validate(
    make_project: MakeProject, run_cli: Run, command: str, found: str
) -> None:
    root = make_project(with_command(command))
    for args in (("config", "validate"), ("render", "--image", IMAGE)):
        result = run_cli(*args, cwd=root)
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"error: rpdeploy.yaml:13: handler.command: uses shell syntax ({found})"), line
        assert "exec form" in line
        assert "sh -c" in line
        assert "wrapper script" in line
    assert not (root / "Dockerfile.slim").exists()


ALLOWED = [
    ("python3 -u /app/h.py", ["python3", "-u", "/app/h.py"]),
    ("sh -c 'cd app && python3 h.py | tee log'", ["sh", "-c", "cd app && python3 h.py | tee log"]),
    ("sh -c 'echo $HOME; A=1 exec python3 x.py'", ["sh", "-c", "echo $HOME; A=1 exec python3 x.py"]),
    ("python3 -c \"print('a|b > c')\"", ["python3", "-c", "print('a|b > c')"]),
    ("python3 h.py --tag=a#b --x=1", ["python3", "h.py", "--tag=a#b", "--x=1"]),
    ("python3 h.py \\$literal", ["python3", "h.py", "$literal"]),
]


@pytest.mark.parametrize(("command", "cmd"), ALLOWED)
def test_plain_arguments_and_explicit_shells_render_as_exec_form(
    make_project: MakeProject, run_cli: Run, command: str, cmd: list[str]
) -> None:
    root = make_project(with_command(command))
    result = run_cli("render", "--image", IMAGE, cwd=root)
    assert result.exit_code == 0, result.output
    assert f"CMD {json.dumps(cmd)}" in (root / "Dockerfile.slim").read_text()


def test_shell_syntax_finder_agrees_with_the_tables() -> None:
    assert all(shell_syntax(command) for command, _ in SHELL)
    assert not any(shell_syntax(command) for command, _ in ALLOWED)
