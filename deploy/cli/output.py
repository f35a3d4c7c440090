"""Output plumbing shared by every command: the one place rpdeploy prints.

Every command returns a typed result object; this module turns it into either
human text (stdout, rich) or one JSON envelope (stdout), while progress and logs go
to stderr. Errors are caught here, once: `deploy.errors` types become one line plus
the exit code their type names; anything else is a bug and becomes one
``internal error: ...`` line and exit code 70.

Every string that reaches the terminal passes through `escape` on its way out (the
consoles below apply it to every rendered segment), so a command cannot forget to
escape a user-supplied key, value, path or diff line.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NoReturn, Protocol, TypeVar

import click
from rich.console import Console, ConsoleOptions, RenderableType
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from deploy.errors import ExitCode, RpdeployError
from deploy.runpod.text import escape_char as _escape_char

#: The JSON envelope's version; bumped when its shape changes incompatibly (pipx's result version).
RESULT_VERSION = 2

#: The hint every internal error carries: what the user can do about a bug in rpdeploy.
INTERNAL_HINT = "run with --debug and report it"

#: Unicode categories never printed raw: controls (C0, DEL, C1 incl. CSI/OSC), format
#: characters (bidi overrides, zero-width), lone surrogates, line/paragraph separators.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
#: Layout characters that are safe to print where a text may span lines (diffs, logs).
_LAYOUT = frozenset("\n\t")


def escape(text: str, *, newlines: bool = True) -> str:
    """``text`` with every character that could act on a terminal shown as a Python-style escape.

    Escapes C0/C1 controls (ESC, BEL, NUL, CR, CSI, OSC...), DEL, Unicode format
    characters (bidi overrides, zero-width joiners), lone surrogates and the Unicode
    line separators. Tab is kept; newline is kept when ``newlines`` is true (a diff or
    a log spans lines) and escaped otherwise (one error line must stay one line).
    Backslashes are kept as they are, so the function is idempotent.
    """
    keep = _LAYOUT if newlines else frozenset("\t")
    if text.isprintable() and "\t" not in text:
        return text  # the common case: nothing to look at
    return "".join(
        _escape_char(ch) if ch not in keep and unicodedata.category(ch) in _UNSAFE_CATEGORIES else ch
        for ch in text
    )


class SafeConsole(Console):
    """A rich console that prints text literally: no markup, no emoji, no highlighting, no controls.

    Markup and emoji codes are turned off for every string however it is printed
    (``[red]`` and ``:x:`` stay as typed), and every text segment is escaped as the
    last step of rendering, so tables, syntax views, tracebacks and progress lines are
    covered too. Rich's own control segments (cursor moves of a live progress bar) pass.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(markup=False, emoji=False, highlight=False, **kwargs)

    def render_str(
        self,
        text: str,
        *,
        style: str | Style = "",
        justify: Any = None,
        overflow: Any = None,
        emoji: bool | None = None,
        markup: bool | None = None,
        highlight: bool | None = None,
        highlighter: Any = None,
    ) -> Text:
        # Whatever a caller asks for, user strings are never parsed for markup or emoji.
        # Escaped before rich sees them: rich silently drops some controls (BEL, CR).
        return super().render_str(
            escape(text),
            style=style,
            justify=justify,
            overflow=overflow,
            emoji=False,
            markup=False,
            highlight=False,
            highlighter=None,
        )

    def on_broken_pipe(self) -> None:
        # Rich would exit 1 here; the output edge decides instead (`_print_result`).
        self.quiet = True
        raise BrokenPipeError

    def render(self, renderable: RenderableType, options: ConsoleOptions | None = None) -> Iterable[Segment]:
        for segment in super().render(renderable, options):
            if segment.control or segment.text.isprintable():
                yield segment
            else:
                yield Segment(escape(segment.text), segment.style, segment.control)


class OutputFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class Status(StrEnum):
    """The envelope's ``status``: how the command ended.

    ok: did what was asked. failed: ran, and its result is a failure (drift found, not
    running). partial: did some of what was asked (a result says so itself). error: an
    error stopped it; ``error`` says which, ``data`` is empty.
    """

    OK = "ok"
    FAILED = "failed"
    PARTIAL = "partial"
    ERROR = "error"


class Result(Protocol):
    """What a command hands back: data for JSON, a rendering for humans, an exit code.

    A result may also carry ``status`` (a `Status`); without it the status follows the
    exit code (0 is ok, anything else failed).
    """

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
    err: Console = field(default_factory=lambda: SafeConsole(stderr=True))
    out: Console = field(default_factory=lambda: SafeConsole(soft_wrap=True))

    @property
    def json(self) -> bool:
        return self.output is OutputFormat.JSON

    def log(self, message: str) -> None:
        """A progress line on stderr (off stdout, so JSON output stays parseable).

        Never wrapped: CI logs are read by grep, not at 80 columns.
        """
        self.err.print(message, soft_wrap=True)


F = TypeVar("F", bound=Callable[..., Any])


#: Help of the two options every command takes, before or after the command name.
OUTPUT_HELP = (
    "text (default) for people; json prints one JSON envelope on stdout (logs stay on "
    "stderr). Accepted before or after the command name."
)
DEBUG_HELP = (
    "Show a Python traceback for errors (for bug reports). Accepted before or after the command name."
)


def output_option(*, default: str | None) -> Callable[[F], F]:
    """``--output/-o``: the root group's (default text) and every command's (default: the root's)."""
    return click.option(
        "--output",
        "-o",
        "output",
        type=click.Choice([f.value for f in OutputFormat]),
        default=default,
        help=OUTPUT_HELP,
    )


