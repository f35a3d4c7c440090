"""The `rpdeploy` command group.

Sub-commands are imported lazily (BentoML's pattern) so that `rpdeploy --help`
and quick commands do not pay for docker, fastapi or the runpod SDK imports.
"""

from __future__ import annotations

import importlib
import itertools
import sys
from collections.abc import Sequence
from typing import Any

import click

from deploy import __version__
from deploy.cli.output import (
    Context,
    OutputFormat,
    RootOptions,
    debug_option,
    fail,
    fail_error,
    fail_internal,
    output_option,
)
from deploy.errors import ExitCode, RpdeployError

#: command name -> "module:attribute". One module per noun.
COMMANDS: dict[str, str] = {
    "config": "deploy.cli.config_cmd:config",
    "emulator": "deploy.cli.emulator_cmd:emulator",
    "render": "deploy.cli.render_cmd:render",
    "build": "deploy.cli.build_cmd:build",
    "push": "deploy.cli.push_cmd:push",
    "env": "deploy.cli.env_cmd:env_group",
    "image": "deploy.cli.image_cmd:image",
    "plan": "deploy.cli.plan_cmd:plan",
    "apply": "deploy.cli.apply_cmd:apply",
    "releases": "deploy.cli.releases_cmd:releases",
    "rollback": "deploy.cli.rollback_cmd:rollback",
    "promote": "deploy.cli.promote_cmd:promote",
    "destroy": "deploy.cli.destroy_cmd:destroy",
    "secrets": "deploy.cli.secrets_cmd:secrets",
    "validate": "deploy.cli.validate_cmd:validate_command",
    "release": "deploy.cli.release_cmd:release",
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


def _output_in(args: Sequence[str]) -> OutputFormat:
    """The --output a command line asks for, read before (or without) click's parsing.

    Needed when parsing itself fails: a script that asked for JSON still gets one object.
    """
    for index, arg in enumerate(args):
        if arg in ("-o", "--output") and index + 1 < len(args):
            value = args[index + 1]
        elif arg.startswith("--output="):
            value = arg.partition("=")[2]
        elif arg.startswith("-o") and len(arg) > 2 and not arg.startswith("--"):
            value = arg[2:]
        else:
            continue
        if value == OutputFormat.JSON.value:
            return OutputFormat.JSON
    return OutputFormat.TEXT


def _after_root_options(args: Sequence[str]) -> list[str]:
    """``args`` without the root group's leading ``--output``/``--debug`` (``-o json build`` -> ``build``)."""
    rest = list(args)
    while rest:
        if rest[0] == "--debug" or (rest[0].startswith(("--output=", "-o")) and rest[0] != "-o"):
            rest = rest[1:]
        elif rest[0] in ("-o", "--output"):
            rest = rest[2:]
        else:
            break
    return rest


class RpdeployGroup(LazyGroup):
    """The root group: click's own errors and anything raised outside a command end at our edge too.

    Click would print usage errors itself (raw user strings, no JSON) and let other
    exceptions out as tracebacks; here both go through `deploy.cli.output`, like
    every command's errors.
    """

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        ctx = Context(output=_output_in(argv), debug="--debug" in argv)
        # Named without importing anything (the import may be what fails): `emulator start`.
        words = _after_root_options(argv)
        typed = " ".join(itertools.takewhile(lambda arg: not arg.startswith("-"), words[:2]))
        named = typed if words and words[0] in self._lazy else "rpdeploy"
        try:
            code = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:
            # `rpdeploy config` alone: the help text is ours, not user input; click's behaviour.
            exc.show()
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            # Only usage errors know the (sub)command they are about.
            where: click.Context | None = getattr(exc, "ctx", None)
            command = (" ".join(where.command_path.split()[1:]) if where else named) or "rpdeploy"
            usage = command if command == "rpdeploy" else f"rpdeploy {command}"
            fail(
                ctx,
                command,
                kind="UsageError",
                lines=[exc.format_message()],
                hint=f"run `{usage} --help`",
                code=ExitCode.USAGE,
            )
        except click.Abort:
            fail(
                ctx,
                named,
                kind="Interrupted",
                lines=["interrupted"],
                hint=None,
                code=ExitCode.INTERRUPTED,
            )
        except RpdeployError as exc:  # e.g. a sub-command whose optional dependencies are missing
            fail_error(ctx, named, exc)
        except Exception as exc:  # e.g. a sub-command that cannot be imported: still one line
            fail_internal(ctx, named, exc)
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


@click.group(
    cls=RpdeployGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="rpdeploy")
@output_option(default=OutputFormat.TEXT.value)
@debug_option
@click.pass_context
def cli(ctx: click.Context, output: str, debug: bool) -> None:
    """Take a RunPod serverless worker from source to a validated endpoint.

    --output and --debug work before the command name or after it.

    \b
    Examples:
      rpdeploy config validate            # check rpdeploy.yaml
      rpdeploy render --check             # are committed rendered files current?
      rpdeploy render --env staging --out build/
      rpdeploy -o json build              # same as: rpdeploy build -o json
    """
    # Sub-commands read these through click's context (`deploy.cli.output.make_context`).
    ctx.obj = RootOptions(output=output, debug=debug)


def main() -> None:
    cli(prog_name="rpdeploy")
