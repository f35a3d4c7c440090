"""The work disk: where every install, temp, cache and build file goes (never the OS disk).

RunPod's container disk (`/`) is small (about 4 GB on many hosts) and the worker SDK's
fitness check fails a worker whose `/` has less than 10 % free, so pip's staging folder
(`--target` stages the whole install under TMPDIR first), caches and model downloads must
all land on the network volume. docs/runtime.md lists each variable with its source.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .failure import EXIT_DISK, EXPLAINED, Failure, disk_error, say
from .settings import Settings

#: Our folder on the work disk: envs/, staging/, locks/, cache/, tmp/.
ROOT_NAME = "rpdeploy"

#: Variables that steer temporary, cache and build files, relative to <work>/rpdeploy.
#: They are always set: a value pointing at the OS disk is exactly what must not happen.
FORCED = {
    "TMPDIR": "tmp",
    "TEMP": "tmp",
    "TMP": "tmp",
    "PIP_BUILD_DIR": "tmp/pip-build",
    "PIP_CACHE_DIR": "cache/pip",
    "PIP_DOWNLOAD_CACHE": "cache/pip",
    "PYTHON_EGG_CACHE": "cache/python-eggs",
    "XDG_CACHE_HOME": "cache/xdg",
    "XDG_DATA_HOME": "cache/xdg-data",
    # Same filesystem as the environments, so uv links instead of copying.
    "UV_CACHE_DIR": "cache/uv",
    "UV_TOOL_DIR": "cache/uv-tools",
    "UV_PYTHON_INSTALL_DIR": "cache/uv-python",
}
#: Model caches: kept when the endpoint sets them (a volume's model cache), else on the work disk.
DEFAULTED = {
    "HF_HOME": "cache/huggingface",
    "TORCH_HOME": "cache/torch",
}
#: Fixed values.
FIXED = {
    "UV_PYTHON_DOWNLOADS": "never",  # never fetch an interpreter: the image's is the ABI we keyed on
}


@dataclass(frozen=True)
class WorkDisk:
    path: str

    @property
    def root(self) -> str:
        return os.path.join(self.path, ROOT_NAME)

    def sub(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)


def choose(settings: Settings) -> WorkDisk:
    """`/runpod-volume` when mounted, else RPDEPLOY_WORK_DIR; refuses the OS disk."""
    if os.path.ismount(settings.volume_path):
        return WorkDisk(settings.volume_path)
    if settings.work_dir is None:
        raise Failure(
            f"no work disk: {settings.volume_path} is not mounted and RPDEPLOY_WORK_DIR is not set"
            " (attach a network volume, or set RPDEPLOY_WORK_DIR to a disk other than /)"
        )
    path = settings.work_dir
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:  # read-only, not ours, a file there: exit 73 like any path we cannot write
        raise Failure(*disk_error(exc, path, path)) from None
    if not settings.allow_os_disk and os.stat(path).st_dev == os.stat("/").st_dev:
        raise Failure(
            f"work disk {path} is on the OS disk (/): installs there fill it; mount a volume or a"
            " larger disk there (RPDEPLOY_ALLOW_OS_DISK=1 accepts it anyway)"
        )
    return WorkDisk(path)


def environment(disk: WorkDisk, env: dict[str, str]) -> dict[str, str]:
    """``env`` with every temp/cache/build variable pointing at the work disk (folders created)."""
    out = dict(env)
    for name, rel in FORCED.items():
        out[name] = disk.sub(rel)
    for name, rel in DEFAULTED.items():
        out[name] = env.get(name) or disk.sub(rel)
    out.update(FIXED)
    for name in (*FORCED, *DEFAULTED):
        os.makedirs(out[name], exist_ok=True)
    return out


def free_bytes(path: str) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def gb(count: float) -> str:
    return f"{count / 1e9:.1f} GB"


def preflight(disk: WorkDisk, needed: int, what: str) -> None:
    """Fail in one line when the work disk has less than ``needed`` bytes free."""
    free = free_bytes(disk.path)
    if free < needed:
        raise Failure(
            f"needs {gb(needed)} on {disk.path} for {what}, {gb(free)} free (attach a larger network"
            " volume or free space on it; runtime.disk.min_free_volume_mb sets the estimate for installs)",
            EXIT_DISK,
        )


def check_os_disk(settings: Settings) -> None:
    """`/` must stay above the SDK's fitness threshold, or the worker dies after the install."""
    st = os.statvfs("/")
    if st.f_blocks == 0:
        return
    free = st.f_bavail * st.f_frsize
    percent = 100.0 * st.f_bavail / st.f_blocks
    short = percent < settings.min_os_percent or free < settings.min_free_os
    if not short:
        return
    line = (
        f"/ has {gb(free)} free ({percent:.0f} %), below"
        f" RUNPOD_MIN_DISK_PERCENT={settings.min_os_percent:g} %"
        f" or runtime.disk.min_free_os_mb ({gb(settings.min_free_os)}): the worker SDK's fitness check would"
        " fail; raise the endpoint's container disk"
    )
    if settings.skip_os_check:
        say(f"warning: {line}")
        return
    raise Failure(line, EXIT_DISK)


def describe_full(path: str) -> str:
    """``<disk> (9.8 of 10.0 GB used, 98 %)`` for the filesystem holding ``path``."""
    probe = path
    while probe and not os.path.exists(probe):
        probe = os.path.dirname(probe)
    try:
        st = os.statvfs(probe or "/")
    except OSError:
        return path
    total = st.f_blocks * st.f_frsize
    used = total - st.f_bavail * st.f_frsize
    percent = 100.0 * used / total if total else 100.0
    return f"{_mount_point(probe or '/')} ({gb(used)} of {gb(total)} used, {percent:.0f} %)"


def _mount_point(path: str) -> str:
    path = os.path.realpath(path)
    while not os.path.ismount(path):
        path = os.path.dirname(path)
    return path


#: How a child process (pip, uv, compileall) shows a full disk, and how it prints an errno:
#: Python's OSError and Rust's io::Error (uv).
_NO_SPACE = ("No space left on device", "[Errno 28]", "os error 28")
_ERRNO = re.compile(r"\[Errno (\d+)\]|\(os error (\d+)\)")


def disk_failure(tail: Sequence[str], target: str, what: str) -> Failure | None:
    """The Failure for a filesystem error that a child's output (pip, uv, compileall) shows while
    writing ``target`` (one line naming the disk and how full it is, exit 28/73/74), or None."""
    if any(sign in line for line in tail for sign in _NO_SPACE):
        return Failure(f"no space left on {describe_full(target)} while {what}", EXIT_DISK)
    number = filesystem_errno(tail)
    if number is None:
        return None
    message, code = disk_error(OSError(number, os.strerror(number)), describe_full(target))
    return Failure(f"{message} (while {what})", code)


def filesystem_errno(tail: Sequence[str]) -> int | None:
    """The first errno in the installer's output that `disk_error` explains (EDQUOT, EROFS, ...).

    pip writes ``[Errno 122] Disk quota exceeded``, uv ``Disk quota exceeded (os error 122)``:
    on a RunPod network volume a full quota is EDQUOT, not ENOSPC."""
    for line in tail:
        for match in _ERRNO.finditer(line):
            number = int(match.group(1) or match.group(2))
            if number in EXPLAINED:
                return number
    return None