def debug_option(func: F) -> F:
    return click.option("--debug", is_flag=True, default=False, help=DEBUG_HELP)(func)


def common_options(func: F) -> F:
    """`--output` and `--debug`, which every command takes (and the root group, see `make_context`)."""
    # No default of its own: an unset --output falls back to the one given before the command.
    return output_option(default=None)(debug_option(func))


def make_context(output: str | None, debug: bool) -> Context:
    """The command's context: its own ``--output``/``--debug``, else those given to ``rpdeploy``.

    ``rpdeploy -o json build`` and ``rpdeploy build -o json`` mean the same; the root
    group keeps its values in click's ``ctx.obj`` (a `RootOptions`), which every
    sub-command's context inherits.
    """
    root = click.get_current_context(silent=True)
    given = root.find_object(RootOptions) if root is not None else None
    inherited = given or RootOptions()
    return Context(output=OutputFormat(output or inherited.output), debug=debug or inherited.debug)


@dataclass(frozen=True)
class RootOptions:
    """``--output``/``--debug`` as given to the root group (``rpdeploy -o json build``)."""

    output: str = OutputFormat.TEXT.value
    debug: bool = False


def envelope(
    command: str, status: Status, data: dict[str, Any] | None = None, error: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The one JSON shape every command prints (README, "JSON output")."""
    return {
        "version": RESULT_VERSION,
        "command": command,
        "status": status.value,
        "data": data if data is not None else {},
        "error": error,
    }


def _write_json(payload: dict[str, Any]) -> None:
    # ensure_ascii: control characters and non-ASCII text leave as \\u escapes, so the
    # JSON is safe on any terminal and in any log.
    sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    sys.stdout.flush()


def result_status(result: Result) -> Status:
    declared = getattr(result, "status", None)
    if isinstance(declared, Status):
        return declared
    return Status.OK if result.exit_code == ExitCode.OK else Status.FAILED


def fail(
    ctx: Context, command: str, *, kind: str, lines: Sequence[str], hint: str | None, code: ExitCode
) -> NoReturn:
    """Report an error: ``error:`` lines (and a ``hint:``) on stderr, the envelope on stdout with -o json."""
    for line in lines or [kind]:
        ctx.err.print(f"error: {escape(line, newlines=False)}", soft_wrap=True)
    if hint:
        ctx.err.print(f"hint: {escape(hint, newlines=False)}", soft_wrap=True)
    if ctx.json:
        error = {"type": kind, "message": "\n".join(lines) or kind, "hint": hint}
        _write_json(envelope(command, Status.ERROR, error=error))
    sys.exit(int(code))


def fail_error(ctx: Context, command: str, exc: RpdeployError) -> NoReturn:
    """One of rpdeploy's own errors: its lines, its hint, the exit code its type names."""
    if ctx.debug:
        ctx.err.print_exception()
    fail(ctx, command, kind=type(exc).__name__, lines=exc.lines(), hint=exc.hint, code=exc.exit_code)


def fail_internal(ctx: Context, command: str, exc: BaseException) -> NoReturn:
    """A bug: one ``internal error:`` line, exit 70, and (with --debug) the traceback."""
    if ctx.debug:
        ctx.err.print_exception()
    message = f"{type(exc).__name__}: {exc}"
    ctx.err.print(f"internal error: {escape(message, newlines=False)}; {INTERNAL_HINT}", soft_wrap=True)
    if ctx.json:
        error = {"type": "InternalError", "message": message, "hint": INTERNAL_HINT}
        _write_json(envelope(command, Status.ERROR, error=error))
    sys.exit(int(ExitCode.INTERNAL))


def run_command(ctx: Context, command: str, body: Callable[[], Result]) -> NoReturn:
    """Run ``body``, print its result in the chosen format and exit with its code.

    This is the single place where errors become lines and exit codes: rpdeploy's own
    error types as their type says, Ctrl-C as 130, anything else as an internal error (70).
    """
    try:
        result = body()
        _print_result(ctx, command, result)
    except RpdeployError as exc:
        fail_error(ctx, command, exc)
    except KeyboardInterrupt:
        fail(ctx, command, kind="Interrupted", lines=["interrupted"], hint=None, code=ExitCode.INTERRUPTED)
    except Exception as exc:  # the catch-all at the edge: every bug still ends in one line
        fail_internal(ctx, command, exc)
    sys.exit(int(result.exit_code))


def _print_result(ctx: Context, command: str, result: Result) -> None:
    try:
        if ctx.json:
            _write_json(envelope(command, result_status(result), result.to_json()))
        else:
            result.print_text(ctx.out)
            sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`rpdeploy config show | head -3`): like cat or grep, stop
        # quietly with the command's own exit code. Pointing stdout at /dev/null keeps
        # Python's flush at exit from failing again (Python docs, "Note on SIGPIPE").
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def command_name() -> str:
    """The running sub-command as users type it (``config validate``), from click's context."""
    path = click.get_current_context().command_path.split()
    return " ".join(path[1:]) or path[0]


def cli_command(func: Callable[..., Result]) -> Callable[..., None]:
    """Wire a command body to the output edge (BentoML's and Truss's central command wrapper).

    The decorated function takes the `Context` first, then its click parameters, and
    returns a `Result`; this adds ``--output``/``--debug``, builds the context, runs
    the body through `run_command` and exits. Put it directly above the function,
    below ``@click.command()`` and the option decorators.
    """

    @functools.wraps(func)
    def wrapper(*, output: str | None, debug: bool, **params: Any) -> None:
        ctx = make_context(output, debug)
        run_command(ctx, command_name(), lambda: func(ctx, **params))

    return common_options(wrapper)
