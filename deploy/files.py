"""Every file rpdeploy reads from or writes into a project goes through here.

Two promises, kept in one place so no caller can forget them:

- **Confinement**: a path is resolved (symlinks followed) and refused with
  `OutsideProject` when it lands outside the project root. A committed
  ``templates/Dockerfile.slim.j2 -> /etc/passwd`` or ``Dockerfile.slim -> /outside``
  is named in one line instead of being read into a CI log or overwritten.
- **Atomic writes**: content goes to a temporary file in the target's own folder,
  is fsynced, then `os.replace`d over the target, so a full disk, a read-only file
  system or a kill leaves either the old file or the new one, never a half-written
  or 0-byte one. OS errors become `FileWriteError` naming the path and saying
  whether a read or a write failed (exit code 3, like any resource that refuses).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from deploy.errors import FileWriteError, OutsideProject


def _shown(path: Path, root: Path) -> str:
    """``path`` as the user can find it: relative to the working folder when inside it, else absolute.

    (Relative to ``root`` would mislead when ``root`` is an ``--out`` folder elsewhere.)
    """
    full = path if path.is_absolute() else root / path
    cwd = Path.cwd()
    return str(full.relative_to(cwd)) if full.is_relative_to(cwd) else str(full)


def confined(root: Path, path: Path) -> Path:
    """``path`` (absolute or relative to ``root``) resolved; `OutsideProject` if it leaves ``root``.

    Every component is resolved, so a linked folder (``build -> /tmp/x``) is caught
    as well as a linked file. A path that does not exist yet is fine as long as
    what exists of it stays inside.
    """
    base = root.resolve()
    candidate = path if path.is_absolute() else root / path
    resolved = candidate.resolve()
    if not resolved.is_relative_to(base):
        link = _first_link_out(root, candidate, base)
        raise OutsideProject(
            f"{_shown(link, root)}: a link leading outside the project (to {link.resolve()}); "
            "refusing to follow it",
            hint="replace the symlink with a regular file or folder inside the project",
        )
    return resolved


def _first_link_out(root: Path, candidate: Path, base: Path) -> Path:
    """The first component of ``candidate`` whose resolution leaves ``base`` (the link to name)."""
    current = candidate.anchor and Path(candidate.anchor)
    for part in candidate.parts[1:] if candidate.is_absolute() else candidate.parts:
        current = Path(current) / part if current else Path(part)
        if current.is_symlink() and not current.resolve().is_relative_to(base):
            return current
    return candidate


def read_text(root: Path, path: Path) -> str | None:
    """Text of a project file (None when missing), refusing links that leave the project."""
    resolved = confined(root, path)
    try:
        return resolved.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        # ENOTDIR: a component on the way is a file (``--out /dev/full``), so this file
        # cannot exist; the write that follows reports it, as a write.
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise FileWriteError(f"{_shown(path, root)}: cannot read: {_reason(exc)}") from None


def write_text(root: Path, path: Path, content: str) -> Path:
    """Write ``content`` to ``path`` inside ``root`` atomically; return the resolved path."""
    return write_bytes(root, path, content.encode("utf-8"))


def write_bytes(root: Path, path: Path, data: bytes, mode: int = 0o644) -> Path:
    """Atomic, confined write: temp file in the same folder, fsync, `os.replace`.

    Raises `OutsideProject` for a link leading out, `FileWriteError` for an OS error
    (ENOSPC, EACCES, EROFS, …); in both cases the target is untouched.
    """
    return write_many(root, {path: data}, mode)[0]


def write_many(root: Path, contents: dict[Path, bytes], mode: int = 0o644) -> list[Path]:
    """Write several files as one step: every temp file is complete before any is renamed.

    A full disk therefore fails while staging and leaves every target as it was
    (render's Dockerfile and .dockerignore never disagree). Returns resolved paths.
    """
    staged: list[tuple[str, Path, Path]] = []
    try:
        for path, data in contents.items():
            staged.append((_stage(root, path, data, mode), confined(root, path), path))
        for tmp_name, target, path in staged:
            try:
                os.replace(tmp_name, target)
            except OSError as exc:
                raise FileWriteError(f"{_shown(path, root)}: cannot write: {_reason(exc)}") from None
        for folder in {target.parent for _, target, _ in staged}:
            _fsync_folder(folder)
    finally:
        for tmp_name, _, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
    return [target for _, target, _ in staged]


def _fsync_folder(folder: Path) -> None:
    """Make the renames durable (a crash right after must not bring the old names back)."""
    with contextlib.suppress(OSError):  # some file systems cannot fsync a folder; the rename stands
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _stage(root: Path, path: Path, data: bytes, mode: int) -> str:
    """A complete, fsynced temp file beside ``path``'s target; its name."""
    target = confined(root, path)
    blocker = _not_a_folder(target.parent)
    if blocker is not None:
        # mkdir would say "File exists" or "Not a directory": name the file in the way instead.
        raise FileWriteError(f"{_shown(path, root)}: cannot write: {blocker} is a file, not a folder")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Checked again: a folder that already existed on the way could be a link leading out.
        confined(root, target)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise FileWriteError(f"{_shown(path, root)}: cannot write: {_reason(exc)}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise FileWriteError(f"{_shown(path, root)}: cannot write: {_reason(exc)}") from None
    return tmp_name


def make_folder(folder: Path, what: str = "folder") -> Path:
    """Create ``folder`` (and its parents); `FileWriteError` naming it when the disk refuses.

    For folders outside any project (the emulator's ``--state``), so no confinement.
    """
    blocker = _not_a_folder(folder)
    if blocker is not None:
        raise FileWriteError(f"{folder}: cannot create the {what}: {blocker} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileWriteError(f"{folder}: cannot create the {what}: {_reason(exc)}") from None
    return folder


def _not_a_folder(folder: Path) -> Path | None:
    """The nearest existing component of ``folder`` that is not a folder (``/dev/full``), if any."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)
