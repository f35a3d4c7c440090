"""The `rpdeploy` command group.

Sub-commands are imported lazily (BentoML's pattern) so that `rpdeploy --help`
and quick commands do not pay for docker, fastapi or the runpod SDK imports.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from deploy import __version__

#: command name -> "module:attribute". One module per noun.
COMMANDS: dict[str, str] = {
    "config": "deploy.cli.config_cmd:config",
    "emulator": "deploy.cli.emulator_cmd:emulator",
    "render": "deploy.cli.render_cmd:render",
    "build": "deploy.cli.build_cmd:build",
    "push": "deploy.cli.push_cmd:push",
    "image": "deploy.cli.image_cmd:image",
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def __init__(self, *args: Any, lazy: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self._lazy:
            module_name, attr = self._lazy[cmd_name].split(":")
            command = getattr(importlib.import_module(module_name), attr)
            if not isinstance(command, click.Command):  # pragma: no cover - programming error
                raise TypeError(f"{self._lazy[cmd_name]} is not a click command")
            return command
        return super().get_command(ctx, cmd_name)


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="rpdeploy")
def cli() -> None:
    """Take a RunPod serverless worker from source to a validated endpoint.

    \b
    Examples:
      rpdeploy config validate            # check rpdeploy.yaml
      rpdeploy render --check             # are committed rendered files current?
      rpdeploy render --env staging --out build/
    """


def main() -> None:
    cli(prog_name="rpdeploy")
