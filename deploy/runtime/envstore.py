"""Environments on the work disk: ``<work>/rpdeploy/envs/<key>/`` with ``site/``, ``bytecode/``
(`bytecode`: the pycs of the site and the stdlib), a manifest and a marker.

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

from . import bytecode
from .workdisk import WorkDisk

SITE = "site"
MANIFEST = "manifest.json"
MARKER = "COMPLETE"
#: 2: bytecode/ (a PYTHONPYCACHEPREFIX tree) instead of __pycache__ folders in site/.
FORMAT = "rpdeploy-env-2"


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
        """Seal ``staging`` (manifest, then marker; unless an unpacked archive brought both) and
        rename it to ``envs/<key>``."""
        if not sealed:
            seal(staging, key)
        target = self.env_dir(key)
        if os.path.lexists(target):  # a corrupt one (we hold the lock): move it aside first
            aside = self.disk.sub("staging", f"{key}.corrupt.{secrets.token_hex(4)}")
            os.rename(target, aside)
            shutil.rmtree(aside, ignore_errors=True)
        os.rename(staging, target)
        return target


def _files(folder: str, skip: str | None = None) -> list[list[object]]:
    """``[relative path, size]`` of every file below ``folder`` (links and ``skip`` left out)."""
    entries: list[list[object]] = []
    for parent, dirs, names in os.walk(folder):
        dirs[:] = sorted(name for name in dirs if os.path.join(parent, name) != skip)
        for name in sorted(names):
            path = os.path.join(parent, name)
            if os.path.islink(path):
                continue
            entries.append([os.path.relpath(path, folder), os.path.getsize(path)])
    return entries


def seal(env: str, key: str) -> None:
    """Write the manifest, then the marker. ``bytecode_site`` is the folder the site's pycs were
    compiled for (here, while it is staged); they are listed relative to its mirror."""
    site = site_of(env)
    root = os.path.join(env, bytecode.ROOT)
    site_pycs = bytecode.mirror(root, site)
    files = _files(site)
    compiled = _files(site_pycs) if os.path.isdir(site_pycs) else []
    others = _files(root, skip=site_pycs) if os.path.isdir(root) else []
    manifest = {
        "format": FORMAT,
        "key": key,
        "interpreter": interpreter_tag(),
        "created": time.time(),
        "bytes": sum(int(str(size)) for _, size in (*files, *compiled, *others)),
        "files": files,
        "bytecode_site": site,
        "site_bytecode": compiled,
        "stdlib_bytecode": others,
    }
    _write_manifest(env, manifest)


def _write_manifest(env: str, manifest: dict[str, object]) -> None:
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
        manifest = json.loads(data)
        listed = [
            (site_of(env), manifest["files"]),
            (bytecode.mirror(os.path.join(env, bytecode.ROOT), _clean(manifest["bytecode_site"])),
             manifest["site_bytecode"]),
            (os.path.join(env, bytecode.ROOT), manifest["stdlib_bytecode"]),
        ]  # fmt: skip
    except (ValueError, KeyError, TypeError):
        return "its manifest is unreadable"
    if not files:
        return None
    for folder, entries in listed:
        problem = _size_problem(folder, entries)
        if problem is not None:
            return problem
    return None


def _clean(path: object) -> str:
    """``path`` when it is safe to mirror below bytecode/ (absolute, normalised, no ``..``)."""
    if not bytecode.is_clean_absolute(path):
        raise ValueError(f"not a clean absolute path: {path!r}")
    assert isinstance(path, str)
    return path


def _size_problem(folder: str, entries: list[list[object]]) -> str | None:
    for rel, size in entries:
        path = os.path.join(folder, str(rel))
        try:
            actual = os.path.getsize(path)
        except OSError:
            return f"{rel} is missing"
        if actual != size:
            return f"{rel} has {actual} bytes, the manifest says {size}"
    return None


def site_of(env: str) -> str:
    return os.path.join(env, SITE)


def bytecode_of(env: str) -> str:
    """The environment's bytecode tree (`bytecode`)."""
    return os.path.join(env, bytecode.ROOT)


def compiled_for(env: str) -> str | None:
    """The folder the site's pycs were compiled for (the manifest's ``bytecode_site``), or None."""
    try:
        with open(os.path.join(env, MANIFEST), "rb") as handle:
            return _clean(json.load(handle)["bytecode_site"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def size_of(env: str) -> int:
    """Bytes the manifest records (0 when unreadable)."""
    try:
        with open(os.path.join(env, MANIFEST), "rb") as handle:
            return int(json.load(handle).get("bytes", 0))
    except (OSError, ValueError, TypeError):
        return 0
