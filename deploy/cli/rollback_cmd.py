"""`rpdeploy rollback`: put an earlier release's image and settings back, as a new release."""

from __future__ import annotations

import click

from deploy.cli.apply_cmd import ApplyResult, wait_options
from deploy.cli.deploy_options import connect, endpoint_options, environ_for, exclusive, wait_timeout
from deploy.cli.output import Context, cli_command
from deploy.config import load_config
from deploy.errors import UsageError
from deploy.release import desired, history


@click.command()
@endpoint_options
@click.option(
    "--to", "to", type=click.IntRange(min=1), default=None, metavar="VERSION", help="Release to go back to."
)
@click.option(
    "--steps", type=click.IntRange(min=1), default=None, metavar="N", help="Go back N releases (default 1)."
)
@wait_options
@cli_command
def rollback(
    ctx: Context,
    config_path: str,
    environment: str | None,
    ephemeral: str | None,
    target: str,
    to: int | None,
    steps: int | None,
    force: bool,
    wait: bool,
    timeout: float | None,
) -> ApplyResult:
    """Re-apply an earlier release's image and settings as a NEW release (history is never rewritten).

    RunPod has no rollback call: the earlier state is rebuilt from the endpoint as it is
    and the inverse of every newer release's diff, then PATCHed. Release diffs hold what
    rolls workers (image, env, compute, disk…); autoscaler settings stay as they are.
    The next `rpdeploy apply` deploys the config again.

    \b
    Examples:
      rpdeploy rollback --env production             # one release back
      rpdeploy rollback --env production --to 3 --wait

    Exit codes: 0 rolled back, 1 preflight failed, endpoint changed meanwhile or --wait
    timed out, 2 bad usage (no such release or endpoint), 3 RunPod API unreachable.
    """
    if to is not None and steps is not None:
        raise UsageError("--to and --steps name the release two ways: give one")
    exclusive(env=environment, ephemeral=ephemeral)
    limit = wait_timeout(wait, timeout)
    environ = environ_for(target)
    loaded = desired.with_inline_secrets(load_config(config_path, environment), environ)
    where = desired.target(loaded, ephemeral)
    with connect(environ) as api:
        applied = history.roll_back(
            api,
            loaded,
            where,
            environ,
            to=to,
            steps=steps,
            force=force,
            wait=wait,
            timeout=limit,
            progress=ctx.log,
        )
    return ApplyResult(applied, loaded)
