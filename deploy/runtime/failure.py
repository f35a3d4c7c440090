"""The one way the bootstrap fails: one line on stderr and a documented exit status."""

from __future__ import annotations

import errno
import os
import sys

PREFIX = "rpdeploy-bootstrap"

#: Exit statuses (docs/runtime.md). 126/127 follow the shell's meaning.
EXIT_FAILED = 1
EXIT_DISK = 28  # errno ENOSPC: the work disk is too small or full (or over its quota)
EXIT_CANNOT_WRITE = 73  # sysexits.h EX_CANTCREAT: a path cannot be written (read-only, permissions, a file)
EXIT_IO = 74  # sysexits.h EX_IOERR: any other error of the filesystem
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127


class Failure(Exception):
    """A failure the bootstrap explains in one line, then exits with ``code``."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = " ".join(message.split())  # one line, whatever the parts held
        self.code = code


def say(message: str) -> None:
    """A progress line in the worker log (RunPod shows stderr)."""
    print(f"{PREFIX}: {message}", file=sys.stderr, flush=True)


#: What to do about a filesystem error, by errno: (advice, exit status).
_DISK_ADVICE = {
    errno.EDQUOT: ("free space on it or raise the quota", EXIT_DISK),
    errno.EROFS: (
        "that filesystem is read-only: point the variable naming it (HF_HOME, TORCH_HOME, ...) at the"
        " work disk, or leave it unset so the bootstrap puts it there",
        EXIT_CANNOT_WRITE,
    ),
    errno.EACCES: (
        "run the worker as a user that may write there, or point it at the work disk",
        EXIT_CANNOT_WRITE,
    ),
    errno.EPERM: (
        "run the worker as a user that may write there, or point it at the work disk",
        EXIT_CANNOT_WRITE,
    ),
    errno.ENOTDIR: ("a file stands where a folder is needed: remove it", EXIT_CANNOT_WRITE),
    # os.makedirs(exist_ok=True) says EEXIST when the path itself is a file.
    errno.EEXIST: ("a file stands where a folder is needed: remove it", EXIT_CANNOT_WRITE),
    errno.EISDIR: ("a folder stands where a file is needed: remove it", EXIT_CANNOT_WRITE),
}
#: Errors of the filesystem `disk_error` explains when an installer reports them (pip's
#: ``[Errno 122]``, uv's ``(os error 122)``); any other errno there is the installer's own story.
EXPLAINED = frozenset({errno.EIO, *_DISK_ADVICE})


def disk_error(exc: OSError, where: str, work: str | None = None) -> tuple[str, int]:
    """One line for a filesystem error at ``where`` (its errno's name and meaning, what to do) and
    the exit status: 28 full or over quota, 73 cannot be written, 74 anything else (docs/runtime.md).

    ``work`` is the work disk: a read-only path on it means the disk itself is mounted read-only,
    which no variable fixes."""
    number = exc.errno or 0
    name = errno.errorcode.get(number, "unknown error")
    meaning = exc.strerror or os.strerror(number)
    advice, code = _DISK_ADVICE.get(number, ("check that disk (dmesg, the volume's health)", EXIT_IO))
    if number == errno.EROFS and work is not None and _under(where, work):
        advice = (
            f"the work disk {work} is mounted read-only: mount it read-write (the network volume,"
            " or the disk at RPDEPLOY_WORK_DIR)"
        )
    return f"cannot use {where}: {meaning} ({name}); {advice}", code


def _under(path: str, folder: str) -> bool:
    return os.path.commonpath([os.path.abspath(path), os.path.abspath(folder)]) == os.path.abspath(folder)
