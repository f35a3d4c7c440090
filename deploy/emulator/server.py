"""Running the emulator: in the foreground (uvicorn), or detached with a pid file and a log.

The detached form re-runs `python -P -m deploy emulator serve` (the CLI's own entry
point) in a new session with stdout and stderr in `<state>/emulator.log`, writes
`<state>/emulator.pid`, and waits until the server answers its health check. `-P`
keeps the caller's folder off the import path, so a worker repository's own
`deploy.py` or `deploy/` never runs in rpdeploy's place. `stop` signals that pid
(never a process found by name) and, if it does not exit, kills it and removes the
containers it labelled. Every file in the state directory is private (0600, folders 0700):
the database holds secret values.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from deploy.emulator.settings import API_KEY_FILE, EmulatorSettings, state_label
from deploy.errors import EmulatorError

#: The modules only `serve` needs, from the `emulator` extra (pyproject.toml).
SERVER_MODULES = ("fastapi", "uvicorn", "graphql", "httpx")
EXTRA_HINT = "pip install 'rpdeploy[emulator]'"
#: Files and folders the server creates are readable by its user only.
PRIVATE_UMASK = 0o077

PID_FILE = "emulator.pid"
LOG_FILE = "emulator.log"
INFO_FILE = "emulator.json"
HEALTH_PATH = "/_emulator/health"
#: Idle keep-alive connections stay open this long (see `serve`): beyond the default endpoint
#: timeout (300 s), so a worker busy with one job still finds its connection open.
KEEP_ALIVE_S = 3600


def require_server_modules() -> None:
    """Raise EmulatorError naming the extra to install when a server dependency is missing."""
    missing = [name for name in SERVER_MODULES if not _installed(name)]
    if missing:
        raise EmulatorError(
            f"the emulator server needs {', '.join(missing)}, which are not installed",
            hint=f"install the emulator extra: {EXTRA_HINT}",
        )


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: a module blocked with sys.modules[name] = None
        return False


def serve(settings: EmulatorSettings) -> None:
    """Run the server in this process until SIGINT/SIGTERM.

    Raises EmulatorError when the emulator extra is missing or the state store cannot open.
    """
    require_server_modules()
    # Imported here: `status`, `stop` and `env` must not pay for fastapi, uvicorn and docker.
    import asyncio  # noqa: PLC0415

    import uvicorn  # noqa: PLC0415

    from deploy.emulator.app import build  # noqa: PLC0415
    from deploy.emulator.store import StoreError  # noqa: PLC0415

    os.umask(PRIVATE_UMASK)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app, emulator = build(settings)
    except StoreError as exc:
        raise EmulatorError(str(exc), hint=f"check {settings.state_dir}") from None
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,  # uvicorn's access log would print ?api_key= query strings
        timeout_graceful_shutdown=3,
        # uvicorn closes idle keep-alive connections after 5 s by default. A worker's sync handler
        # blocks the SDK's event loop for the whole job, so aiohttp never sees that close and
        # sends job-done on the dead connection ("Server disconnected": the result is lost and
        # the job stays IN_PROGRESS). Keep idle connections as long as a worker may be busy.
        timeout_keep_alive=KEEP_ALIVE_S,
        lifespan="on",
    )

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            # End the long polls now, or graceful shutdown waits for them.
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().call_soon_threadsafe(emulator.jobs.shut_down)
            super().handle_exit(sig, frame)

    _write_info(settings)
    try:
        Server(config).run()
    finally:
        with contextlib.suppress(FileNotFoundError):
            (settings.state_dir / INFO_FILE).unlink()


def _write_info(settings: EmulatorSettings) -> None:
    settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = {"pid": os.getpid(), "host": settings.host, "port": settings.port, "label": settings.label}
    _write_private(settings.state_dir / INFO_FILE, json.dumps(info) + "\n")


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a 0600 file (tightening one an older run left open)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def _open_private_log(path: Path) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def urls(host: str, port: int) -> dict[str, str]:
    """The settings the toolkit (and the SDK) read to talk to RunPod, pointed at the emulator."""
    shown = f"[{host}]" if ":" in host else host
    if host in {"0.0.0.0", "::"}:  # noqa: S104 - a wildcard bind is reached through loopback
        shown = "127.0.0.1"
    base = f"http://{shown}:{port}"
    return {
        "RUNPOD_API_URL": f"{base}/v2",
        "RUNPOD_ENDPOINT_BASE_URL": f"{base}/v2",
        "RUNPOD_GRAPHQL_URL": f"{base}/graphql",
        "RUNPOD_API_BASE_URL": base,
    }


@dataclass(frozen=True)
class Status:
    running: bool
    pid: int | None
    host: str | None
    port: int | None
    state_dir: Path

    @property
    def api_key_file(self) -> Path:
        return self.state_dir / API_KEY_FILE


def healthy(host: str, port: int, timeout: float = 1.0) -> bool:
    shown = "127.0.0.1" if host in {"0.0.0.0", "::"} else host  # noqa: S104
    try:
        response = requests.get(f"http://{shown}:{port}{HEALTH_PATH}", timeout=timeout)
    except requests.RequestException:
        return False
    return response.status_code == 200


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(state_dir: Path) -> int | None:
    try:
        return int((state_dir / PID_FILE).read_text(encoding="utf-8").strip())
    except (FileNotFoundError, ValueError):
        return None


def status(state_dir: Path) -> Status:
    state_dir = state_dir.resolve()
    pid = _read_pid(state_dir)
    try:
        info = json.loads((state_dir / INFO_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        info = {}
    host, port = info.get("host"), info.get("port")
    running = bool(pid and _pid_alive(pid) and host and port and healthy(host, port))
    return Status(running=running, pid=pid, host=host, port=port, state_dir=state_dir)


def start(
    state_dir: Path,
    *,
    host: str,
    port: int,
    api_key: str | None,
    allow_remote: bool,
    tiny_os_disk_mb: int | None = None,
    wait_s: float = 30.0,
    cold_host: bool = False,
) -> Status:
    """Start a detached server and wait until it is healthy (flags as `serve` takes them)."""
    state_dir = state_dir.resolve()
    current = status(state_dir)
    if current.running:
        raise EmulatorError(
            f"an emulator already runs for {state_dir} (pid {current.pid})",
            hint="rpdeploy emulator stop, or use another --state directory",
        )
    if healthy(host, port, timeout=0.5):
        raise EmulatorError(f"port {port} on {host} is already serving another emulator", hint="pick --port")
    require_server_modules()
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    # -P: the caller's folder stays off sys.path (a worker repo's deploy.py must not run as rpdeploy).
    command = [sys.executable, "-P", "-m", "deploy", "emulator", "serve", "--host", host, "--port", str(port)]
    command += ["--state", str(state_dir)]
    if allow_remote:
        command.append("--allow-remote")
    if tiny_os_disk_mb is not None:
        command += ["--tiny-os-disk", str(tiny_os_disk_mb)]
    if cold_host:
        command.append("--cold-host")
    env = dict(os.environ)
    if api_key:
        env["RUNPOD_API_KEY"] = api_key  # through the environment, never argv (visible in ps)
    log_path = state_dir / LOG_FILE
    log_fd = _open_private_log(log_path)
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            env=env,
            start_new_session=True,
        )
    finally:
        os.close(log_fd)
    _write_private(state_dir / PID_FILE, f"{process.pid}\n")
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmulatorError(
                f"the emulator exited with code {process.returncode} while starting",
                hint=f"see {log_path}",
            )
        if healthy(host, port, timeout=0.5):
            return status(state_dir)
        time.sleep(0.1)
    _terminate(process.pid, grace_s=5)
    raise EmulatorError(f"the emulator did not become healthy within {wait_s:.0f} s", hint=f"see {log_path}")


def _terminate(pid: int, grace_s: float) -> bool:
    """SIGTERM, then SIGKILL after ``grace_s``; True if it exited on SIGTERM."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not _pid_alive(pid) or _reap(pid):
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return False


