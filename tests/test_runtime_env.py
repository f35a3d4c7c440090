"""`runtime:` is the one source of the slim bootstrap's run-time settings: render puts them into
the endpoint env (`Config.runtime_env`), and a second, disagreeing place is one config error."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
from click.testing import Result

from deploy.api import errors as api_errors
from deploy.config import LoadedConfig, load_config
from deploy.config.mask import Masker
from deploy.image import envbuild
from deploy.render import endpoint_spec, render_project
from deploy.runtime import settings as runtime_settings
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


# --- environments: one image, settings in the endpoint env (issue 10) -----------------------

#: Every `runtime:` setting written out, each on its own line (the conflict tests name the line).
EXPLICIT = BASE_CONFIG.replace(
    "  requirements: worker/requirements.txt\n",
    "  requirements: worker/requirements.txt\n"
    "  installer: pip\n"
    f"  index_url: {INDEX}\n"
    "  volume_path: /runpod-volume\n"
    "  disk:\n"
    "    min_free_os_mb: 256\n"
    "    min_free_volume_mb: 1024\n"
    "  s3:\n"
    "    bucket: rpdeploy-envs\n"
    "    prefix: envs/\n"
    f"    endpoint_url: '{S3_URL}'\n"
    "    region: us-east-1\n",
)
#: Two environments that change every setting an environment may change, each its own way.
PER_ENVIRONMENT = EXPLICIT.replace(
    "environments:\n  staging:\n    endpoint:\n      workers: {max: 1}\n",
    "environments:\n"
    "  staging:\n"
    "    runtime:\n"
    "      installer: uv\n"
    "      volume_path: /mnt/staging\n"
    "      disk: {min_free_volume_mb: 64}\n"
    "      s3: {bucket: staging-envs, prefix: staging/, region: auto}\n"
    "  production:\n"
    "    runtime:\n"
    "      index_url: https://pypi.org/simple/\n"
    "      disk: {min_free_os_mb: 2048}\n"
    "      s3: {endpoint_url: 'https://s3.us-west-004.backblazeb2.com', region: us-west-004}\n",
)
#: What render puts into the endpoint env for `PER_ENVIRONMENT`, besides the two secret references.
EXPECTED_ENV = {
    None: {
        "RPDEPLOY_INDEX_URL": INDEX,
        "RPDEPLOY_INSTALLER": "pip",
        "RPDEPLOY_MIN_FREE_OS_MB": "256",
        "RPDEPLOY_MIN_FREE_VOLUME_MB": "1024",
        "RPDEPLOY_S3_BUCKET": "rpdeploy-envs",
        "RPDEPLOY_S3_PREFIX": "envs/",
        "RPDEPLOY_S3_REGION": "us-east-1",
        "RPDEPLOY_VOLUME_PATH": "/runpod-volume",
        "AWS_ENDPOINT_URL": S3_URL,
    },
    "staging": {
        "RPDEPLOY_INDEX_URL": INDEX,
        "RPDEPLOY_INSTALLER": "uv",
        "RPDEPLOY_MIN_FREE_OS_MB": "256",
        "RPDEPLOY_MIN_FREE_VOLUME_MB": "64",
        "RPDEPLOY_S3_BUCKET": "staging-envs",
        "RPDEPLOY_S3_PREFIX": "staging/",
        "RPDEPLOY_S3_REGION": "auto",
        "RPDEPLOY_VOLUME_PATH": "/mnt/staging",
        "AWS_ENDPOINT_URL": S3_URL,
    },
    "production": {
        "RPDEPLOY_INDEX_URL": "https://pypi.org/simple/",
        "RPDEPLOY_INSTALLER": "pip",
        "RPDEPLOY_MIN_FREE_OS_MB": "2048",
        "RPDEPLOY_MIN_FREE_VOLUME_MB": "1024",
        "RPDEPLOY_S3_BUCKET": "rpdeploy-envs",
        "RPDEPLOY_S3_PREFIX": "envs/",
        "RPDEPLOY_S3_REGION": "us-west-004",
        "RPDEPLOY_VOLUME_PATH": "/runpod-volume",
        "AWS_ENDPOINT_URL": "https://s3.us-west-004.backblazeb2.com",
    },
}
SECRET_REFERENCES = {
    "AWS_ACCESS_KEY_ID": "{{ RUNPOD_SECRET_demo_aws_access_key_id }}",
    "AWS_SECRET_ACCESS_KEY": "{{ RUNPOD_SECRET_demo_aws_secret_access_key }}",
}


def line_of(config: str, text: str) -> int:
    """The 1-based line of the only line of ``config`` that holds ``text``."""
    (number,) = [n for n, line in enumerate(config.splitlines(), 1) if text in line]
    return number


def test_environments_with_other_runtime_settings_share_one_dockerfile_and_differ_in_the_endpoint_env(
    make_project: MakeProject, run_cli: Callable[..., Result]
) -> None:
    """The images of all environments share one tag per commit, so the committed Dockerfile may
    not depend on --env: every runtime setting an environment changes is in its endpoint env."""
    root = make_project(PER_ENVIRONMENT)
    dockerfiles = set()
    for env, expected in EXPECTED_ENV.items():
        args = ["render", "--image", IMAGE, *(["--env", env] if env else [])]
        result = run_cli(*args, cwd=root)
        assert result.exit_code == 0, result.output
        dockerfile = (root / "Dockerfile.slim").read_bytes()
        dockerfiles.add(dockerfile)
        body = json.loads(
            (root / "build" / "rpdeploy" / (env or "default") / "endpoint.create.json").read_text()
        )
        assert body["env"] == {**expected, **SECRET_REFERENCES}, env
    assert len(dockerfiles) == 1
    # Nothing of runtime: but the fixed copy target reaches the image.
    (dockerfile,) = dockerfiles
    env_lines = [line for line in dockerfile.decode().splitlines() if "RPDEPLOY_" in line]
    assert env_lines == [
        "    RPDEPLOY_STRATEGY=slim \\",
        '    RPDEPLOY_REQUIREMENTS="/opt/rpdeploy/requirements.txt"',
    ]
    # So another environment's render finds no drift in the committed files.
    check = run_cli("render", "--check", "--image", IMAGE, "--env", "staging", cwd=root)
    assert check.exit_code == 0, check.output


def bootstrap_settings(dockerfile: str, endpoint_env: dict[str, str]) -> runtime_settings.Settings:
    """What the bootstrap reads in a worker: the image's ENV, overridden by the endpoint env
    (as Docker, and RunPod, apply a container's env over the image's)."""
    image_env = dict(re.findall(r'^(?:ENV)?\s+([A-Z_]+)="?([^"\s\\]*)"?(?: \\)?$', dockerfile, re.MULTILINE))
    return runtime_settings.load({**image_env, **endpoint_env})


def test_the_bootstrap_reads_every_setting_from_the_image_and_the_endpoint_env(
    make_project: MakeProject,
) -> None:
    loaded = load_config(make_project(PER_ENVIRONMENT) / "rpdeploy.yaml", "staging")
    rendered = render_project(loaded, IMAGE)
    keys = {"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "key"}  # RunPod fills the secrets in
    env = {**endpoint_spec.endpoint_env(loaded.config), **keys}
    got = bootstrap_settings(rendered.files["Dockerfile.slim"], env)
    assert (got.volume_path, got.installer, got.index_url) == ("/mnt/staging", "uv", INDEX)
    assert (got.min_free_volume, got.min_free_os) == (64 * 2**20, 256 * 2**20)
    assert got.requirements == "/opt/rpdeploy/requirements.txt"
    assert got.s3 == runtime_settings.S3Settings(S3_URL, "staging-envs", "staging/", "auto", "id", "key")


def test_a_config_that_leaves_the_runtime_settings_out_gives_the_bootstraps_own_defaults(
    make_project: MakeProject,
) -> None:
    """The defaults render spells into the endpoint env are the bootstrap's (deploy/runtime/settings.py)."""
    loaded = load_config(make_project(BASE_CONFIG) / "rpdeploy.yaml")
    rendered = render_project(loaded, IMAGE)
    got = bootstrap_settings(rendered.files["Dockerfile.slim"], endpoint_spec.endpoint_env(loaded.config))
    assert got == runtime_settings.load({})


