"""A lock that works on network filesystems: ``mkdir`` (atomic on NFS and FUSE mounts) plus a heartbeat.

`flock` is not used: network volumes do not all honour it. The holder touches
``<lock>/owner`` every few seconds; a waiter treats the lock as stale when that heartbeat is
older than ``stale_s`` or, when it sees the holder's processes (same host name and same PID
namespace), when the holder's pid is gone (a killed installer), and breaks it by renaming the
folder away (only one waiter's rename succeeds). The host name alone does not say that: workers
with host networking (the emulator's) share the host's name, each in its own PID namespace.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Callable

from .failure import Failure, say

OWNER = "owner"


class Lock:
    def __init__(self, path: str, stale_s: float) -> None:
        self.path = path
        self.stale_s = stale_s
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        #: The holder's heartbeat as this waiter last saw it, and when (monotonic clock).
        self._seen: tuple[float, float] | None = None

    def try_acquire(self) -> bool:
        try:
            os.mkdir(self.path)
        except FileExistsError:
            return False
        owner = {
            "host": socket.gethostname(),
            "pidns": _pid_namespace(),
            "pid": os.getpid(),
            "since": time.time(),
        }
        with open(os.path.join(self.path, OWNER), "w", encoding="utf-8") as handle:
            json.dump(owner, handle)
        self._beat = threading.Thread(target=self._heartbeat, name="rpdeploy-lock-heartbeat", daemon=True)
        self._beat.start()
        return True

    def _heartbeat(self) -> None:
        interval = max(0.05, self.stale_s / 4)
        while not self._stop.wait(interval):
            try:
                os.utime(os.path.join(self.path, OWNER))
            except OSError:
                return  # broken by a waiter that judged us stale: the publish rename still decides

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        shutil.rmtree(self.path, ignore_errors=True)

    def stale_reason(self) -> str | None:
        """Why the current holder is considered gone, or None while it is alive."""
        owner_file = os.path.join(self.path, OWNER)
        try:
            beat = os.stat(owner_file).st_mtime
        except FileNotFoundError:
            try:
                beat = os.stat(self.path).st_mtime  # created, owner not written yet
            except FileNotFoundError:
                return None  # released meanwhile
        try:
            with open(owner_file, encoding="utf-8") as handle:
                owner = json.load(handle)
        except (OSError, ValueError):
            owner = {}
        pid = owner.get("pid")
        # Its pid means something here only in the same PID namespace (a container has its own).
        ours = _pid_namespace()
        same_pids = (
            owner.get("host") == socket.gethostname() and ours is not None and owner.get("pidns") == ours
        )
        if same_pids and isinstance(pid, int) and pid != os.getpid() and not _alive(pid):
            return f"its holder (pid {pid} on this host) is gone"
        age = time.time() - beat
        if age > self.stale_s:
            return f"no heartbeat for {age:.0f} s"
        # A heartbeat in the future (another host's clock, a network filesystem's server time) is
        # never "old" by the clock above: judge it by whether it moves while we watch instead.
        now = time.monotonic()
        if self._seen is None or self._seen[0] != beat:
            self._seen = (beat, now)
            return None
        still = now - self._seen[1]
        if still > self.stale_s:
            return f"its heartbeat ({age:+.0f} s by this host's clock) has not moved for {still:.0f} s"
        return None

    def break_stale(self, reason: str) -> None:
        aside = f"{self.path}.broken.{secrets.token_hex(4)}"
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return  # another waiter broke it first
        say(f"broke a stale lock {self.path}: {reason}")
        shutil.rmtree(aside, ignore_errors=True)


def _pid_namespace() -> str | None:
    """``pid:[4026531836]``: the PID namespace this process sees pids in (None: unknown)."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _alive(pid: int) -> bool:
    # Workers are Linux containers; /proc also sees processes of other users, which kill(pid, 0) does not.
    return os.path.exists(f"/proc/{pid}")


def wait_for(lock: Lock, done: Callable[[], bool], wait_s: float, poll_s: float = 0.2) -> bool:
    """Acquire ``lock`` (True) or see ``done()`` become true while waiting (False)."""
    deadline = time.monotonic() + wait_s
    announced = False
    while True:
        if done():
            return False
        if lock.try_acquire():
            return True
        reason = lock.stale_reason()
        if reason is not None:
            lock.break_stale(reason)
            continue
        if not announced:
            say(f"another worker is provisioning this environment; waiting (lock {lock.path})")
            announced = True
        if time.monotonic() > deadline:
            raise Failure(
                f"waited {wait_s:.0f} s for the lock {lock.path} held by another worker"
                " (RPDEPLOY_LOCK_WAIT_S sets the limit)"
            )
        time.sleep(poll_s)
