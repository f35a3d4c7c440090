"""`runtime:` is the one source of the slim bootstrap's run-time settings: render puts them into
the endpoint env (`Config.runtime_env`), and a second, disagreeing place is one config error."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from click.testing import Result

from deploy.api import errors as api_errors
from deploy.config.mask import Masker
from deploy.image import envbuild
from tests.conftest import BASE_CONFIG, MakeProject

INDEX = "http://127.0.0.1:8099/simple/"
S3_URL = "http://127.0.0.1:8333"
RUNTIME = BASE_CONFIG.replace(
    "  requirements: worker/requirements.txt\n",
    f"  requirements: worker/requirements.txt\n  index_url: {INDEX}\n"
    f"  s3: {{bucket: rpdeploy-envs, endpoint_url: '{S3_URL}'}}\n",
)
IMAGE = "127.0.0.1:5000/acme/demo-worker:sha-1"


def rendered_env(
    make_project: MakeProject, run_cli: Callable[..., Result], config: str, name: str = "project"
) -> dict[str, str]:
    root = make_project(config, name)
    result = run_cli("render", "--image", IMAGE, cwd=root)
    assert result.exit_code == 0, result.output
    body = json.loads((root / "build" / "rpdeploy" / "default" / "endpoint.create.json").read_text())
    env: dict[str, str] = body["env"]
    return env


def test_render_puts_the_index_and_the_s3_endpoint_into_the_endpoint_env(
    make_project: MakeProject, run_cli: Callable[..., Result]
) -> None:
    env = rendered_env(make_project, run_cli, RUNTIME)
    assert env["RPDEPLOY_INDEX_URL"] == INDEX
    assert env["AWS_ENDPOINT_URL"] == S3_URL
    # The same value written twice is no conflict.
    same = RUNTIME.replace("  type: QUEUE\n", f"  type: QUEUE\n  env: {{RPDEPLOY_INDEX_URL: '{INDEX}'}}\n")
    assert rendered_env(make_project, run_cli, same, "same")["RPDEPLOY_INDEX_URL"] == INDEX


def test_a_baked_image_has_no_bootstrap_settings_in_its_env(
    make_project: MakeProject, run_cli: Callable[..., Result]
) -> None:
    env = rendered_env(make_project, run_cli, RUNTIME.replace("strategy: slim", "strategy: baked"))
    assert "RPDEPLOY_INDEX_URL" not in env
    assert "AWS_ENDPOINT_URL" not in env


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            RUNTIME.replace(
                "  type: QUEUE\n", "  type: QUEUE\n  env: {RPDEPLOY_INDEX_URL: 'https://pypi.org/simple/'}\n"
            ),
            "rpdeploy.yaml:17: endpoint.env.RPDEPLOY_INDEX_URL: conflicts with runtime.index_url, which"
            " render puts into the endpoint env as RPDEPLOY_INDEX_URL: set it in one place"
            " (runtime.index_url is at rpdeploy.yaml:10)",
        ),
        (
            RUNTIME.replace(
                "  - name: AWS_SECRET_ACCESS_KEY\n",
                "  - name: AWS_SECRET_ACCESS_KEY\n  - name: AWS_ENDPOINT_URL\n    mode: inline\n",
            ),
            "rpdeploy.yaml:24: secrets[2].name: AWS_ENDPOINT_URL is also set by runtime.s3.endpoint_url"
            " (render puts it into the endpoint env): set it in one place"
            " (runtime.s3.endpoint_url is at rpdeploy.yaml:11)",
        ),
    ],
    ids=["endpoint-env", "secret"],
)
def test_a_second_place_for_a_runtime_setting_is_one_config_error_naming_both(
    make_project: MakeProject, run_cli: Callable[..., Result], config: str, expected: str
) -> None:
    root = make_project(config)
    result = run_cli("config", "validate", cwd=root)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [f"error: {expected}"]


@pytest.mark.parametrize(
    ("config", "environ", "expected"),
    [
        (
            BASE_CONFIG.replace("strategy: slim", "strategy: baked"),
            {},
            "error: rpdeploy env build needs image.strategy: slim (a baked image installs its dependencies"
            " at build time)",
        ),
        (BASE_CONFIG, {}, "error: rpdeploy.yaml: --push needs runtime.s3 (bucket, prefix, endpoint_url)"),
        (
            RUNTIME,
            {"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": None},
            "error: --push needs the S3 credentials in the environment: AWS_SECRET_ACCESS_KEY not set",
        ),
        (
            RUNTIME.replace(f", endpoint_url: '{S3_URL}'", ""),
            {"AWS_ENDPOINT_URL": None},
            "error: rpdeploy.yaml: --push needs runtime.s3.endpoint_url"
            " (or AWS_ENDPOINT_URL in the environment)",
        ),
    ],
    ids=["baked", "no-s3", "no-secret", "no-endpoint"],
)
def test_env_build_push_refuses_bad_input_in_one_line_before_any_container(
    make_project: MakeProject,
    run_cli: Callable[..., Result],
    config: str,
    environ: dict[str, str | None],
    expected: str,
) -> None:
    root = make_project(config)
    args = ["env", "build"] if "baked" in config else ["env", "build", "--push"]
    result = run_cli(*args, cwd=root, env={"DOCKER_HOST": "tcp://127.0.0.1:9", **environ})
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [expected]
    assert not (root / "build").exists()


def test_env_build_masks_a_credential_that_contains_the_other() -> None:
    # The stack's access key id is a prefix of its secret key: masking the shorter one first
    # would leave the secret's tail in the log.
    key_id, secret = "rpdeploy", "rpdeploy-secret-tail"
    masker = Masker({key_id: "AWS_ACCESS_KEY_ID", secret: "AWS_SECRET_ACCESS_KEY"})
    line = f"rpdeploy-bootstrap: S3 refused {key_id} with {secret}"
    assert envbuild.progress_line(line, masker) == "S3 refused *** with ***"
    assert envbuild.progress_line(f"pip: {secret}", masker) is None
    assert api_errors.mask(f"{secret} {key_id}", [key_id, secret]) == "*** ***"


def test_env_build_names_the_projects_requirements_not_the_containers_copy() -> None:
    line = "rpdeploy-bootstrap: installing /opt/rpdeploy/requirements.txt failed (exit 1): ERROR: x"
    shown = envbuild.progress_line(line, Masker(), "worker/requirements.txt")
    assert shown == "installing worker/requirements.txt failed (exit 1): ERROR: x"


def test_env_build_force_without_push_is_a_usage_error(
    make_project: MakeProject, run_cli: Callable[..., Result]
) -> None:
    root = make_project(RUNTIME)
    result = run_cli("env", "build", "--force", cwd=root, env={"DOCKER_HOST": "tcp://127.0.0.1:9"})
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        "error: --force replaces the archive in S3: it needs --push"
    ]
