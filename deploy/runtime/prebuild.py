"""``--build-archive OUT [--push [--force]]``: the environment archive built ahead of time
(`rpdeploy env build`).

`rpdeploy env build` runs this inside the base image, so the interpreter (and so the key) is
the one the workers run. It is the cold start's own code: the same key (`envstore.env_key`),
the same provisioning (`bootstrap.provision`, with S3 turned off so nothing is downloaded or
uploaded behind our back) and the same archive format (`archive.pack`). With ``--push`` a HEAD
first: an archive already under the key whose size and metadata are an archive's is left as it
is and nothing is built (``--force`` rebuilds and replaces it); otherwise the archive is built
and uploaded, and a failed upload is fatal here (at a cold start it is only a warning).

The result is one JSON object on stdout (the progress lines go to stderr):
``{"key", "interpreter", "archive", "size", "sha256", "unpacked_bytes", "s3_url", "uploaded",
"existed"}``; ``archive`` is the path inside the container, ``size`` bytes.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from typing import Any

from . import archive, bootstrap, envstore, s3, workdisk
from .failure import Failure, say
from .settings import Settings

#: Exit status when S3 refused or failed (sysexits.h EX_UNAVAILABLE): the caller reports a
#: resource failure, not a build failure. Used by this mode only, never at a cold start.
EXIT_S3 = 69


def build(
    settings: Settings,
    disk: workdisk.WorkDisk,
    env: dict[str, str],
    out: str,
    *,
    push: bool,
    force: bool = False,
) -> dict[str, Any]:
    """Build (or, with ``push``, find) the archive for the requirements; the JSON result.

    With ``force`` an archive already under the key is rebuilt and replaced."""
    key = envstore.env_key(bootstrap.read_requirements(settings))
    result: dict[str, Any] = {
        "key": key, "interpreter": envstore.interpreter_tag(), "archive": None, "size": None,
        "sha256": None, "unpacked_bytes": None, "s3_url": None, "uploaded": False, "existed": False,
    }  # fmt: skip
    client = _client(settings) if push else None
    if client is not None:
        name = bootstrap.object_key(settings, key)
        result["s3_url"] = f"s3://{client.settings.bucket}/{name}"
        found = _s3(lambda: client.head(name))
        if found is not None and _usable(result["s3_url"], found, force=force):
            say(f"{result['s3_url']} is there already ({found.size / 1e6:.1f} MB); nothing to build")
            result.update(existed=True, size=found.size, sha256=found.metadata["sha256"])
            result["unpacked_bytes"] = int(found.metadata["unpacked-bytes"])
            return result
    env_dir = bootstrap.provision(replace(settings, s3=None), disk, env)
    packed = _pack(env_dir, out, key)
    result.update(
        archive=packed,
        size=os.path.getsize(packed),
        sha256=s3.file_sha256(packed),
        unpacked_bytes=envstore.size_of(env_dir),
    )
    if client is not None:
        meta = {"unpacked-bytes": str(result["unpacked_bytes"])}
        _s3(lambda: client.put_file(bootstrap.object_key(settings, key), packed, meta))
        say(f"uploaded {result['s3_url']} ({result['size'] / 1e6:.1f} MB)")
        result["uploaded"] = True
    return result


def _usable(url: str, found: s3.ObjectInfo, *, force: bool) -> bool:
    """Whether the object already under the key can stand for the build: its size and metadata
    are an archive's (`archive.metadata_problem`; a cold start downloads it and checks the bytes
    against that sha256). Anything else is rebuilt and replaced, as is everything with ``force``."""
    if force:
        say(f"{url} is there already; --force: building and replacing it")
        return False
    problem = archive.metadata_problem(found.size, found.metadata)
    if problem is not None:
        say(f"{url} is there already but is not usable ({problem}); building and replacing it")
        return False
    return True


def _client(settings: Settings) -> s3.Client:
    if settings.s3 is None:
        raise Failure(
            "--push needs RPDEPLOY_S3_BUCKET, AWS_ENDPOINT_URL (or RPDEPLOY_S3_ENDPOINT),"
            " AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    return s3.Client(settings.s3)


def _s3(step: Any) -> Any:
    """``step()``, an S3 failure turned into `EXIT_S3`."""
    try:
        return step()
    except s3.S3Failure as failure:
        raise Failure(failure.message, EXIT_S3) from None


def _pack(env_dir: str, out: str, key: str) -> str:
    """``<out>/<key>.tar.gz``, written under a temporary name and renamed: never half a file."""
    os.makedirs(out, exist_ok=True)
    dest = os.path.join(out, key + archive.SUFFIX)
    partial = f"{dest}.{os.getpid()}.partial"
    try:
        archive.pack(env_dir, partial)
        os.replace(partial, dest)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return dest


def main(argv: list[str], settings: Settings, disk: workdisk.WorkDisk, env: dict[str, str]) -> int:
    """``--build-archive OUT [--push [--force]]``: prints the result as one JSON line."""
    rest = argv[1:]
    push, force = "--push" in rest, "--force" in rest
    rest = [arg for arg in rest if arg not in {"--push", "--force"}]
    if len(rest) != 1 or (force and not push):
        raise Failure("usage: --build-archive OUT [--push [--force]]")
    result = build(settings, disk, env, rest[0], push=push, force=force)
    print(json.dumps(result, sort_keys=True), flush=True)
    return 0
