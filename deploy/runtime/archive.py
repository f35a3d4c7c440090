"""Pack an environment into a ``.tar.gz`` for S3, and unpack one safely into a staging folder."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Mapping

from .failure import EXIT_DISK, Failure
from .workdisk import describe_full

SUFFIX = ".tar.gz"
#: No environment archive is smaller: a gzip'd tar of site/, the manifest and the marker.
MIN_SIZE = 100
_SHA256 = re.compile(r"[0-9a-f]{64}")
_COUNT = re.compile(r"[0-9]{1,18}")


def metadata_problem(size: int, metadata: Mapping[str, str]) -> str | None:
    """Why an archive object (``size`` bytes, its ``x-amz-meta-*`` without the prefix) cannot be
    trusted, or None. Both the uploader's ``sha256`` (so the download is checked) and a decimal
    ``unpacked-bytes`` (so the disk preflight means something) are required."""
    digest = metadata.get("sha256")
    if digest is None or not _SHA256.fullmatch(digest):
        return f"its sha256 metadata is {digest!r}, not 64 lowercase hex digits"
    unpacked = metadata.get("unpacked-bytes")
    if unpacked is None or not _COUNT.fullmatch(unpacked) or int(unpacked) == 0:
        return f"its unpacked-bytes metadata is {unpacked!r}, not a positive whole number"
    if size < MIN_SIZE:
        return f"it is {size} bytes, smaller than any environment archive"
    return None


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
        # A symlink's target is relative to its own folder; a hard link names another member,
        # relative to the archive's root.
        base = os.path.dirname(target) if member.issym() else root
        link = os.path.realpath(os.path.join(base, member.linkname))
        if os.path.isabs(member.linkname) or not link.startswith(root + os.sep):
            raise Failure(
                f"archive link {member.name!r} -> {member.linkname!r} leaves the environment; refused"
            )
    elif not (member.isfile() or member.isdir()):
        raise Failure(f"archive member {member.name!r} is not a file, folder or link; archive refused")


def unpack(src: str, dest: str) -> None:
    """Unpack ``src`` into ``dest``; members that would escape it are refused.

    Every member is checked here first (names, link targets, types); the files are then written
    by the system's GNU tar where there is one, else by ``tarfile``.
    """
    root = os.path.realpath(dest)
    try:
        with tarfile.open(src, "r:gz") as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member, root)
            tar_binary = _gnu_tar()
            if tar_binary is None:
                _extract_in_python(tar, members, dest)
                return
    except (tarfile.TarError, EOFError) as exc:
        raise Failure(f"environment archive is damaged ({exc}); it was not used") from None
    _extract_with_tar(tar_binary, src, dest)


def _gnu_tar() -> str | None:
    """GNU tar's path, or None (no tar, or another one such as BusyBox's: see _extract_with_tar)."""
    binary = shutil.which("tar")
    if binary is None:
        return None
    try:
        version = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, check=False, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return binary if "GNU tar" in version.stdout else None


def _extract_in_python(tar: tarfile.TarFile, members: list[tarfile.TarInfo], dest: str) -> None:
    # Python >= 3.11.4 (and Debian's patched 3.11.2) has extraction filters; older ones
    # rely on the check in unpack alone.
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, members=members, filter="data")
    else:  # pragma: no cover - interpreter dependent
        tar.extractall(dest, members=members)  # noqa: S202 (members checked above)


def _extract_with_tar(tar_binary: str, src: str, dest: str) -> None:
    # Why not tarfile: it writes a whole environment (thousands of files) about 10x slower than
    # GNU tar (3.1 s against 0.3 s for botocore's 3,075 files on tmpfs), and the unpack is most
    # of an archive cold start (bench/RESULTS.md, cold start). Safety: every member passed
    # _check_member, and GNU tar (only GNU's: the version is checked) creates a symlink whose
    # target is absolute or holds ".." only after every other member (a placeholder first);
    # the others point below their own folder, so no member is written outside dest through a
    # link. Owners are not kept: the archive's uid/gid mean nothing on this host.
    command = [tar_binary, "-xzf", src, "-C", dest, "--no-same-owner"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise tar_failure(done.stderr, done.returncode, dest)


#: GNU tar's words (strerror) for a disk that filled up: the disk's fault, not the archive's.
_DISK_FULL = ("No space left on device", "Disk quota exceeded")


def tar_failure(stderr: str, status: int, dest: str) -> Failure:
    """The Failure for GNU tar's ``stderr`` and exit ``status`` while unpacking into ``dest``: a
    full disk is `EXIT_DISK` naming it (the bootstrap stops: an install would fill it too); else a
    damaged archive, shown by tar's *first* error (its last line is only "Exiting with failure
    status due to previous errors")."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if any(words in line for line in lines for words in _DISK_FULL):
        return Failure(
            f"no space left on {describe_full(dest)} while unpacking the environment archive", EXIT_DISK
        )
    detail = lines[0] if lines else f"tar exited {status}"
    return Failure(f"environment archive is damaged ({detail}); it was not used")
