"""`rpdeploy promote`: deploy to one environment exactly the image digest another one runs."""

from __future__ import annotations

import click

from deploy.cli.apply_cmd import ApplyResult, deploy, wait_options
from deploy.cli.deploy_options import connect, environ_for, wait_timeout
from deploy.cli.options import config_option
from deploy.cli.output import Context, cli_command
from deploy.cli.target import target_option
from deploy.config import load_config
from deploy.errors import UsageError
from deploy.image.push_record import is_immutable
from deploy.release import desired, history


@click.command()
@config_option
@click.option(
    "--from", "source", required=True, metavar="ENV", help="Environment whose running image to take."
)
@click.option("--to", "dest", required=True, metavar="ENV", help="Environment to deploy it to.")
@target_option
@wait_options
@cli_command
def promote(
    ctx: Context,
    config_path: str,
    source: str,
    dest: str,
    target: str,
    force: bool,
    wait: bool,
    timeout: float | None,
) -> ApplyResult:
    """Apply --to's config with exactly the image the --from endpoint runs now (read from the API).

    \b
    Examples:
      rpdeploy promote --from staging --to production --wait

    Exit codes: 0 promoted (or nothing to do), 1 preflight failed, endpoint changed
    meanwhile or --wait timed out, 2 bad usage (same environment, no --from endpoint, a
    mutable tag running there), 3 RunPod API unreachable.
    """
    limit = wait_timeout(wait, timeout)
    if source == dest:
        raise UsageError(f"--from and --to are both {source}: promote goes from one environment to another")
    environ = environ_for(target)
    origin = load_config(config_path, source)
    loaded = desired.with_inline_secrets(load_config(config_path, dest), environ)
    with connect(environ) as api:
        image = str(history.existing(api, desired.target(origin)).get("image"))
    if not is_immutable(image):
        raise UsageError(f"{source} runs {image}, a tag that can move: promote only pins a digest or sha tag")
    ctx.log(f"promote: {image} from {source} to {dest}")
    return deploy(ctx, loaded, environ, image, force=force, wait=wait, timeout=limit)
