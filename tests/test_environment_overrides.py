"""What an environment may override: everything but what shapes the image.

Every environment deploys the image of one build under one tag per commit (`rpdeploy release`
promotes the same digest), so an environment that changed the base, the handler's files or
start command, or what a baked image installs would either replace another environment's image
under the same tag (`rpdeploy build --env`) or silently run the other's (`release --promote`).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import Result

from deploy.config import load_config
from deploy.image.build import plan_build
from deploy.render.project import _dockerfile_context
from tests.conftest import BASE_CONFIG, MakeProject
from tests.test_image_render_safety import committed

IMAGE = "127.0.0.1:5000/acme/demo-worker:sha-1"
#: A production environment beside the base config's staging one.
WITH_PRODUCTION = BASE_CONFIG + "  production:\n    endpoint:\n      workers: {min: 1, max: 3}\n"


def line_of(config: str, text: str) -> int:
    (number,) = [n for n, line in enumerate(config.splitlines(), 1) if text in line]
    return number


#: (strategy, section, the override's text, the key it names); the message names the
#: environment's strategy (the overridden one, for ``strategy``).
SHAPING = [
    ("slim", "handler", "command: python3 -u /app/handler.py --debug", "command"),
    ("slim", "handler", "path: other", "path"),
    ("slim", "handler", "file: main.py", "file"),
    ("slim", "handler", "module: worker.handler", "module"),
    ("slim", "image", "base: 127.0.0.1:5000/python:3.11-other", "base"),
    ("baked", "image", "strategy: baked", "strategy"),
    ("slim", "image", "system_packages: [ffmpeg]", "system_packages"),
    ("slim", "image", "workdir: /srv", "workdir"),
    ("baked", "handler", "command: python3 -u /app/handler.py --debug", "command"),
    ("slim", "image", "strategy: slim", "strategy"),
    ("baked", "runtime", "index_url: https://pypi.org/simple/", "index_url"),
]
#: Files the overridden settings name, so that the override is the only problem.
HANDLER_FILES = {"other/handler.py": "", "worker/main.py": "", "worker/other.txt": "six\n"}


@pytest.mark.parametrize(
    ("strategy", "section", "override", "key"),
    SHAPING,
    ids=[f"{strategy}-{section}.{key}" for strategy, section, _, key in SHAPING],
)
def test_an_environment_may_not_change_the_handler_or_the_image(
    make_project: MakeProject,
    run_cli: Callable[..., Result],
    strategy: str,
    section: str,
    override: str,
    key: str,
) -> None:
    base_strategy = ({"slim", "baked"} - {strategy}).pop() if key == "strategy" else strategy
    config = (
        BASE_CONFIG.replace("strategy: slim", f"strategy: {base_strategy}")
        + f"    {section}: {{{override}}}\n"
    )
    root = make_project(config, files=HANDLER_FILES)
    result = run_cli("render", "--image", IMAGE, "--env", "staging", cwd=root)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"error: rpdeploy.yaml:{line_of(config, override)}: environments.staging.{section}.{key}: cannot be"
        f" overridden per environment: it is built into the {strategy} image, and every environment deploys"
        f" the image of one build (one tag per commit); set it in {section}: for all of them"
    ]
    assert not (root / "build").exists()
    assert not (root / f"Dockerfile.{strategy}").exists()


def test_every_shaping_key_of_an_environment_is_named_not_only_the_first(
    make_project: MakeProject, run_cli: Callable[..., Result]
) -> None:
    # Neither the sections nor the keys in their schema's or alphabetical order.
    config = BASE_CONFIG + (
        "    handler: {file: main.py}\n"
        "    runtime: {requirements: worker/other.txt}\n"
        "    image:\n"
        "      workdir: /srv\n"
        "      base: python:3.12-slim\n"
    )
    result = run_cli("config", "validate", cwd=make_project(config, files=HANDLER_FILES))
    assert result.exit_code == 2, result.output
    # One line each, at its own line, in the order of the file.
    assert [line.split(": ")[1:3] for line in result.stderr.splitlines()] == [
        [f"rpdeploy.yaml:{line_of(config, 'main.py')}", "environments.staging.handler.file"],
        [
            f"rpdeploy.yaml:{line_of(config, '{requirements:')}",
            "environments.staging.runtime.requirements",
        ],
        [f"rpdeploy.yaml:{line_of(config, 'workdir')}", "environments.staging.image.workdir"],
        [f"rpdeploy.yaml:{line_of(config, 'python:3.12')}", "environments.staging.image.base"],
    ]


def test_where_the_image_goes_and_how_it_is_checked_may_differ_per_environment(
    make_project: MakeProject,
) -> None:
    """Registry, repository, `latest`, the builder and the size budget leave the image's content
    as it is: production may push to its own registry and hold a tighter budget."""
    config = WITH_PRODUCTION + (
        "    image:\n"
        "      registry: registry.example.com\n"
        "      repository: acme/prod-worker\n"
        "      latest: true\n"
        "      builder: docker\n"
        "      max_compressed_mb: 80\n"
        "    runtime: {index_url: 'https://pypi.org/simple/'}\n"
    )
    root = make_project(config)
    production = load_config(root / "rpdeploy.yaml", "production").config
    assert (production.image.registry, production.image.repository) == (
        "registry.example.com",
        "acme/prod-worker",
    )
    assert (production.image.latest, production.image.builder, production.image.max_compressed_mb) == (
        True,
        "docker",
        80,
    )
    # A slim image's index is read at cold start (the endpoint env), so it may differ too.
    assert production.runtime_env()["RPDEPLOY_INDEX_URL"][0] == "https://pypi.org/simple/"
    assert load_config(root / "rpdeploy.yaml", "staging").config.image.registry == "127.0.0.1:5000"


def test_release_with_promote_refuses_a_production_handler_before_building(
    make_project: MakeProject, run_cli: Callable[..., Result]
) -> None:
    """`release --promote` deploys staging's digest to production: a production that set its own
    start command would run staging's unseen. The refusal comes before render, build or push."""
    config = WITH_PRODUCTION + "    handler:\n      command: python3 -u /app/handler.py --prod\n"
    root = make_project(config)
    # The runpod target: config is read before any API call, so no API key or emulator is needed.
    result = run_cli("release", "--target", "runpod", "--promote", cwd=root)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"error: rpdeploy.yaml:{line_of(config, '--prod')}: environments.production.handler.command: cannot"
        " be overridden per environment: it is built into the slim image, and every environment deploys"
        " the image of one build (one tag per commit); set it in handler: for all of them"
    ]
    assert not (root / "build").exists()


