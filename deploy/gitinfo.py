"""Facts about the git checkout a build comes from (commit, tag, branch, dirty).

A leaf module: rendering (default image tag), image tagging and labels all read the
same facts from here. Uses the git CLI because it is always present where a repo is,
and a library (GitPython, dulwich) would be a heavy dependency for four commands.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GitInfo:
    sha: str
    #: Exact tag on HEAD (e.g. ``v1.2.3``), if any.
    tag: str | None
    #: Current branch, or None when detached.
    branch: str | None
    #: Uncommitted changes to tracked files.
    dirty: bool
    #: ``origin`` URL, for ``org.opencontainers.image.source``.
    remote_url: str | None

    @property
    def short(self) -> str:
        return self.sha[:7]


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def read_git(root: Path) -> GitInfo | None:
    """Git facts for ``root``, or None when it is not inside a git work tree with commits."""
    sha = _git(root, "rev-parse", "HEAD")
    if not sha:
        return None
    branch = _git(root, "symbolic-ref", "--short", "-q", "HEAD") or None
    tag = _git(root, "describe", "--tags", "--exact-match", "HEAD") or None
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return GitInfo(
        sha=sha,
        tag=tag,
        branch=branch,
        dirty=bool(status),
        remote_url=_git(root, "config", "--get", "remote.origin.url") or None,
    )


def untracked_files(root: Path, paths: list[str]) -> list[str]:
    """Untracked, not ignored files under ``paths`` (they reach a build context without a commit)."""
    out = _git(root, "ls-files", "--others", "--exclude-standard", "--", *paths)
    return out.splitlines() if out else []
