"""scripts/redeploy.sh: refusals come first, in one line each, and nothing is written before them.

The script is run as a user runs it (bash, the real rpdeploy CLI of this venv); the full flow
through the workflow is in tests/test_workflows_steps.py.
"""

from __future__ import annotations

import os
import pty
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BASE_CONFIG, REPO, MakeProject
from tests.release.conftest import config_text
from tests.release.helpers import endpoint_named, mount_image

SCRIPT = REPO / "scripts" / "redeploy.sh"
RPDEPLOY = str(Path(sys.executable).parent / "rpdeploy")
TIMEOUT = "redeploy: --timeout must be a positive number of seconds, not "
#: Variables of the test's own environment that would satisfy the checks by accident.
CLEARED = ("RUNPOD_API_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "REG_USER", "REG_PASS")


def redeploy(root: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    """The script run in ``root`` with no terminal (as in CI) and ``extra`` variables."""
    return run_script(root, args, extra, stdin=subprocess.DEVNULL)


def run_script(
    root: Path, args: tuple[str, ...], extra: dict[str, str], *, stdin: int
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in CLEARED}
    environ.update(RPDEPLOY=RPDEPLOY, **extra)
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        cwd=root,
        env=environ,
        stdin=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def test_every_missing_variable_is_named_before_any_call(make_project: MakeProject) -> None:
    root = make_project()
    done = redeploy(root, "--env", "staging", "--image", "127.0.0.1:5000/a/b@sha256:" + "1" * 64)
    assert done.returncode == 2
    assert one_line(done) == (
        "redeploy: set these variables first: RUNPOD_API_KEY AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY"
    )
    assert not (root / "build").exists()


def test_only_the_missing_ones_are_named(make_project: MakeProject) -> None:
    root = make_project()
    done = redeploy(root, "--env", "staging", RUNPOD_API_KEY="k", AWS_ACCESS_KEY_ID="id")
    assert done.returncode == 2
    assert one_line(done) == "redeploy: set these variables first: AWS_SECRET_ACCESS_KEY"


def test_the_registry_credential_variables_are_required(make_project: MakeProject) -> None:
    config = BASE_CONFIG.replace(
        "  strategy: slim\n",
        "  strategy: slim\n  registry_auth: {username_env: REG_USER, password_env: REG_PASS}\n",
    )
    root = make_project(config)
    done = redeploy(
        root, "--env", "staging", "--target", "local", AWS_ACCESS_KEY_ID="a", AWS_SECRET_ACCESS_KEY="b"
    )
    assert done.returncode == 2
    # --target local: the emulator's key is used, so RUNPOD_API_KEY is not asked for.
    assert one_line(done) == "redeploy: set these variables first: REG_USER REG_PASS"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "redeploy: --env is required (e.g. --env staging)"),
        (("--env", "staging", "--bogus"), "redeploy: unknown argument: --bogus (see --help)"),
        (("--env", "staging", "--target", "aws"), "redeploy: --target must be runpod or local"),
        # An option whose value is missing: at the end of the line, or followed by another option.
        (("--env",), "redeploy: --env needs a value (see --help)"),
        (("--env", "staging", "--image"), "redeploy: --image needs a value (see --help)"),
        (("--env", "--yes"), "redeploy: --env needs a value (see --help)"),
        (("--env=",), "redeploy: --env needs a value (see --help)"),
        (("--env=staging", "--target=aws"), "redeploy: --target must be runpod or local"),
        # --timeout is checked before any call: no variable is set here, so a later check would
        # have named the missing ones instead.
        (
            ("--env", "staging", "--timeout", "abc"),
            TIMEOUT + "'abc'",
        ),
        (
            ("--env", "staging", "--timeout", "-5"),
            TIMEOUT + "'-5'",
        ),
        (
            ("--env", "staging", "--timeout=0"),
            TIMEOUT + "'0'",
        ),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(
    make_project: MakeProject, args: tuple[str, ...], message: str
) -> None:
    done = redeploy(make_project(), *args)
    assert done.returncode == 2
    assert one_line(done) == message


def test_help_explains_and_exits_0(make_project: MakeProject) -> None:
    done = redeploy(make_project(), "--help")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    for part in ("--env ENV", "--image REF", "--yes", "--name=VALUE", "Exit codes: 0 deployed"):
        assert part in done.stdout, done.stdout


def test_the_equals_form_is_the_same_option(make_project: MakeProject) -> None:
    image = "127.0.0.1:5000/a/b@sha256:" + "1" * 64
    done = redeploy(make_project(), "--env=staging", f"--image={image}", "--timeout=30")
    assert done.returncode == 2
    assert one_line(done).startswith("redeploy: set these variables first: RUNPOD_API_KEY")


def test_a_config_error_is_rpdeploys_own_line(make_project: MakeProject) -> None:
    done = redeploy(make_project(), "--env", "nope")
    assert done.returncode == 2
    assert "no environment 'nope'" in one_line(done)


@pytest.fixture
def fresh(make_project: MakeProject) -> tuple[Path, str]:
    """A project named uniquely on the session emulator: its root, its staging endpoint's name."""
    project = f"t{secrets.token_hex(4)}"
    return make_project(config_text(project)), f"{project}-staging"


def assert_refused(done: subprocess.CompletedProcess[str], code: int, last: str, api: Any, name: str) -> None:
    """Exit ``code``, ``last`` as the last line, no traceback, and no endpoint ``name`` created."""
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == last
    assert endpoint_named(api, name) is None, "nothing was applied"


@pytest.mark.docker
def test_without_a_terminal_it_shows_the_plan_and_refuses_without_yes(
    fresh: tuple[Path, str], emulator_environ: dict[str, str], api: Any
) -> None:
    root, name = fresh
    image = mount_image("rpdeploy-test/workflow-redeploy")
    done = redeploy(root, "--env", "staging", "--image", image, **emulator_environ)
    assert_refused(done, 2, "redeploy: not confirmed: pass --yes when there is no terminal", api, name)
    assert "create" in done.stdout + done.stderr, "the plan was shown first"


@pytest.mark.docker
def test_a_plan_that_fails_preflight_ends_with_a_redeploy_line(
    fresh: tuple[Path, str], emulator_environ: dict[str, str], api: Any
) -> None:
    # A digest the registry does not hold: the plan's image preflight fails (exit 1).
    root, name = fresh
    missing = "127.0.0.1:5000/rpdeploy-test/never-pushed@sha256:" + "0" * 64
    done = redeploy(root, "--env", "staging", "--image", missing, "--yes", **emulator_environ)
    last = "redeploy: not applied: the plan for staging failed (exit 1), see above"
    assert_refused(done, 1, last, api, name)


@pytest.mark.docker
def test_end_of_input_at_the_question_is_a_refusal_that_says_so(
    fresh: tuple[Path, str], emulator_environ: dict[str, str], api: Any
) -> None:
    root, name = fresh
    image = mount_image("rpdeploy-test/workflow-redeploy")
    # A terminal on stdin where the user typed Ctrl-D (the line discipline's end of input, kept
    # until the script reads): `read` meets end of input.
    primary, secondary = pty.openpty()
    try:
        os.write(primary, b"\x04")
        done = run_script(root, ("--env", "staging", "--image", image), emulator_environ, stdin=secondary)
    finally:
        os.close(secondary)
        os.close(primary)
    assert_refused(done, 1, "redeploy: not applied (no answer)", api, name)
