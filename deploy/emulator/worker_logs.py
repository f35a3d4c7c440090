"""Per-worker log files: `<state>/logs/<endpoint>/<worker>.log`, kept after the worker is gone.

The emulator's own lines (`[emulator <time>] ...`) and the container's output go to
the same file, under one lock. Files are 0600: a handler may print what its env holds.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger("rpdeploy.emulator.worker_logs")


class WorkerLogs:
    """Owns the logs folder of one state directory."""

    def __init__(self, logs_dir: Path) -> None:
        self.logs_dir = logs_dir
        self._lock = threading.Lock()

    def path(self, endpoint_id: str, worker_id: str) -> Path:
        path = self.logs_dir / endpoint_id / f"{worker_id}.log"
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def _open(self, endpoint_id: str, worker_id: str) -> int:
        return os.open(self.path(endpoint_id, worker_id), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def line(self, endpoint_id: str, worker_id: str, message: str) -> None:
        """One emulator line in the worker's log."""
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        data = f"[emulator {stamp}] {message}\n".encode(errors="backslashreplace")
        try:
            with self._lock:
                fd = self._open(endpoint_id, worker_id)
                try:
                    os.write(fd, data)
                finally:
                    os.close(fd)
        except OSError as exc:  # a full disk must not stop a worker's start or a job's end
            log.warning("cannot write the log of worker %s: %s (%s)", worker_id, exc, message)

    def follow(self, endpoint_id: str, worker_id: str, chunks: Iterable[bytes]) -> None:
        """Append a container's output as it arrives (blocks until the stream ends)."""
        fd = self._open(endpoint_id, worker_id)
        try:
            for chunk in chunks:
                with self._lock:
                    os.write(fd, chunk)
        finally:
            os.close(fd)
