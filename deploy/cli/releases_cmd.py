"""`rpdeploy releases`: the endpoint's release history (version, time, image, what changed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click
from rich.console import Console

from deploy.cli.deploy_options import connect, endpoint_options, environ_for, exclusive
from deploy.cli.output import Context, cli_command
from deploy.config import LoadedConfig, load_config
from deploy.errors import ExitCode
from deploy.release import desired, history, records


@dataclass(frozen=True)
class ReleasesResult:
    name: str
    endpoint_id: str
    version: int | None
    rollout: dict[str, Any]
    rows: list[dict[str, Any]]
    loaded: LoadedConfig
    exit_code: ExitCode = ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        data = {
            "endpoint": {"name": self.name, "id": self.endpoint_id},
            "version": self.version,
            "rollout": self.rollout,
            "releases": self.rows,
        }
        masked: dict[str, Any] = self.loaded.masker.data(data)
        return masked

    def print_text(self, console: Console) -> None:
        rollout = self.rollout
        on, total = rollout.get("workersOnLatest"), rollout.get("workersTotal")
        console.print(
            f"endpoint: {self.name} ({self.endpoint_id}), v{self.version}; "
            f"rollout {rollout.get('percentOnLatest')}% ({on}/{total} workers)"
        )
        for row in self.rows:
            changed = ", ".join(row["changed"]) or "-"
            image = row["image"] or "?"
            line = f"  v{row['version']}  {row['time']}  {image}  workers: {row['workers']}  {changed}"
            console.print(self.loaded.masker.text(line))


@click.command()
@endpoint_options
@cli_command
def releases(
    ctx: Context, config_path: str, environment: str | None, ephemeral: str | None, target: str
) -> ReleasesResult:
    """List the endpoint's releases, newest first: version, time, image, workers on it, fields changed.

    \b
    Examples:
      rpdeploy releases --env staging
      rpdeploy releases --target local -o json

    Exit codes: 0 listed, 2 bad usage or config (or no such endpoint), 3 RunPod API unreachable.
    """
    exclusive(env=environment, ephemeral=ephemeral)
    environ = environ_for(target)
    loaded = load_config(config_path, environment)
    where = desired.target(loaded, ephemeral)
    with connect(environ) as api:
        endpoint = history.existing(api, where)
        doc = api.releases(str(endpoint["id"]))
    found = history.rows(doc, records.read_history(loaded, where.record_env))
    return ReleasesResult(
        where.name, str(endpoint["id"]), doc.get("endpointVersion"), doc["rollout"], found, loaded
    )
