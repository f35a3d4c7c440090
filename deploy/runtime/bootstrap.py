"""The slim image's entry point: work disk, provisioning (volume, S3 archive or install), then start.

Order at cold start (docs/runtime.md):
1. choose the work disk and point every temp/cache/build variable at it;
2. a complete environment for the key on the work disk is used at once;
3. else, under a lock shared through the disk, an archive from S3 is downloaded, checked and
   unpacked, or the requirements are installed; the result is published with one rename;
4. after an install, the environment is packed and uploaded for the next workers (best effort);
5. the handler starts with the environment on PYTHONPATH and its bytecode as PYTHONPYCACHEPREFIX.

Imports: the modules only a cold start without an environment needs (S3, archives, installs,
the lock) are imported where they are used. No stdlib bytecode exists in the image (docs/runtime.md,
"Bytecode"), so every module imported before the environment is found is compiled from source:
on the warm path, that was half of the bootstrap's 0.6 s.
"""

from __future__ import annotations

import errno
import os
import shutil
import sys
import tempfile

from . import envstore, workdisk
from .failure import EXIT_DISK, Failure, disk_error, say
from .settings import Settings, load

#: The archive needs about this many times its size free: itself plus the unpacked files.
_UNPACK_FACTOR = 4


def object_key(settings: Settings, key: str) -> str:
    assert settings.s3 is not None
    from . import archive  # noqa: PLC0415 (cold path)

    return f"{settings.s3.prefix}{key}{archive.SUFFIX}"