def _reap(pid: int) -> bool:
    """Collect a child that exited (the CLI's own child when start and stop share a process)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done == pid


def stop(state_dir: Path, grace_s: float = 20.0) -> Status:
    state_dir = state_dir.resolve()
    pid = _read_pid(state_dir)
    if pid is None or not _pid_alive(pid):
        with contextlib.suppress(FileNotFoundError):
            (state_dir / PID_FILE).unlink()
        return status(state_dir)
    clean = _terminate(pid, grace_s)
    if not clean:
        remove_containers(state_dir)
    with contextlib.suppress(FileNotFoundError):
        (state_dir / PID_FILE).unlink()
    with contextlib.suppress(FileNotFoundError):
        (state_dir / INFO_FILE).unlink()
    return status(state_dir)


def remove_containers(state_dir: Path) -> int:
    """Remove containers labelled for this state dir (after a server that could not clean up)."""
    # Imported here: only needed when a server could not clean up.
    from docker.errors import DockerException  # noqa: PLC0415

    from deploy.emulator.containers import ContainerRuntime  # noqa: PLC0415
    from deploy.emulator.settings import WorkerKnobs  # noqa: PLC0415

    runtime = ContainerRuntime(state_label(state_dir), WorkerKnobs())
    try:
        runtime.connect()
    except DockerException:
        return 0
    return runtime.remove_labelled()
