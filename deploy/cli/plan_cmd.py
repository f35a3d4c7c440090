"""`rpdeploy plan`: what `apply` would change on the endpoint, its preflight and its cost."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click
from rich.console import Console

from deploy.cli.deploy_options import connect, deploy_inputs, endpoint_options, image_options
from deploy.cli.output import Context, cli_command
from deploy.config import LoadedConfig
from deploy.errors import ExitCode
from deploy.release import desired
from deploy.release.apply import prepare
from deploy.release.checks import failed
from deploy.release.plan import Plan
from deploy.release.summary import plan_lines


@dataclass(frozen=True)
class PlanResult:
    plan: Plan
    loaded: LoadedConfig
    expect_no_changes: bool = False

    @property
    def exit_code(self) -> ExitCode:
        """1 when a preflight check failed (so `plan` gates CI) or, with --expect-no-changes, on changes."""
        if failed(self.plan.preflight) or (self.expect_no_changes and self.plan.changes):
            return ExitCode.FAILED
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return self.plan.to_json(self.loaded)

    def print_text(self, console: Console) -> None:
        print_plan(console, self.plan, self.loaded)


def print_plan(console: Console, plan: Plan, loaded: LoadedConfig) -> None:
    """The plan as people read it (shared with `apply`); every line through the masker."""
    for line in plan_lines(plan, loaded):
        console.print(line)


@click.command()
@endpoint_options
@image_options
@click.option(
    "--expect-no-changes", is_flag=True, default=False, help="Exit 1 when the plan has changes (drift check)."
)
@cli_command
def plan(
    ctx: Context,
    expect_no_changes: bool,
    config_path: str,
    environment: str | None,
    ephemeral: str | None,
    target: str,
    image: str | None,
    allow_mutable_tag: bool,
) -> PlanResult:
    """Show what `rpdeploy apply` would change, with the preflight and the cost. Writes nothing.

    Compares the config (defaults filled in) with the endpoint found by name: a field
    the config leaves out is no change, one it stops setting goes back to its default.
    Changes are RunPod release-diff fields (old -> new); "release" marks those that roll
    workers. Secret values show as ***.

    \b
    Examples:
      rpdeploy plan --env staging
      rpdeploy plan --target local
      rpdeploy plan --env production --expect-no-changes   # CI drift check

    Exit codes: 0 planned, 1 a preflight check failed (the plan is still printed) or
    changes found with --expect-no-changes, 2 bad usage or
    config (no pushed image, a mutable tag), 3 RunPod API or registry unreachable.
    """
    environ, loaded, ref = deploy_inputs(config_path, environment, target, image, allow_mutable_tag)
    where = desired.target(loaded, ephemeral)
    with connect(environ) as api:
        return PlanResult(prepare(api, loaded, where, ref, environ), loaded, expect_no_changes)
