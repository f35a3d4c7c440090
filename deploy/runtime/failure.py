"""The one way the bootstrap fails: one line on stderr and a documented exit status."""

from __future__ import annotations

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
