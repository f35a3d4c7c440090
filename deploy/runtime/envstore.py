"""Environments on the work disk: ``<work>/rpdeploy/envs/<key>/`` with ``site/``, a manifest and a marker.

The key is a content hash of the locked requirements, the Python version/ABI and the
platform, so an image with another interpreter never reuses an incompatible environment.
An environment is built in ``staging/`` on the same disk and published with one rename;
its marker (``COMPLETE``, holding the manifest's sha256) is written last, and an
environment whose marker is missing or disagrees with its manifest or files is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import secrets
import shutil
import socket
import sys
import sysconfig
import time

from .workdisk import WorkDisk

SITE = "site"
MANIFEST = "manifest.json"
MARKER = "COMPLETE"
FORMAT = "rpdeploy-env-1"


def interpreter_tag() -> str:
    """Python version, ABI and platform: what makes installed wheels compatible."""
    libc = "-".join(part for part in platform.libc_ver() if part) or "nolibc"
    soabi = sysconfig.get_config_var("SOABI") or sys.implementation.cache_tag
    return f"{sys.implementation.name}-{platform.python_version()}-{soabi}-{sysconfig.get_platform()}-{libc}"


def env_key(requirements: bytes, tag: str | None = None) -> str:
    digest = hashlib.sha256()
    for part in (FORMAT.encode(), (tag or interpreter_tag()).encode(), requirements):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()[:32]


class Store:
    def __init__(self, disk: WorkDisk) -> None:
        self.disk = disk

    def env_dir(self, key: str) -> str:
        return self.disk.sub("envs", key)

    def lock_path(self, key: str) -> str:
        return self.disk.sub("locks", f"{key}.lock")

    def ensure_layout(self) -> None:
        for name in ("envs", "staging", "locks"):
            os.makedirs(self.disk.sub(name), exist_ok=True)

    def new_staging(self, key: str) -> str:
        path = self.disk.sub("staging", f"{key}.{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(4)}")
        os.makedirs(os.path.join(path, SITE))
        return path

    def clean_staging(self, key: str) -> list[str]:
        """Remove the staging folders of ``key`` (call with its lock held: their owners are gone)."""
        staging = self.disk.sub("staging")
        removed = [name for name in sorted(os.listdir(staging)) if name.startswith(f"{key}.")]
        for name in removed:
            shutil.rmtree(os.path.join(staging, name), ignore_errors=True)
        return removed

    def problem(self, key: str, *, files: bool = False) -> str | None:
        """None when ``envs/<key>`` is complete and intact, else what is wrong with it."""
        return check(self.env_dir(key), files=files)

    def publish(self, key: str, staging: str, *, sealed: bool = False) -> str:
        """Seal ``staging`` (manifest, then marker; unless an unpacked archive brought both)
        and rename it to ``envs/<key>``."""
        if not sealed:
            seal(staging, key)
        target = self.env_dir(key)
        if os.path.lexists(target):  # a corrupt one (we hold the lock): move it aside first
            aside = self.disk.sub("staging", f"{key}.corrupt.{secrets.token_hex(4)}")
            os.rename(target, aside)
            shutil.rmtree(aside, ignore_errors=True)
        os.rename(staging, target)
        return target


def _files(site: str) -> list[list[object]]:
    entries: list[list[object]] = []
    for folder, dirs, names in os.walk(site):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(folder, name)
            if os.path.islink(path):
                continue
            entries.append([os.path.relpath(path, site), os.path.getsize(path)])
    return entries


def seal(env: str, key: str) -> None:
    files = _files(os.path.join(env, SITE))
    manifest = {
        "format": FORMAT,
        "key": key,
        "interpreter": interpreter_tag(),
        "created": time.time(),
        "bytes": sum(int(str(size)) for _, size in files),
        "files": files,
    }
    data = json.dumps(manifest, sort_keys=True).encode()
    _write_synced(os.path.join(env, MANIFEST), data)
    # Written last: its presence (and agreement with the manifest) proves the rest is there.
    _write_synced(os.path.join(env, MARKER), hashlib.sha256(data).hexdigest().encode())


def _write_synced(path: str, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def check(env: str, *, files: bool = True) -> str | None:  # noqa: PLR0911 (one return per fault)
    """What is wrong with the environment at ``env`` (None: complete and intact).

    The marker and the manifest's hash prove an environment was published whole (publishing
    is one rename). ``files`` also checks every file's size: thousands of stat calls, slow on a
    network volume, so a cold start does it only when RPDEPLOY_VERIFY_FILES=1; an unpacked
    archive is always checked in full."""
    if not os.path.isdir(env):
        return "absent"
    try:
        with open(os.path.join(env, MARKER), "rb") as handle:
            marker = handle.read().decode("ascii", "replace").strip()
    except FileNotFoundError:
        return "its completion marker is missing (a half-written environment)"
    try:
        with open(os.path.join(env, MANIFEST), "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return "its manifest is missing"
    if hashlib.sha256(data).hexdigest() != marker:
        return "its manifest does not match its completion marker"
    try:
        listed = json.loads(data)["files"]
    except (ValueError, KeyError, TypeError):
        return "its manifest is unreadable"
    if not files:
        return None
    site = os.path.join(env, SITE)
    for rel, size in listed:
        try:
            actual = os.path.getsize(os.path.join(site, rel))
        except OSError:
            return f"{rel} is missing"
        if actual != size:
            return f"{rel} has {actual} bytes, the manifest says {size}"
    return None


def site_of(env: str) -> str:
    return os.path.join(env, SITE)


def size_of(env: str) -> int:
    """Bytes the manifest records (0 when unreadable)."""
    try:
        with open(os.path.join(env, MANIFEST), "rb") as handle:
            return int(json.load(handle).get("bytes", 0))
    except (OSError, ValueError, TypeError):
        return 0
