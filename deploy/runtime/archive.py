"""Pack an environment into a ``.tar.gz`` for S3, and unpack one safely into a staging folder."""

from __future__ import annotations

import os
import tarfile

from .failure import Failure

SUFFIX = ".tar.gz"


def pack(env: str, dest: str) -> None:
    """``env``'s contents (site/, manifest, marker last) as a gzip tar at ``dest``."""
    names = sorted(os.listdir(env))
    # The marker goes last, so even a tar cut short and unpacked could never look complete.
    names.sort(key=lambda name: name == "COMPLETE")
    with tarfile.open(dest, "w:gz", compresslevel=3) as tar:
        for name in names:
            tar.add(os.path.join(env, name), arcname=name)


def _check_member(member: tarfile.TarInfo, root: str) -> None:
    target = os.path.realpath(os.path.join(root, member.name))
    if os.path.isabs(member.name) or not target.startswith(root + os.sep):
        raise Failure(f"archive member {member.name!r} points outside the environment; archive refused")
    if member.issym() or member.islnk():
        link = os.path.realpath(os.path.join(os.path.dirname(target), member.linkname))
        if os.path.isabs(member.linkname) or not link.startswith(root + os.sep):
            raise Failure(
                f"archive link {member.name!r} -> {member.linkname!r} leaves the environment; refused"
            )
    elif not (member.isfile() or member.isdir()):
        raise Failure(f"archive member {member.name!r} is not a file, folder or link; archive refused")


def unpack(src: str, dest: str) -> None:
    """Unpack ``src`` into ``dest``; members that would escape it are refused."""
    root = os.path.realpath(dest)
    try:
        with tarfile.open(src, "r:gz") as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member, root)
            # Python >= 3.11.4 (and Debian's patched 3.11.2) has extraction filters; older ones
            # rely on the check above alone.
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, members=members, filter="data")
            else:  # pragma: no cover - interpreter dependent
                tar.extractall(dest, members=members)  # noqa: S202 (members checked above)
    except (tarfile.TarError, EOFError) as exc:
        raise Failure(f"environment archive is damaged ({exc}); it was not used") from None
