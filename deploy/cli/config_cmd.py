"""`rpdeploy config`: validate and show the declarative config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click
import yaml
from rich.console import Console
from rich.syntax import Syntax

from deploy.cli.options import config_option, env_option
from deploy.cli.output import Context, cli_command
from deploy.config import load_config, validate_all
from deploy.config.view import resolved_view
from deploy.errors import ExitCode
from deploy.render import render_project


@click.group()
def config() -> None:
    """Validate and inspect rpdeploy.yaml."""


@dataclass(frozen=True)
class ValidateResult:
    path: str
    environments: list[str]
    endpoints: dict[str, str]
    exit_code: ExitCode = ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "environments": self.environments, "endpoints": self.endpoints}

    def print_text(self, console: Console) -> None:
        envs = ", ".join(self.environments) or "none"
        console.print(f"{self.path}: valid (environments: {envs})", markup=False)


@config.command("validate")
@config_option
@cli_command
def validate(ctx: Context, config_path: str) -> ValidateResult:
    """Check the config and every environment; print one line per problem.

    \b
    Examples:
      rpdeploy config validate
      rpdeploy config validate -c path/to/rpdeploy.yaml --output json

    Every environment is also rendered in memory (nothing is written), so what `render` would
    refuse fails here too.

    Exit codes: 0 valid, 2 invalid or unreadable (one `file:line: path: problem`
    line per problem on stderr). Warnings (`warning: file:line: path: message`, e.g. a
    GPU pool the vendored catalog does not know) go to stderr and do not change the code.
    """
    loaded = validate_all(config_path)
    # Validate catches everything render would, by construction: every environment is rendered in
    # memory (nothing is written) with a placeholder image, so a value only render refuses (a secret
    # copied into other text, a template override that fails) fails here too.
    for item in loaded:
        image = item.config.image
        render_project(item, f"{image.registry}/{image.repository}:validate")
    for line in dict.fromkeys(w for item in loaded for w in item.warnings):
        ctx.log(f"warning: {line}")
    return ValidateResult(
        path=config_path,
        environments=[item.environment for item in loaded if item.environment],
        endpoints={
            item.environment or "(base)": item.masker.text(item.config.endpoint_name(item.environment))
            for item in loaded
        },
    )


@dataclass(frozen=True)
class ShowResult:
    environment: str | None
    resolved: dict[str, Any]
    exit_code: ExitCode = ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {"environment": self.environment, "config": self.resolved}

    def print_text(self, console: Console) -> None:
        text = yaml.safe_dump(self.resolved, sort_keys=False, allow_unicode=True)
        console.print(Syntax(text, "yaml", theme="ansi_dark", background_color="default"))


@config.command("show")
@config_option
@env_option
@cli_command
def show(ctx: Context, config_path: str, environment: str | None) -> ShowResult:
    """Print the resolved config (interpolated, environment applied, secrets masked as ***).

    \b
    Examples:
      rpdeploy config show --env staging
      rpdeploy config show --env production --output json | jq .config.endpoint
    """
    return ShowResult(environment, resolved_view(load_config(config_path, environment)))
