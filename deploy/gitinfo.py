"""Facts about the git checkout a build comes from (commit, tag, branch, dirty).

A leaf module: rendering (default image tag), image tagging and labels all read the
same facts from here. Uses the git CLI because it is always present where a repo is,
and a library (GitPython, dulwich) would be a heavy dependency for four commands.
"""

from __future__ import annotations

import ipaddress
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

#: scp-like ssh remotes: ``[user@]host:path`` (no scheme; the path does not start with ``/``).
#: The host is checked separately (`_valid_host`); a one-letter host is a Windows drive (``C:\\x``).
_SCP_REMOTE = re.compile(r"^(?:[^/@]*@)?(?P<host>[^/:@\[\]]{2,}):(?!/)(?P<path>[^@]*)$")
#: git's ``<transport>::<address>`` remotes (``ext::``, ``fd::``, remote helpers): commands, not places.
_TRANSPORT_REMOTE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+.-]*::")
#: One DNS label (RFC 1123): letters, digits and inner hyphens; no underscore, no IDN.
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
#: URL schemes that name a repository on a server; everything else is local or a command.
_HOST_SCHEMES = frozenset({"http", "https", "ssh", "git", "git+ssh", "ssh+git"})


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


def inside_work_tree(root: Path) -> bool:
    """Whether ``root`` is inside a git work tree (with or without commits)."""
    return _git(root, "rev-parse", "--is-inside-work-tree") == "true"


def public_remote_url(remote: str | None) -> str | None:
    """A browsable ``https`` URL for a git remote, with no credentials in it, or None.

    Only four forms name a repository on a server: ``http(s)://``, ``ssh://``,
    ``git://`` and scp-like ``[user@]host:path``, each with a valid DNS name or IP
    address as host. Everything else gives None (no source label): local paths,
    ``file://``, git's ``transport::address`` forms (``ext::ssh -i KEY host %S``
    runs a command; ``fd::3``), other schemes, and any remote holding whitespace or a
    control/format character (it would reach the image label and every terminal raw).

    Parsed, not pattern-stripped: all user info (``user:token@``, even with more
    ``@``/``:`` inside it), the query and the fragment are dropped; ssh and git forms
    become ``https://host/org/repo``; ``.git`` is removed.
    """
    if not remote or not _plain(remote) or _TRANSPORT_REMOTE.match(remote):
        return None
    text = remote
    if "://" not in text:
        scp = _SCP_REMOTE.match(text)
        if not scp:
            return None  # a local path: nothing browsable
        text = f"ssh://{scp['host']}/{scp['path']}"
    try:
        parts = urlsplit(text)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if parts.scheme not in _HOST_SCHEMES or not host or not _valid_host(host) or "\\" in parts.path:
        return None
    scheme = "http" if parts.scheme == "http" else "https"
    # ssh/git ports mean nothing to the web server; an explicit http(s) port does.
    shown_host = f"[{host}]" if ":" in host else host
    netloc = f"{shown_host}:{port}" if port and parts.scheme in ("http", "https") else shown_host
    path = parts.path.rstrip("/").removesuffix(".git")
    return urlunsplit((scheme, netloc, path, "", ""))


def _plain(text: str) -> bool:
    """No whitespace, control or format character anywhere (ESC, BEL, NUL, U+202E, NBSP...)."""
    return text.isprintable() and not any(ch.isspace() for ch in text)


def _valid_host(host: str) -> bool:
    """A DNS name (RFC 1123 labels, at least one letter in the last) or an IP address."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        labels = host.removesuffix(".").split(".")
        return (
            len(host) <= 253
            and all(_LABEL.match(label) for label in labels)
            and not labels[-1].isdigit()  # 1.2.3 is a malformed address, not a name
        )
    return True


def untracked_files(root: Path, paths: list[str]) -> list[str]:
    """Untracked, not ignored files under ``paths`` (they reach a build context without a commit)."""
    out = _git(root, "ls-files", "--others", "--exclude-standard", "--", *paths)
    return out.splitlines() if out else []
