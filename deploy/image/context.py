"""The build context: a deterministic tar of what the rendered .dockerignore lets through.

The rendered Dockerfile and .dockerignore come from memory (`render_project`), not
from disk, so a build never depends on `rpdeploy render` having been run first and a
stale committed Dockerfile cannot sneak in. Entries are sorted and carry a fixed
mtime and owner, so the same sources give the same bytes (and the same digest, which
names dirty builds in `deploy.image.tags`).

The tar is streamed into an anonymous temporary file and hashed as it is written,
never held in memory: a 1 GB file in the handler folder costs 1 GB of disk for the
duration of the build, and a few hundred kB of memory. A link leading outside the
project is refused (`OutsideProject`), never archived.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import stat
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from docker.utils.build import exclude_paths

from deploy.errors import FileWriteError, UsageError
from deploy.files import confined

DOCKERIGNORE = ".dockerignore"


@dataclass(frozen=True)
class BuildContext:
    #: The tar (uncompressed) the engine receives, in an anonymous temporary file.
    file: IO[bytes]
    #: Name of the Dockerfile inside the tar.
    dockerfile: str
    #: Project files in the tar (relative paths, regular files and links), sorted.
    files: tuple[str, ...]
    #: Bytes of the tar.
    size: int
    #: ``sha256:<hex>`` of the tar.
    digest: str

    def open(self) -> IO[bytes]:
        """The tar, rewound to its start (each builder streams it from there)."""
        self.file.seek(0)
        return self.file

    def read(self) -> bytes:
        """The whole tar in memory: for tests and small contexts only."""
        return self.open().read()


class _HashingWriter(io.RawIOBase):
    """Writes through to a file and hashes what passes (one pass, no second read)."""

    def __init__(self, target: IO[bytes]) -> None:
        self.target = target
        self.sha = hashlib.sha256()
        self.count = 0

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.sha.update(data)
        self.count += len(data)
        return self.target.write(data)

    def tell(self) -> int:
        return self.count


def ignore_patterns(dockerignore: str) -> list[str]:
    """Patterns of a .dockerignore text (comments and blank lines dropped, as Docker does)."""
    lines = (line.strip() for line in dockerignore.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def build_context(
    root: Path,
    *,
    dockerfile_name: str,
    dockerfile: str,
    dockerignore: str,
    mtime: int = 0,
    extra: Mapping[str, bytes] | None = None,
) -> BuildContext:
    """Tar the files of ``root`` that ``dockerignore`` admits, plus the two rendered files and
    ``extra`` (files rpdeploy supplies, such as the slim image's bootstrap; they win over
    project files of the same name)."""
    if not root.is_dir():
        raise UsageError(f"{root}: build context directory does not exist")
    # docker-py implements .dockerignore exactly as the Docker CLI does (negations included).
    admitted = sorted(exclude_paths(str(root), ignore_patterns(dockerignore), dockerfile=dockerfile_name))
    generated = {
        name: content.encode()  # UTF-8
        for name, content in ((dockerfile_name, dockerfile), (DOCKERIGNORE, dockerignore))
    }
    generated.update(extra or {})
    # Not a `with`: the file outlives this function (the builder streams it); closed on error.
    # Anonymous (O_TMPFILE on Linux): no name to choose, nothing left behind by a crash.
    target = tempfile.TemporaryFile()  # noqa: SIM115
    writer = _HashingWriter(target)
    files: list[str] = []
    try:
        with tarfile.open(fileobj=writer, mode="w", format=tarfile.GNU_FORMAT) as tar:
            for rel in admitted:
                if rel not in generated and _add(tar, root, rel, mtime):
                    files.append(rel)
            for name, encoded in sorted(generated.items()):
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(encoded), 0o644, mtime
                tar.addfile(info, io.BytesIO(encoded))
        target.flush()
    except OSError as exc:
        _discard(target)
        where = tempfile.gettempdir()
        raise FileWriteError(
            f"build context: {exc.strerror or exc} (writing its temporary file in {where})",
            hint="free space there, or set TMPDIR to a folder with room for the context",
        ) from None
    except BaseException:
        _discard(target)
        raise
    return BuildContext(
        file=target,
        dockerfile=dockerfile_name,
        files=tuple(files),
        size=writer.count,
        digest="sha256:" + writer.sha.hexdigest(),
    )


def _discard(target: IO[bytes]) -> None:
    """Close (and so delete) the temporary tar; its buffered tail may fail on a full disk too."""
    with contextlib.suppress(OSError):
        target.close()


def _add(tar: tarfile.TarFile, root: Path, rel: str, mtime: int) -> bool:
    """Add one admitted path; True when it is a file or link (not a folder or a socket)."""
    path = root / rel
    try:
        info = _tarinfo(path, rel, mtime)
        handle = path.open("rb") if info is not None and info.isfile() else None
    except OSError as exc:  # gone since it was listed, unreadable, or no file descriptor left
        raise UsageError(f"{path}: cannot read for the build context: {exc.strerror}") from None
    if info is None:
        return False
    if info.issym():
        confined(root, path)  # a link is archived as a link, but only one that stays inside
    if handle is None:
        tar.addfile(info)
    else:
        # Outside the try: an error here is most likely the temporary file's disk (ENOSPC).
        with handle:
            tar.addfile(info, handle)
    return not info.isdir()


def _tarinfo(path: Path, arcname: str, mtime: int) -> tarfile.TarInfo | None:
    """A normalised entry (owner root, fixed mtime, permission bits kept); None for sockets etc.

    `OSError` when ``path`` cannot be read (`_add` names it)."""
    st = path.lstat()
    info = tarfile.TarInfo(arcname)
    info.mode = stat.S_IMODE(st.st_mode)
    info.mtime = mtime
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(st.st_mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
    elif stat.S_ISREG(st.st_mode):
        info.size = st.st_size
    else:
        return None
    return info
