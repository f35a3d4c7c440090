"""Error types and named exit codes.

Every failure rpdeploy knows how to explain is one of these types. They are raised
deep inside the library and caught exactly once, at the CLI edge
(`deploy.cli.output`), where they become one line on stderr and the exit code
that the type names; anything else that reaches the edge is a bug and becomes one
``internal error: ...`` line and exit code 70. Nothing else in the package prints errors.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented process exit codes (README, "Exit codes")."""

    OK = 0
    #: A check, validation, budget or build failed: the input was fine, the result is not.
    FAILED = 1
    #: Bad usage or bad configuration: fix the command line or rpdeploy.yaml.
    USAGE = 2
    #: An external system (Docker engine, registry, RunPod API) failed or is unreachable, or the
    #: local disk refused a read or write (full, read-only, permission): a resource, not the input.
    UNAVAILABLE = 3
    #: A bug in rpdeploy: an exception no error type describes (sysexits.h EX_SOFTWARE).
    INTERNAL = 70
    #: Interrupted by the user (Ctrl-C).
    INTERRUPTED = 130


class RpdeployError(Exception):
    """Base for every error rpdeploy reports as one line plus an exit code."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message

    def lines(self) -> list[str]:
        """The message as printed: one entry per output line (the CLI prefixes each with ``error:``)."""
        return self.message.split("\n") if self.message else [type(self).__name__]


class UsageError(RpdeployError):
    """A command-line argument is wrong."""

    exit_code = ExitCode.USAGE


class ConfigError(RpdeployError):
    """rpdeploy.yaml is missing, unreadable or invalid.

    ``problems`` holds one line per problem, each already prefixed with
    ``file:line:`` so that editors and CI annotations can jump to it.
    """

    exit_code = ExitCode.USAGE

    def __init__(self, problems: list[str] | str, *, hint: str | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems), hint=hint)

    def lines(self) -> list[str]:
        """One line per problem: a newline inside a problem is shown escaped, never as a new line."""
        return self.problems or [type(self).__name__]


class RenderError(RpdeployError):
    """A value cannot be rendered safely, or a template is broken."""

    exit_code = ExitCode.USAGE


class OutsideProject(RpdeployError):
    """A path to read or write resolves outside the project (a symlink leading out)."""

    exit_code = ExitCode.USAGE


class FileWriteError(RpdeployError):
    """The disk refused a write or read (ENOSPC, EACCES, EROFS…); nothing half-written is left."""

    exit_code = ExitCode.UNAVAILABLE


class BuildError(RpdeployError):
    """`docker build` failed."""

    exit_code = ExitCode.FAILED


class BudgetExceeded(RpdeployError):
    """The image is larger than `image.max_compressed_mb`."""

    exit_code = ExitCode.FAILED


class EngineError(RpdeployError):
    """The Docker engine cannot be reached or refused a request."""

    exit_code = ExitCode.UNAVAILABLE


class RegistryError(RpdeployError):
    """The registry is down, refused a push or returned something unexpected."""

    exit_code = ExitCode.UNAVAILABLE


class ApiError(RpdeployError):
    """The RunPod API (or the emulator) answered with an error or garbage."""

    exit_code = ExitCode.UNAVAILABLE

    def __init__(self, message: str, *, status: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class RequestInvalid(RpdeployError):
    """rpdeploy built a REST v2 request body that RunPod's official schema refuses: a bug in
    rpdeploy, caught before anything is sent (so it never reaches RunPod)."""

    exit_code = ExitCode.INTERNAL


class EmulatorError(RpdeployError):
    """The local emulator could not be started, stopped or reached."""

    exit_code = ExitCode.UNAVAILABLE
