"""Output plumbing shared by every command.

Every command returns a typed result object; this module turns it into either
human text (stdout, rich) or one JSON object (stdout), while progress and logs go
to stderr. Errors from `deploy.errors` are caught here, once, and become one line
plus the exit code their type names.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, TypeVar

import click
from rich.console import Console

from deploy.errors import ExitCode, RpdeployError

#: Bumped when the shape of any JSON result changes incompatibly (pipx's PIPX_RESULT_VERSION).
RESULT_VERSION = 1


class OutputFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class Result(Protocol):
    """What a command hands back: data for JSON, a rendering for humans, an exit code."""

    @property
    def exit_code(self) -> ExitCode: ...

    def to_json(self) -> dict[str, Any]: ...

    def print_text(self, console: Console) -> None: ...


@dataclass(frozen=True)
class Context:
    """Per-invocation settings every command receives."""

    output: OutputFormat = OutputFormat.TEXT
    debug: bool = False
    #: Progress and log lines; never the result.
    err: Console = field(default_factory=lambda: Console(stderr=True, highlight=False))
    out: Console = field(default_factory=lambda: Console(highlight=False, soft_wrap=True))

    @property
    def json(self) -> bool:
        return self.output is OutputFormat.JSON

    def log(self, message: str) -> None:
        """A progress line on stderr (off stdout, so JSON output stays parseable).

        Never wrapped: CI logs are read by grep, not at 80 columns.
        """
        self.err.print(message, markup=False, highlight=False, soft_wrap=True)


F = TypeVar("F", bound=Callable[..., Any])


def common_options(func: F) -> F:
    """`--output` and `--debug`, which every command takes."""
    func = click.option(
        "--debug",
        is_flag=True,
        default=False,
        help="Show a Python traceback for errors (for bug reports).",
    )(func)
    return click.option(
        "--output",
        "-o",
        "output",
        type=click.Choice([f.value for f in OutputFormat]),
        default=OutputFormat.TEXT.value,
        show_default=True,
        help="text for people; json prints one JSON object on stdout (logs stay on stderr).",
    )(func)


def make_context(output: str, debug: bool) -> Context:
    return Context(output=OutputFormat(output), debug=debug)


def run_command(ctx: Context, command: str, body: Callable[[], Result]) -> None:
    """Run ``body``, print its result in the chosen format and exit with its code.

    This is the single place where rpdeploy errors become one line and an exit code.
    """
    try:
        result = body()
    except RpdeployError as exc:
        if ctx.debug:
            ctx.err.print_exception()
        _print_error(ctx, command, exc)
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        ctx.err.print("interrupted")
        sys.exit(int(ExitCode.INTERRUPTED))
    if ctx.json:
        payload = {"version": RESULT_VERSION, "command": command, "ok": result.exit_code == ExitCode.OK}
        payload.update(result.to_json())
        sys.stdout.write(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    else:
        result.print_text(ctx.out)
    sys.stdout.flush()
    sys.exit(int(result.exit_code))


def _print_error(ctx: Context, command: str, exc: RpdeployError) -> None:
    lines = str(exc).splitlines() or [type(exc).__name__]
    for line in lines:
        ctx.err.print(f"error: {line}", markup=False, highlight=False, soft_wrap=True)
    if exc.hint:
        ctx.err.print(f"hint: {exc.hint}", markup=False, highlight=False, soft_wrap=True)
    if ctx.json:
        payload = {
            "version": RESULT_VERSION,
            "command": command,
            "ok": False,
            "error": {"type": type(exc).__name__, "message": str(exc), "exit_code": int(exc.exit_code)},
        }
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