def read_requirements(settings: Settings) -> bytes:
    try:
        with open(settings.requirements, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise Failure(f"cannot read the requirements {settings.requirements}: {exc.strerror}") from None


def provision(settings: Settings, disk: workdisk.WorkDisk, env: dict[str, str]) -> str:
    """The folder of a complete environment for the requirements (provisioned when needed)."""
    key = envstore.env_key(read_requirements(settings))
    store = envstore.Store(disk)
    store.ensure_layout()
    verify = settings.verify_files
    problem = store.problem(key, files=verify)
    if problem is None:
        say(f"environment {key} is ready on {disk.path}")
        return store.env_dir(key)
    if problem != "absent":
        say(f"environment {key} on {disk.path} is unusable ({problem}); rebuilding it")
    from . import lock  # noqa: PLC0415 (cold path: see the module's docstring)

    held = lock.Lock(store.lock_path(key), settings.lock_stale_s)
    if not lock.wait_for(held, lambda: store.problem(key, files=verify) is None, settings.lock_wait_s):
        say(f"environment {key} was provisioned by another worker; using it")
        return store.env_dir(key)
    installed = False
    try:
        if store.problem(key, files=verify) is None:  # finished between our check and the lock
            return store.env_dir(key)
        for name in store.clean_staging(key):
            say(f"removed the leftover staging folder {name} of an interrupted provisioning")
        staging = store.new_staging(key)
        if not _try_archive(settings, disk, key, staging):
            _install(settings, disk, env, staging)
            installed = True
        target = store.publish(key, staging, sealed=not installed)
    finally:
        held.release()
    say(f"environment {key} published at {target}")
    if installed:
        _upload(settings, disk, key, target)
    return target


def _install(settings: Settings, disk: workdisk.WorkDisk, env: dict[str, str], staging: str) -> None:
    """Install the requirements into ``staging``'s site, then compile its bytecode (and the stdlib's)."""
    from . import bytecode, install  # noqa: PLC0415 (cold path)

    workdisk.preflight(disk, settings.min_free_volume, "the install")
    site = envstore.site_of(staging)
    install.install(settings, disk, env, site)
    say("compiling the bytecode of the environment" + (" and the stdlib" if settings.stdlib_bytecode else ""))
    bytecode.compile_tree(os.path.join(staging, bytecode.ROOT), site, env, stdlib=settings.stdlib_bytecode)


def _try_archive(settings: Settings, disk: workdisk.WorkDisk, key: str, staging: str) -> bool:
    """The archive when it can be had; any S3 or archive problem is logged and the install runs."""
    try:
        return _from_archive(settings, disk, key, staging)
    except Failure as failure:
        if failure.code == EXIT_DISK:
            raise
        say(f"warning: {failure.message}; installing instead")
        shutil.rmtree(staging, ignore_errors=True)
        os.makedirs(envstore.site_of(staging))
        return False


def _from_archive(settings: Settings, disk: workdisk.WorkDisk, key: str, staging: str) -> bool:
    """Download and unpack the archive into ``staging``; False when there is none (or no S3)."""
    if settings.s3 is None:
        return False
    from . import archive, s3  # noqa: PLC0415 (cold path)

    client = s3.Client(settings.s3)
    name = object_key(settings, key)
    info = client.head(name)
    if info is None:
        say(f"no environment archive at s3://{settings.s3.bucket}/{name}; installing")
        return False
    problem = archive.metadata_problem(info.size, info.metadata)
    if problem is not None:  # whatever put it there, it is replaced by the upload after the install
        raise Failure(f"the archive s3://{settings.s3.bucket}/{name} is not usable ({problem})")
    unpacked = int(info.metadata["unpacked-bytes"])
    workdisk.preflight(disk, max(info.size * _UNPACK_FACTOR, info.size + unpacked), "the archive")
    say(f"downloading s3://{settings.s3.bucket}/{name} ({info.size / 1e6:.1f} MB)")
    download = os.path.join(staging, "archive" + archive.SUFFIX)
    try:
        client.get_file(name, download)
        shutil.rmtree(envstore.site_of(staging))
        archive.unpack(download, staging)
    finally:
        if os.path.exists(download):
            os.unlink(download)
    problem = envstore.check(staging)
    if problem is not None:
        raise Failure(f"the archive s3://{settings.s3.bucket}/{name} is incomplete ({problem}); delete it")
    return True


def _upload(settings: Settings, disk: workdisk.WorkDisk, key: str, env_dir: str) -> None:
    """Pack and upload for the next workers; a failure is logged, never fatal."""
    if settings.s3 is None:
        return
    from . import archive, s3  # noqa: PLC0415 (cold path)

    name = object_key(settings, key)
    packed = os.path.join(disk.sub("tmp"), f"{key}.{os.getpid()}{archive.SUFFIX}")
    try:
        archive.pack(env_dir, packed)
        s3.Client(settings.s3).put_file(name, packed, {"unpacked-bytes": str(envstore.size_of(env_dir))})
        size = os.path.getsize(packed) / 1e6
        say(f"uploaded the environment to s3://{settings.s3.bucket}/{name} ({size:.1f} MB)")
    except (Failure, OSError) as exc:
        say(f"warning: uploading the environment archive failed, continuing: {_text(exc)}")
    finally:
        if os.path.exists(packed):
            os.unlink(packed)


def _text(exc: BaseException) -> str:
    return exc.message if isinstance(exc, Failure) else f"{type(exc).__name__}: {exc}"


def handler_environment(env: dict[str, str], env_dir: str) -> dict[str, str]:
    """The handler's environment: the provisioned site first on PYTHONPATH, its scripts on PATH,
    and a per-container view of the environment's bytecode as PYTHONPYCACHEPREFIX, with
    PYTHONDONTWRITEBYTECODE=1 (deploy/runtime/bytecode.py). An endpoint that sets
    PYTHONPYCACHEPREFIX itself keeps it (and so does without the environment's bytecode)."""
    site = envstore.site_of(env_dir)
    out = dict(env)
    if not env.get("PYTHONPYCACHEPREFIX"):
        prefix = _bytecode_view(env_dir, site, env)
        if prefix is not None:
            out["PYTHONPYCACHEPREFIX"] = prefix
            out["PYTHONDONTWRITEBYTECODE"] = "1"
    out["PYTHONPATH"] = os.pathsep.join(p for p in (site, env.get("PYTHONPATH", "")) if p)
    out["PATH"] = os.pathsep.join(p for p in (os.path.join(site, "bin"), env.get("PATH", os.defpath)) if p)
    out["RPDEPLOY_ENV_DIR"] = env_dir
    return out


#: Where the per-container bytecode view goes: the container's own /tmp (it dies with the
#: container, and holds two links), else the work disk's tmp/ (a read-only root without /tmp).
_VIEW_PARENTS = ("/tmp",)  # noqa: S108 (a private mkdtemp folder)


def _bytecode_view(env_dir: str, site: str, env: dict[str, str]) -> str | None:
    """`bytecode.view` for ``env_dir``; None (a warning: imports compile from source) when the
    manifest names no compiled site or no folder can hold the view."""
    from . import bytecode  # noqa: PLC0415 (a small module; imported once the prefix is known)

    compiled = envstore.compiled_for(env_dir)
    if compiled is None:
        say(f"warning: {env_dir} has no usable bytecode record; modules are compiled from source")
        return None
    for parent in (*_VIEW_PARENTS, env["TMPDIR"]):
        try:
            return bytecode.view(envstore.bytecode_of(env_dir), compiled, site, parent)
        except OSError:
            continue
    say(
        "warning: no folder for the bytecode view (/tmp and TMPDIR refused); modules are compiled from source"
    )
    return None


def main(argv: list[str]) -> int:
    """``[--provision-only] | --build-archive OUT [--push] | <handler command...>``.

    Returns (or execs) with the documented status."""
    disk: workdisk.WorkDisk | None = None
    try:
        settings = load(os.environ)
        disk = workdisk.choose(settings)
        env = workdisk.environment(disk, dict(os.environ))
        os.environ.update(env)  # for this process too (tempfile, pip subprocesses)
        tempfile.tempdir = env["TMPDIR"]
        workdisk.check_os_disk(settings)
        if argv[:1] == ["--build-archive"]:  # `rpdeploy env build`, inside the base image
            from . import prebuild  # noqa: PLC0415 (it imports this module)

            return prebuild.main(argv, settings, disk, env)
        env_dir = provision(settings, disk, env)
        if argv == ["--provision-only"]:
            print(env_dir)
            return 0
        handler_env = handler_environment(env, env_dir)
        # This process's own remaining imports read the same bytecode.
        sys.pycache_prefix = handler_env.get("PYTHONPYCACHEPREFIX") or sys.pycache_prefix
        from . import start  # noqa: PLC0415 (after the prefix is set)

        try:
            return start.start(argv, handler_env)  # returns only as init, once the handler ended
        finally:
            if handler_env.get("PYTHONPYCACHEPREFIX") != env.get("PYTHONPYCACHEPREFIX"):
                shutil.rmtree(handler_env["PYTHONPYCACHEPREFIX"], ignore_errors=True)  # our view
    except Failure as failure:
        say(failure.message)
        return failure.code
    except OSError as exc:
        where = exc.filename if isinstance(exc.filename, str) else (disk.path if disk else "/")
        if exc.errno == errno.ENOSPC:
            say(f"no space left on {workdisk.describe_full(where)} ({exc.strerror})")
            return EXIT_DISK
        message, code = disk_error(exc, where, disk.path if disk else None)
        say(message)
        return code


if __name__ == "__main__":  # pragma: no cover - see __main__.py
    sys.exit(main(sys.argv[1:]))
