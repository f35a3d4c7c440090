"""The bootstrap's settings, read from the environment (the slim Dockerfile's ENV and the endpoint env)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from .failure import Failure


@dataclass(frozen=True)
class S3Settings:
    endpoint_url: str
    bucket: str
    prefix: str
    region: str
    access_key: str
    secret_key: str


@dataclass(frozen=True)
class Settings:
    #: The network volume's mount point; the work disk when it is mounted.
    volume_path: str
    #: The work disk when no volume is mounted (never the OS disk, see `workdisk`).
    work_dir: str | None
    #: The locked requirements inside the image.
    requirements: str
    installer: str
    index_url: str | None
    #: Free space the work disk must have before an install (bytes).
    min_free_volume: int
    #: Free space `/` keeps (bytes), beside the SDK's own percentage check.
    min_free_os: int
    min_os_percent: float
    skip_os_check: bool
    allow_os_disk: bool
    install_attempts: int
    #: Check every file's size on each start, not only the marker and manifest (slow on network volumes).
    verify_files: bool
    lock_stale_s: float
    lock_wait_s: float
    s3: S3Settings | None
    #: Compile the stdlib's bytecode into each environment it provisions (docs/runtime.md,
    #: "Bytecode"); RPDEPLOY_STDLIB_BYTECODE=0 turns it off where install time matters more than
    #: start time (the bootstrap's own tests: seconds per install on 2 cores).
    stdlib_bytecode: bool = True


_MB = 1024 * 1024
#: Upper bounds that no real setting reaches: a petabyte, a week, a hundred attempts.
_MOST_MB = 1e9
_MOST_S = 7 * 24 * 3600.0
_MOST_ATTEMPTS = 100


def _number(env: Mapping[str, str], name: str, default: float, *, most: float, least: float = 0.0) -> float:
    """``env[name]`` as a finite number in ``[least, most]``, else ``default`` when unset or blank.

    Raises Failure (one line naming the variable) for text, inf, nan and values out of range:
    float() accepts "inf", "nan" and "1e400", which would fail later as a traceback."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise Failure(f"{name}={raw!r} is not a number") from None
    if not math.isfinite(value):
        raise Failure(f"{name}={raw!r} is not a finite number")
    if not least <= value <= most:
        raise Failure(f"{name}={raw!r} is out of range: use {least:g} to {most:g}")
    return value


def _whole(env: Mapping[str, str], name: str, default: int, *, most: int, least: int = 0) -> int:
    """`_number` that must also be a whole number (a count)."""
    value = _number(env, name, default, most=most, least=least)
    if not float(value).is_integer():
        raise Failure(f"{name}={env.get(name, '').strip()!r} is not a whole number")
    return int(value)


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _off(env: Mapping[str, str], name: str) -> bool:
    """A flag that is on unless set to 0, false, no or off."""
    return env.get(name, "").strip().lower() in {"0", "false", "no", "off"}


def s3_settings(env: Mapping[str, str]) -> S3Settings | None:
    """S3 archive settings, or None when any part is missing (then the archive step is skipped)."""
    bucket = env.get("RPDEPLOY_S3_BUCKET", "").strip()
    endpoint = env.get("AWS_ENDPOINT_URL", "").strip() or env.get("RPDEPLOY_S3_ENDPOINT", "").strip()
    key = env.get("AWS_ACCESS_KEY_ID", "").strip()
    secret = env.get("AWS_SECRET_ACCESS_KEY", "").strip()
    if not (bucket and endpoint and key and secret):
        return None
    names = ("AWS_REGION", "AWS_DEFAULT_REGION", "RPDEPLOY_S3_REGION")
    regions = (env.get(name, "").strip() for name in names)
    region = next((r for r in regions if r), "us-east-1")
    prefix = env.get("RPDEPLOY_S3_PREFIX", "rpdeploy/envs/").strip().lstrip("/")
    return S3Settings(endpoint.rstrip("/"), bucket, prefix, region, key, secret)


def load(env: Mapping[str, str]) -> Settings:
    installer = env.get("RPDEPLOY_INSTALLER", "pip").strip() or "pip"
    if installer not in {"pip", "uv"}:
        raise Failure(f"RPDEPLOY_INSTALLER={installer!r}: use pip or uv")
    return Settings(
        volume_path=env.get("RPDEPLOY_VOLUME_PATH", "/runpod-volume").strip() or "/runpod-volume",
        work_dir=env.get("RPDEPLOY_WORK_DIR", "").strip() or None,
        requirements=env.get("RPDEPLOY_REQUIREMENTS", "/opt/rpdeploy/requirements.txt"),
        installer=installer,
        index_url=env.get("RPDEPLOY_INDEX_URL", "").strip() or env.get("PIP_INDEX_URL", "").strip() or None,
        min_free_volume=int(_number(env, "RPDEPLOY_MIN_FREE_VOLUME_MB", 2048, most=_MOST_MB) * _MB),
        min_free_os=int(_number(env, "RPDEPLOY_MIN_FREE_OS_MB", 512, most=_MOST_MB) * _MB),
        min_os_percent=_number(env, "RUNPOD_MIN_DISK_PERCENT", 10.0, most=100.0),
        # As the runpod SDK reads it (1.12.0, serverless/modules/rp_fitness.py): "true" only.
        skip_os_check=env.get("RUNPOD_SKIP_AUTO_SYSTEM_CHECKS", "").lower() == "true",
        allow_os_disk=_flag(env, "RPDEPLOY_ALLOW_OS_DISK"),
        install_attempts=_whole(env, "RPDEPLOY_INSTALL_ATTEMPTS", 3, least=1, most=_MOST_ATTEMPTS),
        verify_files=_flag(env, "RPDEPLOY_VERIFY_FILES"),
        lock_stale_s=_number(env, "RPDEPLOY_LOCK_STALE_S", 60.0, least=1.0, most=_MOST_S),
        lock_wait_s=_number(env, "RPDEPLOY_LOCK_WAIT_S", 1800.0, most=_MOST_S),
        s3=s3_settings(env),
        stdlib_bytecode=not _off(env, "RPDEPLOY_STDLIB_BYTECODE"),
    )


def current() -> Settings:
    return load(os.environ)
