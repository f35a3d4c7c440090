"""`rpdeploy config`: validate and show the declarative config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click
import yaml
from rich.console import Console
from rich.syntax import Syntax

from deploy.cli.options import config_option, env_option
from deploy.cli.output import common_options, make_context, run_command
from deploy.config import LoadedConfig, load_config, validate_all
from deploy.config.schema import Config
from deploy.errors import ExitCode
from deploy.render.endpoint_spec import MASK


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
@common_options
def validate(config_path: str, output: str, debug: bool) -> None:
    """Check the config and every environment; print one line per problem.

    \b
    Examples:
      rpdeploy config validate
      rpdeploy config validate -c path/to/rpdeploy.yaml --output json

    Exit codes: 0 valid, 2 invalid or unreadable (one `file:line: path: problem`
    line per problem on stderr). Warnings (`warning: file:line: path: message`, e.g. a
    GPU pool the vendored catalog does not know) go to stderr and do not change the code.
    """
    ctx = make_context(output, debug)

    def body() -> ValidateResult:
        loaded = validate_all(config_path)
        for line in dict.fromkeys(w for item in loaded for w in item.warnings):
            ctx.log(f"warning: {line}")
        return ValidateResult(
            path=config_path,
            environments=[item.environment for item in loaded if item.environment],
            endpoints={
                item.environment or "(base)": item.config.endpoint_name(item.environment) for item in loaded
            },
        )

    run_command(ctx, "config validate", body)


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


def resolved_view(loaded: LoadedConfig) -> dict[str, Any]:
    """The resolved config as data, with every secret value masked.

    The config never holds secret values itself; what is masked here are the
    process-environment sources that `${VAR}` interpolation could have read for a
    secret's variable name, and any endpoint env value that names a secret.
    """
    config: Config = loaded.config
    data = config.model_dump(mode="json", by_alias=True, exclude={"environments"})
    data["environments"] = sorted(config.environments)
    data["endpoint"]["name"] = config.endpoint_name(loaded.environment)
    secret_names = {s.name for s in config.secrets}
    data["endpoint"]["env"] = {
        k: (MASK if k in secret_names else v) for k, v in data["endpoint"]["env"].items()
    }
    data["secrets"] = [
        {
            "name": s.name,
            "mode": s.mode,
            "secret": config.secret_name(s) if s.mode == "runpod-secret" else None,
            "from_env": s.from_env or s.name,
            "value": MASK,
        }
        for s in config.secrets
    ]
    return data


@config.command("show")
@config_option
@env_option
@common_options
def show(config_path: str, environment: str | None, output: str, debug: bool) -> None:
    """Print the resolved config (interpolated, environment applied, secrets masked as ***).

    \b
    Examples:
      rpdeploy config show --env staging
      rpdeploy config show --env production --output json | jq .config.endpoint
    """
    ctx = make_context(output, debug)
    run_command(
        ctx,
        "config show",
        lambda: ShowResult(environment, resolved_view(load_config(config_path, environment))),
    )
