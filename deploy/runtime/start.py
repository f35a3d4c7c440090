"""Start the handler: resolve the command (127/126 explained before anything runs), then exec it.

As PID 1 the bootstrap stays as a minimal init instead: it forwards signals to the handler,
reaps orphans and, when the handler dies, explains its end in one line (137: killed, most
likely out of memory). Otherwise (an init such as ``docker --init`` is PID 1) it execs, and
the handler replaces it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import sys

from .failure import EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, Failure, say

LAUNCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "launch.py")
_PYTHON_FLAGS_WITH_VALUE = {"-W", "-X", "-Q"}
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def wrap_python(argv: list[str]) -> list[str]:
    """``python3 [opts] file.py args`` → the same through `launch.py` (import errors explained)."""
    if not argv or not os.path.basename(argv[0]).startswith("python"):
        return argv
    index = 1
    options: list[str] = []
    while index < len(argv) and argv[index].startswith("-") and argv[index] != "-":
        flag = argv[index]
        if flag == "-m" and index + 1 < len(argv):
            return [argv[0], *options, LAUNCH, "module", argv[index + 1], *argv[index + 2 :]]
        if flag == "-c":
            return argv
        options.append(flag)
        if flag in _PYTHON_FLAGS_WITH_VALUE and index + 1 < len(argv):
            options.append(argv[index + 1])
            index += 1
        index += 1
    if index < len(argv) and argv[index].endswith(".py"):
        return [argv[0], *options, LAUNCH, "file", argv[index], *argv[index + 1 :]]
    return argv


def resolve(command: str, path: str) -> str:
    """The executable ``command`` runs, or a one-line 127/126 failure."""
    if "/" in command:
        if not os.path.exists(command):
            raise Failure(f"command not found: {command} (no such file)", EXIT_NOT_FOUND)
        if os.path.isdir(command) or not os.access(command, os.X_OK):
            raise Failure(f"cannot execute {command}: permission denied or not a file", EXIT_NOT_EXECUTABLE)
        return command
    found = shutil.which(command, path=path)
    if found is None:
        raise Failure(f"command not found: {command} (PATH searched: {path or '(empty)'})", EXIT_NOT_FOUND)
    return found


def start(argv: list[str], env: dict[str, str]) -> int:
    if not argv:
        raise Failure("no handler command: give it as the image's CMD (e.g. python3 -u /app/handler.py)")
    argv = wrap_python(argv)
    executable = resolve(argv[0], env.get("PATH", os.defpath))
    sys.stdout.flush()
    sys.stderr.flush()
    # RPDEPLOY_SUPERVISE=1 (or true, yes, on, as the other flags): the init role without being
    # PID 1 (tests; a shell as PID 1).
    supervise = env.get("RPDEPLOY_SUPERVISE", "").strip().lower() in {"1", "true", "yes", "on"}
    if os.getpid() != 1 and not supervise:
        _exec(executable, argv, env)
    return _supervise(executable, argv, env)


def _exec(executable: str, argv: list[str], env: dict[str, str]) -> None:
    try:
        os.execve(executable, argv, env)  # noqa: S606 (the handler replaces us)
    except OSError as exc:
        raise _exec_failure(executable, exc) from None


def _exec_failure(executable: str, exc: OSError) -> Failure:
    if exc.errno == errno.ENOEXEC:
        return Failure(f"cannot execute {executable}: not an executable format (a script without #!?)", 126)
    if exc.errno == errno.ENOENT:  # e.g. a script whose #! interpreter is missing
        return Failure(f"cannot execute {executable}: its interpreter was not found", EXIT_NOT_FOUND)
    return Failure(f"cannot execute {executable}: {exc.strerror}", EXIT_NOT_EXECUTABLE)


def _supervise(executable: str, argv: list[str], env: dict[str, str]) -> int:
    """PID 1: run the handler as a child, forward signals, reap everything, explain its end."""
    read_fd, write_fd = os.pipe()  # the child reports an exec failure through it
    os.set_inheritable(write_fd, False)
    # Held back until the forwarding handlers exist: a SIGTERM right after the start must reach
    # the handler, not kill this init with Python's default action.
    signal.pthread_sigmask(signal.SIG_BLOCK, _FORWARDED)
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_fd)
        for sig in _FORWARDED:
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _FORWARDED)
        try:
            os.execve(executable, argv, env)  # noqa: S606
        except OSError as exc:
            os.write(write_fd, f"{exc.errno}".encode())
        os._exit(127)
    os.close(write_fd)
    for sig in _FORWARDED:
        signal.signal(sig, lambda number, _frame: _forward(pid, number))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _FORWARDED)
    with os.fdopen(read_fd, "rb") as pipe:
        failed = pipe.read()
    if failed:
        raise _exec_failure(executable, OSError(int(failed), os.strerror(int(failed))))
    while True:
        try:
            reaped, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 1
        except InterruptedError:
            continue
        if reaped == pid:
            return explain_exit(argv, status)


def _forward(pid: int, number: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, number)


def explain_exit(argv: list[str], status: int) -> int:
    """The handler's exit, as the shell would report it, with a line for the telling cases."""
    code = os.waitstatus_to_exitcode(status)
    shown = " ".join(argv)
    if code < 0:
        number = -code
        code = 128 + number
        if number == signal.SIGKILL:
            say(
                f"the handler ({shown}) was killed by SIGKILL (exit 137):"
                f" most likely out of memory{memory_hint()}"
            )
        elif number not in (signal.SIGTERM, signal.SIGINT):
            say(f"the handler ({shown}) was killed by {signal.Signals(number).name} (exit {code})")
    elif code == 137:
        say(f"the handler ({shown}) exited 137 (killed): most likely out of memory{memory_hint()}")
    elif code in (EXIT_NOT_FOUND, EXIT_NOT_EXECUTABLE):
        say(f"the handler ({shown}) exited {code}: a command it runs was not found or not executable")
    return code


def memory_hint() -> str:
    """`` (memory limit 512 MB)`` from the cgroup, when readable."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path, encoding="ascii") as handle:
                raw = handle.read().strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < 1 << 60:
            return f" (memory limit {int(raw) / 1e6:.0f} MB)"
    return ""
