"""Option decorators shared by several commands (one definition, one help text)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from deploy.config import DEFAULT_FILE

F = TypeVar("F", bound=Callable[..., Any])


def config_option(func: F) -> F:
    return click.option(
        "-c",
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=str),
        default=DEFAULT_FILE,
        show_default=True,
        help="Path to the rpdeploy config file.",
    )(func)


def env_option(func: F) -> F:
    return click.option(
        "--env",
        "environment",
        default=None,
        metavar="ENV",
        help="Environment whose overrides apply (from `environments:` in the config).",
    )(func)
