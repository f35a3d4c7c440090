"""`rpdeploy destroy`: delete the environment's (or an ephemeral) endpoint."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import click
from rich.console import Console

from deploy.cli.deploy_options import connect, endpoint_options, environ_for, exclusive
from deploy.cli.output import Context, cli_command
from deploy.config import load_config
from deploy.errors import ExitCode, UsageError
from deploy.release import desired, records


@dataclass(frozen=True)
class DestroyResult:
    name: str
    endpoint_id: str | None
    exit_code: ExitCode = ExitCode.OK

    @property
    def deleted(self) -> bool:
        return self.endpoint_id is not None

    def to_json(self) -> dict[str, Any]:
        return {"endpoint": {"name": self.name, "id": self.endpoint_id}, "deleted": self.deleted}

    def print_text(self, console: Console) -> None:
        if self.deleted:
            console.print(f"deleted: {self.name} ({self.endpoint_id})")
        else:
            console.print(f"nothing to delete: no endpoint named {self.name}")


def _confirm(ctx: Context, name: str, endpoint_id: str) -> None:
    """Ask on a terminal; a script (JSON output, no terminal) must say --yes."""
    if ctx.json or not sys.stdin.isatty():
        raise UsageError(f"destroy deletes endpoint {name} ({endpoint_id}): pass --yes to confirm")
    if not click.confirm(f"Delete endpoint {name} ({endpoint_id})?", default=False, err=True):
        raise UsageError(f"endpoint {name} kept (not confirmed)")


@click.command()
@endpoint_options
@click.option(
    "--yes", is_flag=True, default=False, help="Do not ask (needed without a terminal and with -o json)."
)
@cli_command
def destroy(
    ctx: Context, config_path: str, environment: str | None, ephemeral: str | None, target: str, yes: bool
) -> DestroyResult:
    """Delete the endpoint of --env (or <project>-NAME for --ephemeral NAME). Asks unless --yes.

    Deleting an endpoint that does not exist is not an error (nothing to do).

    \b
    Examples:
      rpdeploy destroy --ephemeral pr-42 --yes     # when the pull request closes
      rpdeploy destroy --env staging

    Exit codes: 0 deleted (or nothing to delete), 2 bad usage (not confirmed; --yes
    missing without a terminal), 3 RunPod API unreachable.
    """
    exclusive(env=environment, ephemeral=ephemeral)
    environ = environ_for(target)
    loaded = load_config(config_path, environment)
    where = desired.target(loaded, ephemeral)
    with connect(environ) as api:
        found = api.find_endpoint(where.name)
        if found is None:
            return DestroyResult(where.name, None)
        endpoint_id = str(found["id"])
        if not yes:
            _confirm(ctx, where.name, endpoint_id)
        api.delete_endpoint(endpoint_id)
    records.append(
        loaded, where.record_env, {"time": records.now(), "endpoint": where.name, "action": "destroy"}
    )
    return DestroyResult(where.name, endpoint_id)
