"""`rpdeploy apply`: create or update the endpoint as planned; optionally follow the rollout."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click
from rich.console import Console

from deploy.ci import secret_values, write_github_output
from deploy.cli.deploy_options import connect, deploy_inputs, endpoint_options, image_options, wait_timeout
from deploy.cli.output import Context, cli_command
from deploy.cli.plan_cmd import print_plan
from deploy.config import LoadedConfig
from deploy.errors import ExitCode
from deploy.release import desired
from deploy.release.apply import Applied, apply_plan, prepare


@dataclass(frozen=True)
class ApplyResult:
    applied: Applied
    loaded: LoadedConfig
    exit_code: ExitCode = ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return self.applied.to_json(self.loaded)

    def print_text(self, console: Console) -> None:
        applied = self.applied
        print_plan(console, applied.plan, self.loaded)
        for check in applied.forced:
            console.print(
                f"warning: deployed despite a failed preflight (--force): {check.check}: {check.detail}"
            )
        calls = applied.api_calls
        wrote = ", ".join(f"{item['kind']} {item['name']} ({item['action']}d)" for item in applied.written)
        what = f"wrote {wrote}" if wrote else "unchanged, nothing written"
        version = f"; release v{applied.version}" if applied.version is not None else ""
        console.print(
            f"{what}: endpoint {applied.plan.name} ({applied.endpoint_id}){version}; "
            f"API calls: {calls['reads']} reads, {calls['writes']} writes"
        )


def deploy(
    ctx: Context,
    loaded: LoadedConfig,
    environ: dict[str, str],
    image: str,
    *,
    ephemeral: str | None = None,
    force: bool = False,
    wait: bool = False,
    timeout: float = 600.0,
) -> ApplyResult:
    """Plan and apply ``image`` for ``loaded`` (shared by apply, rollback and promote)."""
    where = desired.target(loaded, ephemeral)
    with connect(environ) as api:
        plan = prepare(api, loaded, where, image, environ)
        applied = apply_plan(
            api, loaded, where, plan, environ, force=force, wait=wait, timeout=timeout, progress=ctx.log
        )
    secret_vars = [s.from_env or s.name for s in loaded.config.secrets]
    # image and digest as deployed (checked by deploy_image); the digest is empty for a tag.
    outputs = {
        "image": plan.image,
        "digest": plan.image.partition("@")[2],
        "endpoint_id": applied.endpoint_id,
        "release": str(applied.version or ""),
    }
    write_github_output(outputs, environ, secrets=secret_values(secret_vars, environ))
    return ApplyResult(applied, loaded)


def force_timeout_options(func: Any) -> Any:
    """--force and --timeout (`release` always waits: it takes these without --wait)."""
    func = click.option(
        "--timeout",
        type=click.FloatRange(min=1),
        default=None,
        metavar="S",
        help="Give up on a rollout (exit 1) after S seconds (default 600). apply, rollback and promote"
        " take it only with --wait and leave the release applied; release rolls it back.",
    )(func)
    return click.option(
        "--force", is_flag=True, default=False, help="Deploy even when a preflight check fails."
    )(func)


def wait_options(func: Any) -> Any:
    func = force_timeout_options(func)
    return click.option(
        "--wait",
        is_flag=True,
        default=False,
        help="Follow the rollout until every worker runs the new release.",
    )(func)


@click.command()
@endpoint_options
@image_options
@wait_options
@cli_command
def apply(
    ctx: Context,
    config_path: str,
    environment: str | None,
    image: str | None,
    allow_mutable_tag: bool,
    ephemeral: str | None,
    target: str,
    force: bool,
    wait: bool,
    timeout: float | None,
) -> ApplyResult:
    """Create or update the endpoint so that it matches the config and image.

    Shows the plan (with preflight and cost) and applies it: a create, or a PATCH of the
    fields that differ, and the resources the plan lists (missing secrets, registry
    credential, volumes); nothing else: a stale secret is rotated only by `rpdeploy
    secrets sync`. Nothing when nothing differs (zero write calls). Refuses when
    a preflight check failed (unless --force) and when the endpoint changed since it
    was read (another deploy raced this one). Appends to build/rpdeploy/<env>/deploy.json;
    in GitHub Actions, image, digest, endpoint_id and release go to $GITHUB_OUTPUT.

    \b
    Examples:
      rpdeploy apply --env staging --wait
      rpdeploy apply --target local --wait --timeout 120
      rpdeploy apply --ephemeral pr-42        # <project>-pr-42, for a pull request

    --wait is done when no worker runs an older version and min(workers.min,
    workers.max) workers of the new one are ready; an unhealthy worker ends it (exit 1).

    Exit codes: 0 applied (or nothing to do), 1 preflight failed, endpoint changed
    meanwhile, or --wait saw a worker fail or timed out, 2 bad usage or config, 3 RunPod API or registry
    unreachable.
    """
    limit = wait_timeout(wait, timeout)
    environ, loaded, ref = deploy_inputs(config_path, environment, target, image, allow_mutable_tag)
    return deploy(ctx, loaded, environ, ref, ephemeral=ephemeral, force=force, wait=wait, timeout=limit)
