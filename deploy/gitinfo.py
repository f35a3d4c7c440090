"""Facts about the git checkout a build comes from (commit, tag, branch, dirty).

A leaf module: rendering (default image tag), image tagging and labels all read the
same facts from here. Uses the git CLI because it is always present where a repo is,
and a library (GitPython, dulwich) would be a heavy dependency for four commands.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

#: scp-like ssh remotes: ``[user@]host:path`` (no scheme; the path does not start with ``/``).
_SCP_REMOTE = re.compile(r"^(?:[^/]*@)?(?P<host>[A-Za-z0-9.-]+):(?!/)(?P<path>[^@]+)$")


@dataclass(frozen=True)
class GitInfo:
    sha: str
    #: Exact tag on HEAD (e.g. ``v1.2.3``), if any.
    tag: str | None
    #: Current branch, or None when detached.
    branch: str | None
    #: Uncommitted changes to tracked files.
    dirty: bool
    #: ``origin`` URL as git has it (may carry credentials: use `public_remote_url`).
    remote_url: str | None
    #: Committer time of HEAD, Unix seconds (what a reproducible build is dated with).
    commit_time: int = 0

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
    head = _git(root, "log", "-1", "--format=%H %ct", "HEAD")
    if not head:
        return None
    sha, _, when = head.partition(" ")
    branch = _git(root, "symbolic-ref", "--short", "-q", "HEAD") or None
    tag = _git(root, "describe", "--tags", "--exact-match", "HEAD") or None
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return GitInfo(
        sha=sha,
        tag=tag,
        branch=branch,
        dirty=bool(status),
        remote_url=_git(root, "config", "--get", "remote.origin.url") or None,
        commit_time=int(when) if when.isdigit() else 0,
    )


def public_remote_url(remote: str | None) -> str | None:
    """A browsable ``https`` URL for a git remote, with no credentials in it.

    Parsed, not pattern-stripped: all user info (``user:token@``, even with more
    ``@``/``:`` inside it), the query and the fragment are dropped; scp-like ssh
    remotes (``git@github.com:org/repo.git``) and ``ssh://``/``git://`` URLs become
    ``https://host/org/repo``; ``.git`` is removed. None for local paths, ``file://``
    and anything that does not parse as a host URL.
    """
    if not remote:
        return None
    text = remote.strip()
    scp = _SCP_REMOTE.match(text)
    if "://" not in text:
        if not scp:
            return None  # a local path: nothing browsable
        text = f"ssh://{scp['host']}/{scp['path']}"
    try:
        parts = urlsplit(text)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https", "ssh", "git", "git+ssh", "ssh+git") or not host:
        return None
    scheme = "http" if parts.scheme == "http" else "https"
    # ssh/git ports mean nothing to the web server; an explicit http(s) port does.
    shown_host = f"[{host}]" if ":" in host else host
    netloc = f"{shown_host}:{port}" if port and parts.scheme in ("http", "https") else shown_host
    path = parts.path.rstrip("/").removesuffix(".git")
    return urlunsplit((scheme, netloc, path, "", ""))


def untracked_files(root: Path, paths: list[str]) -> list[str]:
    """Untracked, not ignored files under ``paths`` (they reach a build context without a commit)."""
    out = _git(root, "ls-files", "--others", "--exclude-standard", "--", *paths)
    return out.splitlines() if out else []
