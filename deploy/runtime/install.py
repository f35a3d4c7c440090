"""Install the locked requirements into a staging folder with pip ``--target`` or uv, with retries.

pip stages a ``--target`` install under TMPDIR before moving it (pypa/pip#12444), so the
caller's environment (`workdisk.environment`) must point TMPDIR at the work disk. The
installer's output goes to the worker log as it comes; its tail is kept to explain a failure.
"""

from __future__ import annotations

import collections
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

from .failure import Failure, say
from .settings import Settings
from .workdisk import WorkDisk, disk_failure

#: The uv installed onto the work disk when the image has none: pinned, so every worker on a
#: volume (and every cold start) runs the same one (docs/runtime.md).
UV_REQUIREMENT = "uv==0.13.8"
#: Signs in pip's or uv's output that the network or the index failed (worth another attempt);
#: anything else (a requirement that does not resolve, a build error) fails the same way again.
_NETWORK = (
    "Connection refused", "NewConnectionError", "Failed to establish a new connection",
    "Name or service not known", "Temporary failure in name resolution", "dns error",
    "ConnectTimeoutError", "Read timed out", "ReadTimeoutError", "Connection reset", "timed out",
    "error sending request", "HTTP status server error", "503 Service", "502 Bad Gateway",
)  # fmt: skip
#: How pip and uv start the line that says what went wrong.
_ERROR_STARTS = ("ERROR:", "error:", "  × ", "  ╰─▶ ")


def pip_command(settings: Settings, target: str) -> list[str]:
    command = [
        sys.executable, "-m", "pip", "install", "--target", target, "--no-input",
        "--disable-pip-version-check", "--no-warn-script-location", "--retries", "5", "--timeout", "30",
        # No __pycache__ in site/: the bootstrap compiles into the environment's bytecode/ tree
        # (bytecode.py), which is where the handler's Python looks (PYTHONPYCACHEPREFIX).
        "--no-compile",
        "-r", settings.requirements,
    ]  # fmt: skip
    if settings.index_url:
        command += ["--index-url", settings.index_url]
    return command


def uv_command(uv: str, settings: Settings, target: str) -> list[str]:
    command = [
        uv,
        "pip",
        "install",
        "--target",
        target,
        "--python",
        sys.executable,
        # No --compile-bytecode: the bootstrap compiles into bytecode/ (see pip_command).
        "-r",
        settings.requirements,
    ]
    if settings.index_url:
        command += ["--index-url", settings.index_url]
    return command


def find_uv(disk: WorkDisk, settings: Settings, env: dict[str, str]) -> str:
    """uv from PATH, else installed once with pip onto the work disk (the slim image stays small)."""
    found = shutil.which("uv", path=env.get("PATH"))
    if found:
        return found
    tools = disk.sub("tools", "uv")
    binary = os.path.join(tools, "bin", "uv")
    if os.access(binary, os.X_OK):
        return binary
    # The bootstrap is PID 1 in every container: the pid alone would be the same folder (uv.1)
    # for every worker on the volume.
    staging = f"{tools}.{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(4)}"
    command = [sys.executable, "-m", "pip", "install", "--target", staging, "--no-input",
               "--disable-pip-version-check", "--no-warn-script-location", UV_REQUIREMENT]  # fmt: skip
    if settings.index_url:
        command += ["--index-url", settings.index_url]
    say("installing uv onto the work disk")
    _run_with_retries(command, env, settings.install_attempts, disk, staging, "installing uv")
    try:
        os.rename(staging, tools)
    except OSError:  # another worker published it first
        shutil.rmtree(staging, ignore_errors=True)
    return binary


def install(settings: Settings, disk: WorkDisk, env: dict[str, str], site: str) -> None:
    """Install the requirements into ``site`` (emptied before each retry)."""
    if settings.installer == "uv":
        command = uv_command(find_uv(disk, settings, env), settings, site)
    else:
        command = pip_command(settings, site)
    where = settings.index_url or "the default index"
    say(f"installing {settings.requirements} with {settings.installer} from {where}")
    _run_with_retries(
        command, env, settings.install_attempts, disk, site, f"installing {settings.requirements}"
    )


def _run_with_retries(  # noqa: PLR0917
    command: Sequence[str], env: dict[str, str], attempts: int, disk: WorkDisk, target: str, what: str
) -> None:
    """Run ``command`` until it succeeds; another attempt only after a network or index error."""
    for attempt in range(1, attempts + 1):
        status, tail = _run(command, env)
        if status == 0:
            return
        failure = disk_failure(tail, target, what)
        if failure is not None:  # full, over quota, read-only, ...: not worth another attempt either
            raise failure
        network = network_cause(tail)
        if network is None:  # it would fail the same way again
            raise Failure(f"{what} failed (exit {status}): {first_error(tail)[:300]}")
        if attempt == attempts:
            raise Failure(
                f"{what} failed after {attempts} attempts (exit {status}; network or index: {network[:300]})"
            )
        say(f"{what} failed (exit {status}: {network[:200]}), attempt {attempt} of {attempts}; retrying")
        shutil.rmtree(target, ignore_errors=True)
        os.makedirs(target, exist_ok=True)
        time.sleep(min(2.0**attempt, 10.0))  # the index or the network may be back


def network_cause(tail: Sequence[str]) -> str | None:
    """The first line of installer output that shows a network or index failure, or None.

    pip retries a refused connection itself and then says only "No matching distribution
    found": the cause (a typo'd index URL, a server down) is in its earlier warnings."""
    return next((line.strip() for line in tail if any(sign in line for sign in _NETWORK)), None)


def first_error(tail: Sequence[str]) -> str:
    """pip's or uv's own error line (the first), else the last line of output."""
    found = next((line.strip() for line in tail if line.startswith(_ERROR_STARTS)), None)
    return found or next((line.strip() for line in reversed(tail) if line.strip()), "no output")


def _run(command: Sequence[str], env: dict[str, str]) -> tuple[int, list[str]]:
    tail: collections.deque[str] = collections.deque(maxlen=40)
    try:
        process = subprocess.Popen(
            list(command),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
    except OSError as exc:
        raise Failure(f"cannot run {command[0]}: {exc.strerror}") from None
    assert process.stdout is not None
    with process.stdout:
        for line in process.stdout:
            sys.stderr.write(line)
            tail.append(line.rstrip("\n"))
    return process.wait(), list(tail)