CONFLICTS = [
    ("RPDEPLOY_VOLUME_PATH", "/mnt/elsewhere", "runtime.volume_path", "  volume_path:"),
    ("RPDEPLOY_INSTALLER", "uv", "runtime.installer", "  installer:"),
    ("RPDEPLOY_INDEX_URL", "https://pypi.org/simple/", "runtime.index_url", "  index_url:"),
    ("RPDEPLOY_MIN_FREE_OS_MB", "'1'", "runtime.disk.min_free_os_mb", "min_free_os_mb:"),
    ("RPDEPLOY_MIN_FREE_VOLUME_MB", "'1'", "runtime.disk.min_free_volume_mb", "min_free_volume_mb:"),
    ("RPDEPLOY_S3_BUCKET", "other-bucket", "runtime.s3.bucket", "bucket:"),
    ("RPDEPLOY_S3_PREFIX", "other/", "runtime.s3.prefix", "prefix:"),
    ("RPDEPLOY_S3_REGION", "eu-west-1", "runtime.s3.region", "region:"),
    ("AWS_ENDPOINT_URL", "https://s3.example.com", "runtime.s3.endpoint_url", "endpoint_url:"),
]


@pytest.mark.parametrize(
    ("variable", "value", "setting", "written"), CONFLICTS, ids=[c[0] for c in CONFLICTS]
)
def test_each_runtime_setting_in_endpoint_env_or_a_secret_is_one_config_error(
    make_project: MakeProject,
    run_cli: Callable[..., Result],
    variable: str,
    value: str,
    setting: str,
    written: str,
) -> None:
    at = line_of(EXPLICIT, written)
    in_env = with_env(EXPLICIT, variable, value)
    assert config_errors(make_project, run_cli, in_env, "env") == [
        f"error: rpdeploy.yaml:{line_of(in_env, variable)}: endpoint.env.{variable}:"
        f" conflicts with {setting}, which render puts into the endpoint env as {variable}:"
        f" set it in one place ({setting} is at rpdeploy.yaml:{at})"
    ]
    as_secret = EXPLICIT.replace(
        "  - name: AWS_SECRET_ACCESS_KEY\n", f"  - name: AWS_SECRET_ACCESS_KEY\n  - name: {variable}\n"
    )
    assert config_errors(make_project, run_cli, as_secret, "secret") == [
        f"error: rpdeploy.yaml:{line_of(as_secret, f'- name: {variable}')}: secrets[2].name:"
        f" {variable} is also set by {setting} (render puts it into the endpoint env): set it in one place"
        f" ({setting} is at rpdeploy.yaml:{at})"
    ]
    # The same value twice is no conflict: render writes it once.
    (same,) = [
        v
        for name, (v, _) in load_config(make_project(EXPLICIT, "explicit") / "rpdeploy.yaml")
        .config.runtime_env()
        .items()
        if name == variable
    ]
    assert config_errors(make_project, run_cli, with_env(EXPLICIT, variable, f"'{same}'"), "same") == []


