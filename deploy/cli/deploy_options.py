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
from deploy.image.push_record import deploy_image
from deploy.release import desired

F = TypeVar("F", bound=Callable[..., Any])


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
