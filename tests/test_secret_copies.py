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

from deploy.config.mask import MASK
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
        "error: endpoint.env.KEYCOPY: holds the secret ${AWS_ACCESS_KEY_ID} inside other text",
    ),
    (
        with_env('    URL: "https://${AWS_ACCESS_KEY_ID}:${AWS_SECRET_ACCESS_KEY}@s3.example.com"\n'),
        "error: endpoint.env.URL: holds the secret ${AWS_",
    ),
    (
        with_env('    KEYCOPY: "${AWS_ACCESS_KEY_ID}"\n', INLINE),
        "error: endpoint.env.KEYCOPY: copies ${AWS_ACCESS_KEY_ID}, which is not a runpod-secret",
    ),
    (
        with_env('    KEYCOPY: "${RUNPOD_API_KEY}"\n'),
        "error: endpoint.env.KEYCOPY: copies ${RUNPOD_API_KEY}, which is not a runpod-secret",
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
    assert "CANARY" not in result.output
    assert not (root / "Dockerfile.slim").exists()
    assert not (root / "build").exists()