def with_env(config: str, variable: str, value: str) -> str:
    return config.replace("  type: QUEUE\n", f"  type: QUEUE\n  env:\n    {variable}: {value}\n")


def config_errors(
    make_project: MakeProject, run_cli: Callable[..., Result], config: str, name: str
) -> list[str]:
    """The error lines of `config validate` on ``config`` (none when it passes)."""
    result = run_cli("config", "validate", cwd=make_project(config, name))
    assert result.exit_code == (2 if result.stderr else 0), result.output
    return result.stderr.splitlines()


def test_an_environments_endpoint_env_conflicts_with_the_setting_of_that_environment(
    make_project: MakeProject, run_cli: Callable[..., Result]
) -> None:
    """Staging's own volume path against staging's endpoint.env: both lines are staging's."""
    staging = "      s3: {bucket: staging-envs, prefix: staging/, region: auto}\n"
    config = PER_ENVIRONMENT.replace(
        staging, staging + "    endpoint:\n      env: {RPDEPLOY_VOLUME_PATH: /runpod-volume}\n"
    )
    root = make_project(config)
    result = run_cli("render", "--image", IMAGE, "--env", "staging", cwd=root)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"error: rpdeploy.yaml:{line_of(config, 'RPDEPLOY_VOLUME_PATH')}: environments.staging.endpoint.env"
        ".RPDEPLOY_VOLUME_PATH: conflicts with runtime.volume_path, which render puts into the endpoint env"
        " as RPDEPLOY_VOLUME_PATH: set it in one place (environments.staging.runtime.volume_path is at"
        f" rpdeploy.yaml:{line_of(config, 'volume_path: /mnt/staging')})"
    ]
    # Production has no such endpoint.env value: it renders.
    assert run_cli("render", "--image", IMAGE, "--env", "production", cwd=root).exit_code == 0