def every_allowed_override(strategy: str) -> str:
    """A production environment that overrides every key it may (all but `IMAGE_SHAPING_KEYS`)."""
    runtime = (
        "      volume_path: /vol\n"
        "      disk: {min_free_os_mb: 1}\n"
        "      s3: {bucket: prod-envs, prefix: prod/}\n"
    )
    if strategy == "slim":  # a baked image installs at build time: these two shape it
        runtime += "      installer: uv\n      index_url: http://127.0.0.1:8099/simple/\n"
    return BASE_CONFIG.replace("strategy: slim", f"strategy: {strategy}") + (
        "  production:\n"
        "    image:\n"
        "      registry: 127.0.0.1:5001\n"
        "      repository: acme/prod-worker\n"
        "      latest: true\n"
        "      builder: buildx\n"
        "      max_compressed_mb: 80\n"
        "      registry_auth: {username_env: PROD_USER, password_env: PROD_PASSWORD}\n"
        f"    runtime:\n{runtime}"
        "    endpoint: {name: demo-prod, workers: {min: 1, max: 3}, env: {LOG_LEVEL: WARNING}}\n"
        "    secrets: [{name: PROD_TOKEN}]\n"
        "    tests: {path: prod-tests.json, timeout_ms: 60000}\n"
    )


