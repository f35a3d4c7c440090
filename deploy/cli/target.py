"""`--target runpod|local`: which RunPod platform a command talks to, as environment variables.

``local`` is the running emulator, with exactly the variables `rpdeploy emulator env` exports
(the same code makes both), laid over the process environment; ``runpod`` is the process
environment as it is. Commands then take one path for both:
``RunPodApi.from_environ(target_environ(target, state_dir))``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import click

from deploy.cli.emulator_cmd import STATE_ENV, default_state, running_env

F = TypeVar("F", bound=Callable[..., Any])
Target = Literal["runpod", "local"]
TARGETS: tuple[Target, ...] = ("runpod", "local")


def target_option(func: F) -> F:
    """``--target runpod|local`` (default runpod), passed to the command as ``target``."""
    return click.option(
        "--target",
        "target",
        type=click.Choice(TARGETS),
        default="runpod",
        show_default=True,
        help=(
            "Which platform to talk to: RunPod (RUNPOD_API_KEY, RUNPOD_API_URL) or the local emulator "
            f"started with `rpdeploy emulator start` (its state folder: ${STATE_ENV})."
        ),
    )(func)


def target_environ(target: str, state_dir: Path | None = None) -> dict[str, str]:
    """The environment a command's RunPod clients read for ``target``.

    ``state_dir`` is the emulator's state folder (default: $RPDEPLOY_EMULATOR_STATE or the
    emulator's default); EmulatorError when no emulator runs there.
    """
    if target == "runpod":
        return dict(os.environ)
    if target != "local":
        raise ValueError(f"unknown target {target!r}")  # click.Choice lets no other value through
    state = state_dir if state_dir is not None else default_state(os.environ)
    return running_env(state).overlay(os.environ)