def test_a_region_variable_the_bootstrap_reads_first_conflicts_with_runtime_s3_region(
    make_project: MakeProject, run_cli: Callable[..., Result]
) -> None:
    """The bootstrap reads AWS_REGION, then AWS_DEFAULT_REGION, before RPDEPLOY_S3_REGION: either
    one, in endpoint.env or as a secret, would silently win over runtime.s3.region."""
    at = line_of(EXPLICIT, "region:")
    config = EXPLICIT.replace("  type: QUEUE\n", "  type: QUEUE\n  env: {AWS_REGION: eu-west-1}\n").replace(
        "  - name: AWS_SECRET_ACCESS_KEY\n", "  - name: AWS_SECRET_ACCESS_KEY\n  - name: AWS_DEFAULT_REGION\n"
    )
    result = run_cli("config", "validate", cwd=make_project(config))
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"error: rpdeploy.yaml:{line_of(config, 'AWS_REGION:')}: endpoint.env.AWS_REGION: conflicts with"
        " runtime.s3.region, which render puts into the endpoint env as RPDEPLOY_S3_REGION, which the"
        " bootstrap reads only when AWS_REGION is unset: set it in one place"
        f" (runtime.s3.region is at rpdeploy.yaml:{at})",
        f"error: rpdeploy.yaml:{line_of(config, '- name: AWS_DEFAULT_REGION')}: secrets[2].name:"
        " AWS_DEFAULT_REGION is also set by runtime.s3.region (render puts it into the endpoint env as"
        " RPDEPLOY_S3_REGION, which the bootstrap reads only when AWS_DEFAULT_REGION is unset):"
        f" set it in one place (runtime.s3.region is at rpdeploy.yaml:{at})",
    ]
    # Without runtime.s3.region, AWS_REGION is where the region comes from: no conflict.
    unset = config.replace("    region: us-east-1\n", "")
    assert run_cli("config", "validate", cwd=make_project(unset, "unset")).exit_code == 0


def test_a_default_setting_conflicts_too_and_says_it_is_the_default(
    make_project: MakeProject, run_cli: Callable[..., Result]
) -> None:
    config = BASE_CONFIG.replace("  type: QUEUE\n", "  type: QUEUE\n  env: {RPDEPLOY_VOLUME_PATH: /data}\n")
    result = run_cli("config", "validate", cwd=make_project(config))
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"error: rpdeploy.yaml:{line_of(config, 'RPDEPLOY_VOLUME_PATH')}: endpoint.env.RPDEPLOY_VOLUME_PATH:"
        " conflicts with runtime.volume_path (its default, '/runpod-volume'), which render puts into the"
        " endpoint env as RPDEPLOY_VOLUME_PATH: set it in one place"
    ]


@pytest.mark.parametrize(
    ("strategy", "override", "key"),
    [
        ("slim", "requirements: worker/other.txt", "requirements"),
        ("baked", "requirements: worker/other.txt", "requirements"),
        ("baked", "installer: uv", "installer"),
    ],
    ids=["slim-requirements", "baked-requirements", "baked-installer"],
)
def test_an_environment_may_not_change_what_is_built_into_the_image(
    make_project: MakeProject, run_cli: Callable[..., Result], strategy: str, override: str, key: str
) -> None:
    config = BASE_CONFIG.replace("strategy: slim", f"strategy: {strategy}") + f"    runtime: {{{override}}}\n"
    root = make_project(config, files={"worker/other.txt": "six==1.17.0\n"})
    result = run_cli("render", "--image", IMAGE, "--env", "staging", cwd=root)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"error: rpdeploy.yaml:{line_of(config, override)}: environments.staging.runtime.{key}: cannot be"
        f" overridden per environment: it is built into the {strategy} image, and every environment deploys"
        " the image of one build (one tag per commit); set it in runtime: for all of them"
    ]
    assert not (root / f"Dockerfile.{strategy}").exists()
    # The base config alone is fine; so is the installer of a slim image (it is run-time).
    assert run_cli("config", "validate", cwd=make_project(BASE_CONFIG, "base")).exit_code == 0


def test_release_builds_one_env_archive_per_place_the_environments_workers_look(
    make_project: MakeProject,
) -> None:
    """Staging and production name other archives (installer, bucket, prefix): each gets its
    own; an environment whose runtime: equals another's shares its archive; baked, none."""
    root = make_project(PER_ENVIRONMENT.replace("  production:\n", "  same: {}\n  production:\n"))

    def loaded(env: str | None) -> LoadedConfig:
        return load_config(root / "rpdeploy.yaml", env)

    base, staging, same, production = (loaded(env) for env in (None, "staging", "same", "production"))
    chosen = envbuild.distinct_archives([staging, base, same, production, staging])
    assert [c.environment for c in chosen] == ["staging", None, "production"]
    baked = make_project(
        PER_ENVIRONMENT.replace("strategy: slim", "strategy: baked").replace("      installer: uv\n", ""),
        "baked",
    )
    assert envbuild.distinct_archives([load_config(baked / "rpdeploy.yaml", "staging")]) == []
