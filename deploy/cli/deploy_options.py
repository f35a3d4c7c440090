"""Options and plumbing shared by the deploy commands (plan, apply, releases, rollback, promote, destroy).

``--target`` itself is `deploy.cli.target.target_option` (engineer B's).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from deploy.api import RunPodApi
from deploy.cli.options import config_option, env_option
from deploy.cli.target import target_environ, target_option
from deploy.config import LoadedConfig, load_config
from deploy.errors import UsageError
from deploy.image.push_record import deploy_image
from deploy.release import desired

F = TypeVar("F", bound=Callable[..., Any])
#: How long --wait follows a rollout unless --timeout says otherwise.
DEFAULT_WAIT_S = 600.0


def image_options(func: F) -> F:
    func = click.option(
        "--allow-mutable-tag",
        is_flag=True,
        default=False,
        help="Accept an image tag that can move (latest, a branch); RunPod may serve a cached image for it.",
    )(func)
    return click.option(
        "--image",
        default=None,
        metavar="REF",
        help="Image to deploy. Default: the image@digest `rpdeploy push` recorded for the environment.",
    )(func)


def ephemeral_option(func: F) -> F:
    return click.option(
        "--ephemeral",
        default=None,
        metavar="NAME",
        help="Act on the per-pull-request endpoint <project>-NAME (e.g. pr-42) instead of the environment's.",
    )(func)


def endpoint_options(func: F) -> F:
    """-c, --env, --ephemeral and --target: which endpoint a command acts on, and through which API."""
    return config_option(env_option(ephemeral_option(target_option(func))))


def exclusive(**given: object) -> None:
    """UsageError (exit 2) when more than one of these options was given: never ignore one silently.

    ``exclusive(env=environment, ephemeral=ephemeral)``: where --env only picks the endpoint
    (destroy, releases, rollback), --ephemeral names another one, so both is a contradiction.
    """
    named = [f"--{name.replace('_', '-')}" for name, value in given.items() if value is not None]
    if len(named) > 1:
        raise UsageError(f"{' and '.join(named)} exclude each other: give one")


def wait_timeout(wait: bool, timeout: float | None) -> float:
    """The --timeout for --wait (default 600 s); UsageError for --timeout without --wait (a no-op)."""
    if timeout is not None and not wait:
        raise UsageError("--timeout only applies with --wait: add --wait or drop --timeout")
    return DEFAULT_WAIT_S if timeout is None else timeout


def deploy_inputs(
    config_path: str, environment: str | None, target: str, image: str | None, allow_mutable_tag: bool
) -> tuple[dict[str, str], LoadedConfig, str]:
    """The environment (pointed at ``target``), the config with its inline secrets masked, the image."""
    environ = environ_for(target)
    loaded = desired.with_inline_secrets(load_config(config_path, environment), environ)
    return environ, loaded, deploy_image(loaded, image, allow_mutable_tag=allow_mutable_tag)


def environ_for(target: str) -> dict[str, str]:
    """The process environment, pointed at ``target``'s API."""
    return target_environ(target)


def connect(environ: dict[str, str]) -> RunPodApi:
    return RunPodApi.from_environ(environ)
