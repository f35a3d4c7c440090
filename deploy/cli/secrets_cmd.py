"""`rpdeploy secrets sync`: create and rotate the RunPod secrets the config references."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click
from rich.console import Console

from deploy.api import RunPodApi
from deploy.cli.options import config_option, env_option
from deploy.cli.output import Context, cli_command
from deploy.cli.target import target_environ, target_option
from deploy.config import load_config
from deploy.errors import ExitCode
from deploy.release import secrets_sync
from deploy.release.secrets_sync import SecretsSyncResult

#: How each action reads in text output.
_VERBS = {"create": "created", "rotate": "rotated", "none": "unchanged"}


@dataclass(frozen=True)
class SyncCommandResult:
    result: SecretsSyncResult
    exit_code: ExitCode = ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return self.result.to_json()

    def print_text(self, console: Console) -> None:
        for item in self.result.secrets:
            console.print(f"{_VERBS[item.action]:9} {item.secret} ({item.name})", markup=False)
        if not self.result.secrets:
            console.print("no runpod-secret in the config: nothing to sync", markup=False)
        for warning in self.result.warnings:
            console.print(f"warning: {warning}", markup=False)


@click.group()
def secrets() -> None:
    """Manage the RunPod secrets the config references."""


@secrets.command("sync")
@config_option
@env_option
@click.option(
    "--rotate", is_flag=True, default=False, help="Write every value, changed or not (a forced rotation)."
)
@target_option
@cli_command
def sync(
    ctx: Context, config_path: str, environment: str | None, rotate: bool, target: str
) -> SyncCommandResult:
    """Create each missing RunPod secret and rotate each whose value changed.

    Values come from the process environment: each `secrets:` entry with mode
    runpod-secret reads `from_env` (default: its `name`); the RunPod secret is named by
    `secret` (default: <project>_<name>). RunPod never returns a value, so each write keeps
    a salted hash of it in the secret's description (rpdeploy:v1:sha256:<salt>:<hex>),
    and the next sync rotates (PATCH) only when the value differs; --rotate writes all.
    Running workers keep the old value until they restart (a new release, or scaling
    to zero; there is no --recycle yet: the deploy engine exposes no roll-only release). Inline
    secrets are not synced: their values sit in the endpoint env, readable by anyone with
    access to the account (a warning says so). Values never appear in any output.

    API: RUNPOD_API_KEY, and RUNPOD_API_URL (default https://api.runpod.io); with
    --target local, the running emulator (what `rpdeploy emulator env` exports).

    \b
    Examples:
      rpdeploy secrets sync --env staging
      rpdeploy secrets sync --rotate --output json
      rpdeploy secrets sync --target local

    Exit codes: 0 synced, 2 bad config or a variable unset (all named, before any API
    call), 3 RunPod API (or the local emulator) unreachable or refused.
    """
    loaded = load_config(config_path, environment)
    environ = target_environ(target)  # the process environment, pointed at the target's API
    # Every secret variable is checked before the API is even set up: nothing half-done.
    secrets_sync.require_values(loaded, environ)
    with RunPodApi.from_environ(environ) as api:
        return SyncCommandResult(secrets_sync.sync(api, loaded, environ, rotate=rotate))
