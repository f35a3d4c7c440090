"""The build context: a deterministic tar of what the rendered .dockerignore lets through.

The rendered Dockerfile and .dockerignore come from memory (`render_project`), not
from disk, so a build never depends on `rpdeploy render` having been run first and a
stale committed Dockerfile cannot sneak in. Entries are sorted and carry a fixed
mtime and owner, so the same sources give the same bytes (and the same digest, which
names dirty builds in `deploy.image.tags`).
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

from docker.utils.build import exclude_paths

from deploy.errors import UsageError

DOCKERIGNORE = ".dockerignore"


@dataclass(frozen=True)
class BuildContext:
    #: The tar (uncompressed) the engine receives.
    data: bytes
    #: Name of the Dockerfile inside the tar.
    dockerfile: str
    #: Project files in the tar (relative paths, regular files and links), sorted.
    files: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.data).hexdigest()


def ignore_patterns(dockerignore: str) -> list[str]:
    """Patterns of a .dockerignore text (comments and blank lines dropped, as Docker does)."""
    lines = (line.strip() for line in dockerignore.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def build_context(
    root: Path, *, dockerfile_name: str, dockerfile: str, dockerignore: str, mtime: int = 0
) -> BuildContext:
    """Tar the files of ``root`` that ``dockerignore`` admits, plus the two rendered files."""
    if not root.is_dir():
        raise UsageError(f"{root}: build context directory does not exist")
    # docker-py implements .dockerignore exactly as the Docker CLI does (negations included).
    admitted = sorted(exclude_paths(str(root), ignore_patterns(dockerignore), dockerfile=dockerfile_name))
    generated = {dockerfile_name: dockerfile, DOCKERIGNORE: dockerignore}
    buffer = io.BytesIO()
    files: list[str] = []
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for rel in admitted:
            if rel in generated:
                continue
            info = _tarinfo(root / rel, rel, mtime)
            if info is None:
                continue
            if info.isfile():
                with (root / rel).open("rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
            if not info.isdir():
                files.append(rel)
        for name, content in sorted(generated.items()):
            encoded = content.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(encoded), 0o644, mtime
            tar.addfile(info, io.BytesIO(encoded))
    return BuildContext(data=buffer.getvalue(), dockerfile=dockerfile_name, files=tuple(files))


def _tarinfo(path: Path, arcname: str, mtime: int) -> tarfile.TarInfo | None:
    """A normalised entry (owner root, fixed mtime, permission bits kept); None for sockets etc."""
    try:
        st = path.lstat()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read for the build context: {exc.strerror}") from None
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
