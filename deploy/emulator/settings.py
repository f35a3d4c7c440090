"""Emulator settings: where it listens, where it keeps state, and the worker-plane knobs.

Worker-plane and timing knobs come from ``RPDEPLOY_EMULATOR_*`` environment
variables (documented in docs/emulator.md), so tests and the background `start`
form pass them the same way; bind address, port, state dir and key are flags.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from deploy.errors import UsageError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787
DEFAULT_STATE = Path(".state/emulator")
ENV_PREFIX = "RPDEPLOY_EMULATOR_"
T = TypeVar("T", int, float)


def _env_number(name: str, default: T, parse: Callable[[str], T], what: str) -> T:
    raw = os.environ.get(ENV_PREFIX + name)
    if raw is None or raw == "":
        return default
    try:
        return parse(raw)
    except ValueError:
        raise UsageError(f"{ENV_PREFIX}{name}={raw!r} is not {what}") from None


def _env_int(name: str, default: int) -> int:
    return _env_number(name, default, int, "an integer")


def _env_float(name: str, default: float) -> float:
    return _env_number(name, default, float, "a number")


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(ENV_PREFIX + name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise UsageError(f"{ENV_PREFIX}{name}={raw!r} is not a boolean (use true or false)")


@dataclass(frozen=True)
class WorkerKnobs:
    """How worker containers are run. Defaults follow RunPod; the rest are test knobs."""

    #: Mount the image read-only, as a stand-in for RunPod's small OS disk (writes go to /tmp).
    read_only_rootfs: bool = False
    #: Size of the tmpfs mounted at /tmp when the root filesystem is read-only (MB, at least 1:
    #: a tmpfs of size 0 has no limit).
    tmp_size_mb: int = 64
    #: Container disk in GB for every worker (None: the endpoint's `disk`). Enforced through the
    #: engine's storage quota where the storage driver supports it (overlay2 on xfs with pquota).
    container_disk_gb: int | None = None
    #: RUNPOD_PING_INTERVAL handed to workers (ms).
    ping_interval_ms: int = 10_000
    #: How long job-take and job-stop long polls are held (the SDK gives up after 90 s).
    long_poll_s: float = 30.0
    #: Pause before retrying a worker that failed to start or crashed (doubles up to 30 s).
    restart_backoff_s: float = 1.0
    #: Cold host: remove the endpoint's image from the engine before each worker start, so every
    #: start pulls it from the registry as a RunPod host that never ran it does (containers.py).
    cold_host: bool = False

    @classmethod
    def from_env(cls) -> WorkerKnobs:
        disk = _env_int("CONTAINER_DISK_GB", 0)
        tmp_size_mb = _env_int("TMP_SIZE_MB", 64)
        if tmp_size_mb < 1:
            raise UsageError(f"{ENV_PREFIX}TMP_SIZE_MB={tmp_size_mb} is not a size: give 1 (MB) or more")
        return cls(
            read_only_rootfs=_env_bool("READ_ONLY_ROOTFS", False),
            tmp_size_mb=tmp_size_mb,
            container_disk_gb=disk or None,
            ping_interval_ms=_env_int("PING_INTERVAL_MS", 10_000),
            long_poll_s=_env_float("LONG_POLL_S", 30.0),
            restart_backoff_s=_env_float("RESTART_BACKOFF_S", 1.0),
            cold_host=_env_bool("COLD_HOST", False),
        )


@dataclass(frozen=True)
class EmulatorSettings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    state_dir: Path = DEFAULT_STATE
    api_key: str = ""
    #: Seconds between webhook attempts (RunPod: 10 s; tests shorten it).
    webhook_retry_interval_s: float = 10.0
    #: How often the sweeper applies TTLs, retention and execution timeouts.
    sweep_interval_s: float = 0.25
    workers: WorkerKnobs = field(default_factory=WorkerKnobs)

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def label(self) -> str:
        """Value of the docker label that marks every container this emulator starts."""
        return state_label(self.state_dir)

    @property
    def db_path(self) -> Path:
        return self.state_dir / "emulator.sqlite3"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"


def state_label(state_dir: Path) -> str:
    """A short, stable id of a state directory (the container label value)."""
    return hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:12]


def check_bind(host: str, allow_remote: bool) -> None:
    """Refuse a non-loopback bind unless asked: the emulator has one shared key and runs containers."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not allow_remote:
        raise UsageError(
            f"--host {host} is not a loopback address",
            hint="the emulator binds to loopback by default; pass --allow-remote to expose it",
        )


API_KEY_FILE = "api-key"
WORKER_KEY_FILE = "worker-key"


def load_or_create_key(state_dir: Path, name: str) -> str:
    """A key stored (mode 0600) in the state dir, generated on first use."""
    path = state_dir / name
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    state_dir.mkdir(parents=True, exist_ok=True)
    key = "rpa_emu_" + secrets.token_hex(20)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    return key


def settings_from_env(
    host: str,
    port: int,
    state_dir: Path,
    api_key: str | None,
    allow_remote: bool,
    *,
    tiny_os_disk_mb: int | None = None,
    cold_host: bool = False,
) -> EmulatorSettings:
    """Settings for a server process: flags first, then RUNPOD_API_KEY, then the stored key.

    ``tiny_os_disk_mb`` (--tiny-os-disk): workers get a read-only root and a tmpfs /tmp of that
    many MB, whatever the READ_ONLY_ROOTFS / TMP_SIZE_MB variables say. ``cold_host``
    (--cold-host): each worker start pulls the image again, whatever COLD_HOST says.
    """
    check_bind(host, allow_remote)
    if not 0 < port < 65536:
        raise UsageError(f"--port {port} is not a TCP port")
    workers = WorkerKnobs.from_env()
    if tiny_os_disk_mb is not None:
        workers = replace(workers, read_only_rootfs=True, tmp_size_mb=tiny_os_disk_mb)
    if cold_host:
        workers = replace(workers, cold_host=True)
    key = api_key or os.environ.get("RUNPOD_API_KEY") or load_or_create_key(state_dir, API_KEY_FILE)
    return EmulatorSettings(
        host=host,
        port=port,
        state_dir=state_dir.resolve(),
        api_key=key,
        webhook_retry_interval_s=_env_float("WEBHOOK_RETRY_INTERVAL_S", 10.0),
        sweep_interval_s=_env_float("SWEEP_INTERVAL_S", 0.25),
        workers=workers,
    )
