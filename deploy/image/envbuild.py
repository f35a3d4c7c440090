"""`rpdeploy env build [--push]`: the slim runtime's environment archive, built ahead of time.

The archive is built *inside the base image* by the bootstrap itself (``--build-archive``,
deploy/runtime/prebuild.py): the same interpreter, so the same key, provisioning and archive
format a worker's cold start computes, and no second implementation here. The bootstrap and
the locked requirements are copied into a container of the base image (``put_archive``, so a
remote engine works too); it runs on the host network (a loopback index or S3 server works,
as for builds), and its archive is copied back to ``build/rpdeploy/envs/<key>.tar.gz``.

With ``push``, the archive goes to ``runtime.s3`` (bucket, prefix, endpoint URL from the
config; credentials from the caller's ``AWS_*`` variables, handed to the container only
and never printed), unless one is already stored under the key (one HEAD: then nothing is
built; ``force`` rebuilds and replaces it; one whose size or metadata is not an archive's is
replaced too). Docs: docs/runtime.md, "Building the archive ahead of time".
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from deploy import files, layout
from deploy.config import LoadedConfig
from deploy.config.mask import Masker
from deploy.errors import BuildError, EngineError, RegistryError, UsageError
from deploy.render.project import BOOTSTRAP_CONTEXT_DIR, bootstrap_files

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

#: Where the bootstrap, the requirements, the work disk and the archive live in the container.
OPT = "/opt/rpdeploy"
BOOTSTRAP = f"{OPT}/rpdeploy_runtime"
REQUIREMENTS = f"{OPT}/requirements.txt"
WORK = "/rpdeploy-work"
OUT = "/rpdeploy-out"
LABEL = "dev.rpdeploy.env-build"
#: How the bootstrap's lines start (deploy/runtime/failure.py).
PREFIX = "rpdeploy-bootstrap:"
#: The container's exit statuses (deploy/runtime/failure.py, prebuild.py): 28 a full or too
#: small disk, 69 S3 refused or failed. Anything else non-zero is a failed build.
EXIT_DISK = 28
EXIT_S3 = 69
#: The caller's variables that hold the S3 credentials (the worker gets them as RunPod secrets).
CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")

Log = Callable[[str], None]


@dataclass(frozen=True)
class EnvArchive:
    """What `build_env` did. ``size`` in bytes; ``archive`` None when an archive already in S3
    made the build unnecessary (``existed``); ``s3_url`` None without ``--push``."""

    key: str
    interpreter: str
    size: int
    sha256: str | None
    unpacked_bytes: int | None
    archive: Path | None
    s3_url: str | None
    uploaded: bool
    existed: bool
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "interpreter": self.interpreter,
            "size": self.size,
            "sha256": self.sha256,
            "unpacked_bytes": self.unpacked_bytes,
            "archive": str(self.archive) if self.archive is not None else None,
            "s3_url": self.s3_url,
            "uploaded": self.uploaded,
            "existed": self.existed,
            "seconds": round(self.seconds, 3),
        }

    @property
    def summary(self) -> str:
        """One line: what happened to which archive."""
        if self.existed:
            return f"{self.s3_url} is there already ({self.size / 1e6:.1f} MB); nothing built"
        where = f", uploaded to {self.s3_url}" if self.uploaded else ""
        return f"built {self.key} ({self.size / 1e6:.1f} MB){where}"


def wanted(loaded: LoadedConfig) -> bool:
    """Whether `rpdeploy release` builds and pushes the archive: a slim image with ``runtime.s3``."""
    config = loaded.config
    return config.image.strategy == "slim" and config.runtime.s3 is not None


def distinct_archives(configs: Iterable[LoadedConfig]) -> list[LoadedConfig]:
    """The configs among ``configs`` that `rpdeploy release` builds an archive for (`wanted`),
    one per archive: environments may override ``runtime:`` (installer, index, S3 bucket and
    prefix, ...), and each environment's workers look for the archive its own settings name.
    Configs that build the same archive in the same place count once (the first), in order."""
    chosen: dict[tuple[object, ...], LoadedConfig] = {}
    for loaded in configs:
        if wanted(loaded):
            place = loaded.config.runtime.model_dump_json(include={"s3"})
            key = (tuple(sorted(container_env(loaded, {}, push=False).items())), place)
            chosen.setdefault(key, loaded)
    return list(chosen.values())


def archive_path(key: str) -> Path:
    """``build/rpdeploy/envs/<key>.tar.gz`` (relative): one per key, whatever the environment."""
    return layout.BUILD_DIR / "envs" / f"{key}.tar.gz"


def container_env(loaded: LoadedConfig, environ: Mapping[str, str], *, push: bool) -> dict[str, str]:
    """The build container's variables: the bootstrap's settings from ``runtime:``; with ``push``
    the S3 location and the caller's credentials. UsageError (exit 2) when ``push`` lacks one."""
    config = loaded.config
    if config.image.strategy != "slim":
        raise UsageError(
            "rpdeploy env build needs image.strategy: slim (a baked image installs its dependencies"
            " at build time)"
        )
    runtime = config.runtime
    env = {
        "RPDEPLOY_WORK_DIR": WORK,
        # A throwaway build container, not a worker: its own layer is the work disk, and the
        # SDK's fitness check of / is the workers' concern.
        "RPDEPLOY_ALLOW_OS_DISK": "1",
        "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
        "RPDEPLOY_REQUIREMENTS": REQUIREMENTS,
        "RPDEPLOY_INSTALLER": runtime.installer,
        "RPDEPLOY_MIN_FREE_VOLUME_MB": str(runtime.disk.min_free_volume_mb),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if runtime.index_url:
        env["RPDEPLOY_INDEX_URL"] = runtime.index_url
    if push:
        env.update(_s3_env(loaded, environ))
    return env


def _s3_env(loaded: LoadedConfig, environ: Mapping[str, str]) -> dict[str, str]:
    s3 = loaded.config.runtime.s3
    if s3 is None:
        raise UsageError(f"{loaded.path.name}: --push needs runtime.s3 (bucket, prefix, endpoint_url)")
    endpoint = s3.endpoint_url or environ.get("AWS_ENDPOINT_URL", "")
    if not endpoint:
        raise UsageError(
            f"{loaded.path.name}: --push needs runtime.s3.endpoint_url"
            " (or AWS_ENDPOINT_URL in the environment)"
        )
    missing = [name for name in CREDENTIALS if not environ.get(name)]
    if missing:
        raise UsageError(
            f"--push needs the S3 credentials in the environment: {' and '.join(missing)} not set"
        )
    region = s3.region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or ""
    env = {
        "RPDEPLOY_S3_BUCKET": s3.bucket,
        "RPDEPLOY_S3_PREFIX": s3.prefix,
        "AWS_ENDPOINT_URL": endpoint,
        **{name: environ[name] for name in CREDENTIALS},
    }
    if region:
        env["RPDEPLOY_S3_REGION"] = region
    return env


def context_tar(requirements: bytes) -> bytes:
    """The tar ``put_archive`` unpacks at ``/``: the bootstrap as the slim image holds it, and
    the requirements under the path the image copies them to (so the key is the workers')."""
    members = {
        f"{BOOTSTRAP}/{PurePosixPath(name).name}": data
        for name, data in bootstrap_files().items()
        if name.startswith(BOOTSTRAP_CONTEXT_DIR + "/")
    }
    members[REQUIREMENTS] = requirements
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for folder in (OPT, BOOTSTRAP):
            info = tarfile.TarInfo(folder.lstrip("/"))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, data in sorted(members.items()):
            info = tarfile.TarInfo(name.lstrip("/"))
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def build_env(
    loaded: LoadedConfig, environ: Mapping[str, str], *, push: bool, log: Log, force: bool = False
) -> EnvArchive:
    """Build (and with ``push`` upload) the environment archive; see the module docstring.
    ``force`` (with ``push``) rebuilds and replaces an archive already in S3.

    Raises UsageError (bad input, exit 2), EngineError (no engine or base image), RegistryError
    (S3 refused or failed), BuildError (the install failed), FileWriteError (local disk).
    """
    from deploy.image.engine import connect  # noqa: PLC0415 (the docker SDK only when needed)

    started = time.perf_counter()
    env = container_env(loaded, environ, push=push)
    requirements = files.read_text(loaded.root, loaded.root / loaded.config.runtime.requirements)
    if requirements is None:
        raise UsageError(f"runtime.requirements: {loaded.config.runtime.requirements} does not exist")
    masker = Masker({environ[name]: name for name in CREDENTIALS if environ.get(name)})
    client = connect()
    base = loaded.config.image.base
    log(f"env: building the environment in {base} ({loaded.config.runtime.installer})")
    command = [
        "--build-archive",
        OUT,
        *(["--push"] if push else []),
        *(["--force"] if push and force else []),
    ]
    container = _create(client, base, env, command)
    try:
        container.put_archive("/", context_tar(requirements.encode()))
        result = _run(container, log, masker, loaded.config.runtime.requirements)
        archive = None
        if result["archive"] is not None:
            archive = _copy_out(loaded.root, container, result)
    finally:
        container.remove(force=True)
    return EnvArchive(
        key=result["key"],
        interpreter=result["interpreter"],
        size=int(result["size"]),
        sha256=result["sha256"],
        unpacked_bytes=result["unpacked_bytes"],
        archive=archive,
        s3_url=result["s3_url"],
        uploaded=bool(result["uploaded"]),
        existed=bool(result["existed"]),
        seconds=time.perf_counter() - started,
    )


def _create(client: DockerClient, base: str, env: dict[str, str], command: list[str]) -> Container:
    import docker.errors  # noqa: PLC0415

    from deploy.image.engine import first_line  # noqa: PLC0415

    try:
        try:
            client.images.get(base)
        except docker.errors.ImageNotFound:
            client.images.pull(base)
        return client.containers.create(
            base,
            entrypoint=["python3", BOOTSTRAP],
            command=command,
            environment=env,
            network_mode="host",  # a loopback index or S3 server, as for builds
            labels={LABEL: "1"},
        )
    except docker.errors.DockerException as exc:
        raise EngineError(f"cannot start a container of the base image {base}: {first_line(exc)}") from None


def _run(container: Container, log: Log, masker: Masker, requirements: str) -> dict[str, Any]:
    """Start, relay the progress lines, wait; the bootstrap's JSON result, or its one-line error."""
    container.start()
    last, pending = "", ""
    for raw in container.logs(stdout=False, stderr=True, stream=True, follow=True):
        *lines, pending = (pending + raw.decode("utf-8", "replace")).split("\n")
        for line in lines:
            shown = progress_line(line, masker, requirements)
            if shown is not None:
                # One line behind, as it comes (an install is minutes of silence otherwise): the
                # last one is the error when the build fails, printed once, as the error.
                if last:
                    log(f"env: {last}")
                last = shown
    status = int(container.wait()["StatusCode"])
    out = container.logs(stdout=True, stderr=False).decode("utf-8", "replace").strip()
    if status == 0 and last:
        log(f"env: {last}")
    if status != 0:
        message = f"rpdeploy env build: {last or f'the build container exited {status}'}"
        if status == EXIT_S3:
            raise RegistryError(message)
        if status == EXIT_DISK:
            raise EngineError(message)
        raise BuildError(message)
    try:
        found: dict[str, Any] = json.loads(out.splitlines()[-1])
    except (ValueError, IndexError):
        raise BuildError(
            f"rpdeploy env build: the build container printed no result ({out[-200:]!r})"
        ) from None
    return found


def progress_line(line: str, masker: Masker, requirements: str | None = None) -> str | None:
    """A build container's stderr ``line`` as shown: the bootstrap's own lines without their
    prefix, the credentials masked (longest first: the access key id may be part of the secret),
    the container's copy of the requirements named as the project's ``requirements`` file;
    None for the installer's lines (noise here)."""
    if not line.startswith(PREFIX):
        return None
    shown = masker.text(line.removeprefix(PREFIX).strip())  # the prefix first: a key id may be in it
    return shown.replace(REQUIREMENTS, requirements) if requirements else shown


def _copy_out(root: Path, container: Container, result: Mapping[str, Any]) -> Path:
    """The archive from the container to ``build/rpdeploy/envs/<key>.tar.gz``, its sha256 checked."""
    stream, _ = container.get_archive(result["archive"])
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream)), mode="r") as tar:
        member = tar.next()
        handle = tar.extractfile(member) if member is not None else None
        data = handle.read() if handle is not None else b""
    if hashlib.sha256(data).hexdigest() != result["sha256"]:
        raise BuildError(
            "rpdeploy env build: the archive copied out of the container does not match its sha256"
        )
    return files.write_bytes(root, root / archive_path(result["key"]), data)
