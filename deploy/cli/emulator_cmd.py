"""`rpdeploy emulator`: a local RunPod-compatible serverless platform that runs the real image."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from deploy import emulator as server
from deploy import files
from deploy.cli.output import Context, cli_command
from deploy.emulator import (
    API_KEY_FILE,
    DEFAULT_HOST,
    DEFAULT_PORT,
    DEFAULT_STATE,
    check_bind,
    settings_from_env,
)
from deploy.errors import EmulatorError, ExitCode, UsageError

STATE_ENV = "RPDEPLOY_EMULATOR_STATE"
KEY_ENV = "RUNPOD_API_KEY"


def default_state(environ: Mapping[str, str]) -> Path:
    """The emulator state folder when none is given: $RPDEPLOY_EMULATOR_STATE, else the default."""
    return Path(environ.get(STATE_ENV) or str(DEFAULT_STATE))


def _state_option(func: Any) -> Any:
    return click.option(
        "--state",
        "state",
        type=click.Path(file_okay=False, path_type=Path),
        default=lambda: default_state(os.environ),
        show_default=f"${STATE_ENV} or {DEFAULT_STATE}",
        help="State directory: SQLite database, API key, pid file, logs.",
    )(func)


def _cold_host_option(func: Any) -> Any:
    return click.option(
        "--cold-host",
        is_flag=True,
        default=False,
        help="Remove the endpoint's image from the engine before each worker start, so every start "
        "pulls it (a fresh RunPod host); also $RPDEPLOY_EMULATOR_COLD_HOST=true.",
    )(func)


def _bind_options(func: Any) -> Any:
    func = click.option(
        "--allow-remote", is_flag=True, default=False, help="Allow binding to a non-loopback address."
    )(func)
    func = click.option(
        "--api-key",
        default=None,
        help="API key clients must send (default: $RUNPOD_API_KEY, else a generated key in the state dir).",
    )(func)
    func = click.option("--port", type=int, default=DEFAULT_PORT, show_default=True, help="TCP port.")(func)
    return click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to bind.")(func)


def _worker_options(func: Any) -> Any:
    return click.option(
        "--tiny-os-disk",
        "tiny_os_disk_mb",
        type=click.IntRange(min=1),
        default=None,
        metavar="MB",
        help="Model RunPod's small OS disk: workers get a read-only root filesystem and a tmpfs /tmp"
        " of MB megabytes (the network volume stays at /runpod-volume).",
    )(func)


def _key_hint(state_dir: Path) -> str:
    key_file = state_dir / API_KEY_FILE
    if key_file.exists():
        return f'stored in {key_file} (eval "$(rpdeploy emulator env)" exports it)'
    return "the one given with --api-key or $RUNPOD_API_KEY when the emulator started"


@dataclass(frozen=True)
class StatusResult:
    status: server.Status
    action: str = "status"

    @property
    def exit_code(self) -> ExitCode:
        if self.action == "stop":
            return ExitCode.OK if not self.status.running else ExitCode.FAILED
        return ExitCode.OK if self.status.running else ExitCode.FAILED

    def urls(self) -> dict[str, str]:
        if not self.status.running or self.status.host is None or self.status.port is None:
            return {}
        return server.urls(self.status.host, self.status.port)

    def to_json(self) -> dict[str, Any]:
        return {
            "running": self.status.running,
            "pid": self.status.pid if self.status.running else None,
            "state_dir": str(self.status.state_dir),
            "urls": self.urls(),
            "api_key": _key_hint(self.status.state_dir),
        }

    def print_text(self, console: Console) -> None:
        st = self.status
        if not st.running:
            word = "stopped" if self.action == "stop" else "not running"
            console.print(f"emulator {word} (state {st.state_dir})", markup=False)
            return
        console.print(
            f"emulator running (pid {st.pid}) on {st.host}:{st.port}, state {st.state_dir}", markup=False
        )
        for name, value in self.urls().items():
            console.print(f"  {name}={value}", markup=False)
        console.print(f"API key: {_key_hint(st.state_dir)}", markup=False)


@dataclass(frozen=True)
class EnvResult:
    variables: dict[str, str]
    key_file: Path | None
    exit_code: ExitCode = ExitCode.OK

    def lines(self) -> list[str]:
        out = [f"export {name}={shlex.quote(value)}" for name, value in self.variables.items()]
        if self.key_file is not None:
            # The key itself is never printed: the shell reads it from the 0600 file.
            out.append(f'export RUNPOD_API_KEY="$(cat {shlex.quote(str(self.key_file))})"')
        else:
            out.append("# RUNPOD_API_KEY: the key given with --api-key or $RUNPOD_API_KEY at start")
        return out

    def to_json(self) -> dict[str, Any]:
        return {"env": self.variables, "api_key_file": str(self.key_file) if self.key_file else None}

    def overlay(self, environ: Mapping[str, str]) -> dict[str, str]:
        """``environ`` as `eval "$(rpdeploy emulator env)"` leaves it: the URLs set, and the key
        read from its file (without a key file, the key given at start stays as it is)."""
        merged = {**environ, **self.variables}
        if self.key_file is not None:
            try:
                merged[KEY_ENV] = self.key_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                problem = f"cannot read the emulator's API key {self.key_file}: {exc.strerror}"
                raise EmulatorError(problem) from None
        return merged

    def print_text(self, console: Console) -> None:
        for line in self.lines():
            console.print(line, markup=False, highlight=False)


def running_env(state: Path) -> EnvResult:
    """The variables that point RunPod clients at the emulator running for ``state``."""
    current = server.status(state)
    if not current.running or current.host is None or current.port is None:
        raise EmulatorError(
            "the emulator is not running: rpdeploy emulator start",
            hint=f"no emulator runs for the state folder {current.state_dir} (--state / ${STATE_ENV})",
        )
    key_file = current.api_key_file if current.api_key_file.exists() else None
    # The state folder too: after `eval "$(rpdeploy emulator env --state X)"`, `--target local`
    # and the other emulator commands find this emulator without repeating --state.
    variables = {**server.urls(current.host, current.port), STATE_ENV: str(current.state_dir.resolve())}
    return EnvResult(variables, key_file)


@dataclass(frozen=True)
class LogsResult:
    endpoint: str
    files: list[Path] = field(default_factory=list)
    exit_code: ExitCode = ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "workers": {p.stem: p.read_text(encoding="utf-8", errors="replace") for p in self.files},
        }

    def print_text(self, console: Console) -> None:
        for path in self.files:
            console.print(f"==> worker {path.stem} <==", markup=False)
            console.out(path.read_text(encoding="utf-8", errors="replace"), end="", highlight=False)


@dataclass(frozen=True)
class ServeResult:
    exit_code: ExitCode = ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {"stopped": True}

    def print_text(self, console: Console) -> None:
        console.print("emulator stopped", markup=False)


@click.group()
def emulator() -> None:
    """Run a local RunPod-compatible serverless platform (REST v2, job API, real worker containers).

    \b
    Examples:
      rpdeploy emulator start                 # background; prints RUNPOD_API_URL and friends
      eval "$(rpdeploy emulator env)"         # point the toolkit and the SDK at it
      rpdeploy emulator logs ep123 --worker w1
      rpdeploy emulator stop
    """


@emulator.command()
@_bind_options
@_worker_options
@_cold_host_option
@_state_option
@cli_command
def serve(
    ctx: Context,
    *,
    host: str,
    port: int,
    api_key: str | None,
    allow_remote: bool,
    tiny_os_disk_mb: int | None,
    cold_host: bool,
    state: Path,
) -> ServeResult:
    """Run the emulator in the foreground until Ctrl-C.

    \b
    Example:
      rpdeploy emulator serve --port 8787 --state .state/emulator --tiny-os-disk 64

    Exit codes: 0 stopped with Ctrl-C, 2 bad usage (address, port), 3 the emulator's
    dependencies are missing or the local disk refused a read or write (full,
    read-only, permission) in the state folder.
    """
    files.make_folder(state, "state folder")
    settings = settings_from_env(
        host, port, state, api_key, allow_remote, tiny_os_disk_mb=tiny_os_disk_mb, cold_host=cold_host
    )
    for name, value in server.urls(host, port).items():
        ctx.log(f"{name}={value}")
    ctx.log(f"API key: {_key_hint(settings.state_dir)}")
    server.serve(settings)
    return ServeResult()


@emulator.command()
@_bind_options
@_worker_options
@_cold_host_option
@_state_option
@cli_command
def start(
    ctx: Context,
    *,
    host: str,
    port: int,
    api_key: str | None,
    allow_remote: bool,
    tiny_os_disk_mb: int | None,
    cold_host: bool,
    state: Path,
) -> StatusResult:
    """Start the emulator in the background and wait until it is healthy.

    \b
    Example:
      rpdeploy emulator start --port 8787 && eval "$(rpdeploy emulator env)"

    Exit codes: 0 running and healthy, 2 bad usage (address, port), 3 it did not
    become healthy or the local disk refused a read or write (full, read-only,
    permission) in the state folder.
    """
    check_bind(host, allow_remote)
    files.make_folder(state, "state folder")
    return StatusResult(
        server.start(
            state,
            host=host,
            port=port,
            api_key=api_key,
            allow_remote=allow_remote,
            tiny_os_disk_mb=tiny_os_disk_mb,
            cold_host=cold_host,
        ),
        action="start",
    )


@emulator.command()
@_state_option
@cli_command
def status(ctx: Context, *, state: Path) -> StatusResult:
    """Say whether the emulator runs, and print its URLs (exit 1 when it does not run).

    \b
    Example:
      rpdeploy emulator status --output json
    """
    return StatusResult(server.status(state))


@emulator.command()
@_state_option
@cli_command
def stop(ctx: Context, *, state: Path) -> StatusResult:
    """Stop the background emulator (by its pid file) and remove its worker containers.

    \b
    Example:
      rpdeploy emulator stop
    """
    return StatusResult(server.stop(state), action="stop")


@emulator.command()
@_state_option
@cli_command
def env(ctx: Context, *, state: Path) -> EnvResult:
    """Print `export` lines that point RunPod clients at the running emulator.

    \b
    Example:
      eval "$(rpdeploy emulator env)"
    """
    return running_env(state)


@emulator.command()
@click.argument("endpoint")
@click.option("--worker", "worker_id", default=None, help="Only this worker's log.")
@_state_option
@cli_command
def logs(ctx: Context, *, endpoint: str, worker_id: str | None, state: Path) -> LogsResult:
    """Print the logs of an endpoint's workers (kept after the workers are gone).

    \b
    Example:
      rpdeploy emulator logs 4m7x2k9q --worker 8g3n5t6r
    """
    if not (endpoint.isascii() and endpoint.replace("-", "").replace("_", "").isalnum()):
        raise UsageError(f"ENDPOINT {endpoint!r} is not an endpoint id")
    folder = state.resolve() / "logs" / endpoint
    files = sorted(folder.glob("*.log"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []
    if worker_id is not None:
        files = [p for p in files if p.stem == worker_id]
        if not files:
            raise UsageError(f"no log for worker {worker_id} of endpoint {endpoint} in {folder}")
    elif not files:
        raise UsageError(f"no worker logs for endpoint {endpoint} in {folder}")
    return LogsResult(endpoint, files)
