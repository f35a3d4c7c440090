"""A copy of a secret never reaches a deployable file, in clear or as ``***``.

``env: {KEYCOPY: "${AWS_ACCESS_KEY_ID}"}`` with AWS_ACCESS_KEY_ID declared in ``secrets:``
used to render ``"KEYCOPY": "***"`` into endpoint.create.json, which deploying would send
to RunPod. Now a value that is exactly a runpod-secret's variable becomes that secret's
``{{ RUNPOD_SECRET_<name> }}`` reference; a secret inside other text, a copy of an inline
secret, or a secret value anywhere else in a rendered file is one error line, nothing written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from deploy.config import load_config
from deploy.config.mask import MASK
from deploy.release import desired
from tests.conftest import BASE_CONFIG, MakeProject

Run = Callable[..., Result]
IMAGE = "127.0.0.1:5000/acme/demo-worker:sha-1"
CANARY = "CANARY-copy-7f3a"
ENVIRON = {"AWS_ACCESS_KEY_ID": CANARY, "AWS_SECRET_ACCESS_KEY": CANARY + "-2"}


def with_env(entries: str, config: str = BASE_CONFIG) -> str:
    return config.replace("  type: QUEUE", f"  type: QUEUE\n  env:\n{entries}", 1)


def everything(root: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(root.rglob("*")) if p.is_file())


@pytest.mark.parametrize("env", [None, "staging"])
def test_an_exact_copy_of_a_runpod_secret_becomes_its_reference(
    make_project: MakeProject, run_cli: Run, env: str | None
) -> None:
    root = make_project(with_env('    KEYCOPY: "${AWS_ACCESS_KEY_ID}"\n    PLAIN: "x"\n'))
    args = ("render", "--image", IMAGE, *(("--env", env) if env else ()))
    result = run_cli(*args, cwd=root, env=ENVIRON)
    assert result.exit_code == 0, result.output
    for spec in ("endpoint.create.json", "endpoint.update.json"):
        body = json.loads((root / "build" / "rpdeploy" / (env or "default") / spec).read_text())
        assert body["env"]["KEYCOPY"] == body["env"]["AWS_ACCESS_KEY_ID"]
        assert body["env"]["KEYCOPY"] == "{{ RUNPOD_SECRET_demo_aws_access_key_id }}"
        assert body["env"]["PLAIN"] == "x"
    files = everything(root)
    assert CANARY not in files
    assert f'"{MASK}"' not in files


INLINE = BASE_CONFIG.replace(
    "  - name: AWS_ACCESS_KEY_ID\n", "  - name: AWS_ACCESS_KEY_ID\n    mode: inline\n"
)

REFUSED = [
    (
        with_env('    KEYCOPY: "id=${AWS_ACCESS_KEY_ID}"\n'),
        "endpoint.env.KEYCOPY: holds the secret ${AWS_ACCESS_KEY_ID} inside other text",
    ),
    (
        with_env('    URL: "https://${AWS_ACCESS_KEY_ID}:${AWS_SECRET_ACCESS_KEY}@s3.example.com"\n'),
        "endpoint.env.URL: holds the secret ${AWS_",
    ),
    (
        with_env('    KEYCOPY: "${AWS_ACCESS_KEY_ID}"\n', INLINE),
        "endpoint.env.KEYCOPY: copies ${AWS_ACCESS_KEY_ID}, which is not a runpod-secret",
    ),
    (
        with_env('    KEYCOPY: "${RUNPOD_API_KEY}"\n'),
        "endpoint.env.KEYCOPY: copies ${RUNPOD_API_KEY}, which is not a runpod-secret",
    ),
    (
        BASE_CONFIG.replace("  type: QUEUE", '  type: QUEUE\n  name: "ep-${AWS_ACCESS_KEY_ID}"', 1),
        "would carry the value of ${AWS_ACCESS_KEY_ID}, a secret",
    ),
]


@pytest.mark.parametrize("command", [("render", "--image", IMAGE), ("config", "validate")])
@pytest.mark.parametrize(("config", "expected"), REFUSED)
def test_any_other_copy_of_a_secret_is_one_error_and_nothing_written(
    make_project: MakeProject, run_cli: Run, config: str, expected: str, command: tuple[str, ...]
) -> None:
    root = make_project(config)
    result = run_cli(*command, cwd=root, env={**ENVIRON, "RUNPOD_API_KEY": "rp-CANARY"})
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert expected in line, line
    if expected.startswith("endpoint.env."):
        # The line to fix: where the copying value is written.
        key = expected.split(":", maxsplit=1)[0].removeprefix("endpoint.env.")
        number = next(n for n, text in enumerate(config.splitlines(), 1) if text.strip().startswith(key))
        assert line.startswith(f"error: rpdeploy.yaml:{number}: {expected}"), line
    assert "CANARY" not in result.output
    assert not (root / "Dockerfile.slim").exists()
    assert not (root / "build").exists()


# A copy is a matter of provenance: a value interpolated from a secret's variable. A literal
# that happens to equal a secret's value is no copy, and calling it one would tell the user
# (or a CI log) what the secret is.
LITERAL = with_env("    MODE: fast\n", INLINE).replace(
    "  - name: AWS_SECRET_ACCESS_KEY\n",
    "  - name: AWS_SECRET_ACCESS_KEY\n  - name: AWS_ENDPOINT_URL\n    mode: inline\n",
)
COINCIDENT = {"AWS_ACCESS_KEY_ID": "fast", "AWS_SECRET_ACCESS_KEY": "fast", "AWS_ENDPOINT_URL": "fast"}


def test_a_literal_equal_to_a_secret_value_is_no_copy_when_deploying(make_project: MakeProject) -> None:
    """The body `plan`/`apply` deploy (inline secrets resolved), built as they build it."""
    root = make_project(LITERAL)
    loaded = desired.with_inline_secrets(load_config(root / "rpdeploy.yaml", environ=COINCIDENT), COINCIDENT)
    body = desired.desired_body(loaded, IMAGE, COINCIDENT)
    assert body["env"]["MODE"] == "fast"
    assert body["env"]["AWS_SECRET_ACCESS_KEY"] == "{{ RUNPOD_SECRET_demo_aws_secret_access_key }}"


def test_a_literal_equal_to_a_copied_secret_value_renders(make_project: MakeProject, run_cli: Run) -> None:
    root = make_project(with_env('    MODE: fast\n    KEYCOPY: "${AWS_SECRET_ACCESS_KEY}"\n'))
    result = run_cli("render", "--image", IMAGE, cwd=root, env={"AWS_SECRET_ACCESS_KEY": "fast"})
    assert result.exit_code == 0, result.output
    body = json.loads((root / "build/rpdeploy/default/endpoint.create.json").read_text())
    assert (body["env"]["MODE"], body["env"]["KEYCOPY"]) == (
        "fast",
        "{{ RUNPOD_SECRET_demo_aws_secret_access_key }}",
    )


def test_a_copy_set_by_an_environment_names_the_override_line(
    make_project: MakeProject, run_cli: Run
) -> None:
    config = BASE_CONFIG + '      env: {KEYCOPY: "id=${AWS_ACCESS_KEY_ID}"}\n'
    root = make_project(config)
    result = run_cli("render", "--image", IMAGE, "--env", "staging", cwd=root, env=ENVIRON)
    assert result.exit_code == 2, result.output
    number = len(config.splitlines())
    assert result.stderr.startswith(
        f"error: rpdeploy.yaml:{number}: endpoint.env.KEYCOPY: holds the secret ${{AWS_ACCESS_KEY_ID}}"
    ), result.stderr
    assert CANARY not in result.output
