"""Option decorators shared by several commands (one definition, one help text)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from deploy.config import DEFAULT_FILE
from deploy.errors import UsageError

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


def validation_options(func: F) -> F:
    """``--concurrency`` and ``--junit PATH``: how the cases run and where their report goes
    (`rpdeploy validate` and `rpdeploy release`, which validates each environment)."""
    func = click.option(
        "--junit",
        "junit_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        metavar="PATH",
        help="Also write the results as JUnit XML (release: case names prefixed by the environment).",
    )(func)
    return click.option(
        "--concurrency", type=click.IntRange(1, 64), default=4, show_default=True, help="Cases run at once."
    )(func)


def check_junit_path(junit_path: Path | None) -> None:
    """UsageError (exit 2) when ``--junit``'s folder does not exist: checked before any job runs,
    since a report that cannot be written must not cost a run (or a release)."""
    if junit_path is not None and not junit_path.resolve().parent.is_dir():
        raise UsageError(f"--junit {junit_path}: no such directory {junit_path.resolve().parent}")