@pytest.mark.parametrize("strategy", ["slim", "baked"])
def test_every_environment_builds_the_same_image(make_project: MakeProject, strategy: str) -> None:
    """What an environment may override leaves the build as it is: what a (project) Dockerfile
    template sees, the context, the build arguments and the labels are those of every other
    environment, so `rpdeploy build --env` gives one image per commit, whichever environment
    builds it (a label that hashed the environment's config gave each its own image id under
    the one `sha-<7>` tag)."""
    root = committed(make_project, every_allowed_override(strategy))
    loaded = {env: load_config(root / "rpdeploy.yaml", env) for env in ("staging", "production")}
    assert loaded["production"].config.endpoint.name == "demo-prod"  # the overrides apply
    plans = {env: plan_build(config, {"SOURCE_DATE_EPOCH": "86400"}) for env, config in loaded.items()}
    staging, production = plans["staging"], plans["production"]
    assert _dockerfile_context(loaded["production"]) == _dockerfile_context(loaded["staging"])
    assert production.context.digest == staging.context.digest
    assert production.buildargs == staging.buildargs
    assert production.labels == staging.labels
    assert production.tags.immutable == staging.tags.immutable


def test_an_environment_may_repeat_a_shaping_key_with_the_base_files_value(
    make_project: MakeProject, run_cli: Callable[..., Result]
) -> None:
    """Repeating the base's value changes nothing (a config written before the rule keeps
    working); a key the base leaves at its default is compared with what the base wrote,
    so setting it in an environment is still refused."""
    config = BASE_CONFIG + "    handler: {path: worker, file: handler.py}\n    image: {strategy: slim}\n"
    result = run_cli("config", "validate", cwd=make_project(config))
    assert result.exit_code == 0, result.output
    refused = BASE_CONFIG + "    handler: {path: worker, file: main.py}\n    image: {workdir: /app}\n"
    result = run_cli("config", "validate", cwd=make_project(refused, "refused", files=HANDLER_FILES))
    assert result.exit_code == 2, result.output
    assert [line.split(": ")[2] for line in result.stderr.splitlines()] == [
        "environments.staging.handler.file",
        "environments.staging.image.workdir",
    ]


def test_release_with_promote_refuses_a_production_image_elsewhere_before_building(
    make_project: MakeProject, run_cli: Callable[..., Result]
) -> None:
    """`release --promote` builds and pushes once, with staging's image settings: a production
    that pushes elsewhere, to another repository, under another budget or with `latest` would be
    ignored unseen. One line each, naming both places; the same settings pass this check."""
    config = WITH_PRODUCTION + "    image: {repository: acme/prod-worker, latest: true}\n"
    root = make_project(config)
    result = run_cli("release", "--target", "runpod", "--promote", cwd=root)
    assert result.exit_code == 2, result.output
    line = line_of(config, "prod-worker")
    assert result.stderr.splitlines() == [
        f"error: rpdeploy.yaml:{line}: image.repository: production's 'acme/prod-worker' differs from"
        " staging's 'acme/demo-worker' (rpdeploy.yaml:5): a promotion deploys staging's build as it"
        " is; set one value for both, or build, push and apply production on its own (--env production)",
        f"error: rpdeploy.yaml:{line}: image.latest: production's True differs from staging's False"
        " (rpdeploy.yaml:3): a promotion deploys staging's build as it is; set one value for both, or"
        " build, push and apply production on its own (--env production)",
    ]
    assert not (root / "build").exists()
    # The same image settings get past this check (to the missing validation cases, exit 2).
    same = run_cli("release", "--target", "runpod", "--promote", cwd=make_project(WITH_PRODUCTION, "same"))
    assert "differs from" not in same.output


def test_an_override_of_a_section_the_base_leaves_out_is_refused_too(
    make_project: MakeProject, run_cli: Callable[..., Result]
) -> None:
    """The base file has no handler: section (its defaults apply); staging's is still refused."""
    config = BASE_CONFIG.replace("handler:\n  path: worker\n  file: handler.py\n", "")
    config += "    handler: {command: python3 -u /app/handler.py --debug}\n"
    result = run_cli("config", "validate", cwd=make_project(config))
    assert result.exit_code == 2, result.output
    named = [line.split(": ")[2] for line in result.stderr.splitlines()]
    assert named == ["environments.staging.handler.command"]
