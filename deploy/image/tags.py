"""Image tags from git, following docker/metadata-action's conventions.

Rules (metadata-action's priorities; the highest names `org.opencontainers.image.version`):

- ``X.Y.Z`` and ``X.Y`` from a ``vX.Y.Z`` tag on HEAD (semver, 900); a pre-release
  (``v1.2.0-rc.1``) gives only its full version, as metadata-action does.
- ``pr-<N>`` in pull-request CI (``GITHUB_EVENT_NAME`` pull_request[_target],
  ``GITHUB_REF=refs/pull/N/merge``), else the sanitized branch name (ref, 600).
- ``sha-<7>``, always (sha, 100). This is the immutable tag deploys use.
- ``latest`` only when asked (``image.latest``), and only for a clean tree.

A dirty tree (uncommitted changes to tracked files, or untracked files inside the
build context) must not produce a tag that pretends to be a commit: it gets exactly
one tag, ``sha-<7>-dirty-<12 hex of the build context's sha256>``. The same dirty
content gives the same tag, different content a different one, and no semver, branch
or ``latest`` tag ever points at uncommitted code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from deploy.config import LoadedConfig
from deploy.errors import UsageError
from deploy.gitinfo import GitInfo, inside_work_tree, read_git

_SEMVER = re.compile(
    r"^v?(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)
#: The immutable tag forms `compute_tags` makes: ``sha-<7>`` and ``sha-<7>-dirty-<12 hex>``.
IMMUTABLE_TAG = re.compile(r"^sha-[0-9a-f]{7,40}(?:-dirty-[0-9a-f]{12})?$")
_PR_REF = re.compile(r"^refs/pull/(?P<number>\d+)/")
_TAG_MAX = 128
PR_EVENTS = frozenset({"pull_request", "pull_request_target"})


@dataclass(frozen=True)
class TagSet:
    """Tags for one build, highest priority first."""

    #: Tag names (no repository), the immutable one last.
    tags: tuple[str, ...]
    #: The immutable tag: ``sha-<7>`` or ``sha-<7>-dirty-<hash>`` (what deploys reference).
    immutable: str
    #: Value for ``org.opencontainers.image.version`` (highest-priority tag).
    version: str
    dirty: bool


def sanitize(name: str) -> str:
    """A branch name as a Docker tag: metadata-action's rule (anything else → ``-``), 128 chars."""
    tag = re.sub(r"[^a-zA-Z0-9._-]+", "-", name)
    # A tag may not start with '.' or '-' (Docker's grammar).
    tag = tag.lstrip(".-")
    return tag[:_TAG_MAX]


def semver_tags(tag: str | None) -> list[str]:
    """``X.Y.Z`` and ``X.Y`` for ``vX.Y.Z``; only the full version for a pre-release."""
    match = _SEMVER.match(tag) if tag else None
    if not match:
        return []
    version = f"{match['major']}.{match['minor']}.{match['patch']}"
    if match["pre"]:
        return [sanitize(f"{version}-{match['pre']}")]
    return [version, f"{match['major']}.{match['minor']}"]


def ref_tag(git: GitInfo, environ: Mapping[str, str]) -> str | None:
    """``pr-<N>`` in pull-request CI, else the branch (GitHub's ref first, then git's)."""
    github_ref = environ.get("GITHUB_REF", "")  # pragma: no mutate - any non-ref default acts as ""
    if environ.get("GITHUB_EVENT_NAME") in PR_EVENTS:
        match = _PR_REF.match(github_ref)
        return f"pr-{match['number']}" if match else None
    if github_ref.startswith("refs/heads/"):
        return sanitize(github_ref.removeprefix("refs/heads/")) or None
    if github_ref.startswith("refs/tags/"):
        return None  # a tag push: the semver tags describe it
    return sanitize(git.branch) if git.branch else None


def git_tag(git: GitInfo, environ: Mapping[str, str]) -> str | None:
    """The tag on HEAD: git's answer, or GitHub's ref for a tag push."""
    if git.tag:
        return git.tag
    github_ref = environ.get("GITHUB_REF", "")  # pragma: no mutate - any non-ref default acts as ""
    return github_ref.removeprefix("refs/tags/") if github_ref.startswith("refs/tags/") else None


def compute_tags(
    git: GitInfo,
    environ: Mapping[str, str],
    *,
    dirty: bool,
    context_digest: str,
    latest: bool = False,
) -> TagSet:
    """Every tag for a build of ``git``'s HEAD (see the module docstring for the rules)."""
    sha_tag = f"sha-{git.short}"
    if dirty:
        immutable = f"{sha_tag}-dirty-{context_digest.removeprefix('sha256:')[:12]}"
        return TagSet(tags=(immutable,), immutable=immutable, version=immutable, dirty=True)
    ordered: list[str] = [*semver_tags(git_tag(git, environ))]
    ref = ref_tag(git, environ)
    if ref:
        ordered.append(ref)
    if latest:
        ordered.append("latest")
    ordered.append(sha_tag)
    # Keep the first occurrence (a branch called "latest" or "1.2" must not repeat a tag).
    unique = tuple(dict.fromkeys(ordered))
    version = next(t for t in unique if t != "latest")  # there is always sha_tag
    return TagSet(tags=unique, immutable=sha_tag, version=version, dirty=False)


def require_git(loaded: LoadedConfig, hint: str) -> GitInfo:
    """The project's git facts; `UsageError` (with ``hint``) when it is not a checkout with commits."""
    git = read_git(loaded.root)
    if git is None:
        # A fresh `git init` is a checkout too: saying "not a git checkout" there misleads.
        state = "a git checkout with no commit yet" if inside_work_tree(loaded.root) else "not a git checkout"
        raise UsageError(f"{loaded.root}: {state}, so there is no commit to tag the image with", hint=hint)
    return git


def default_image(loaded: LoadedConfig) -> str:
    """The immutable tag `rpdeploy build` gives this commit: ``<registry>/<repo>:sha-<7>``.

    Used by `rpdeploy render` when no ``--image`` is given; `UsageError` outside git.
    """
    git = require_git(loaded, "pass --image REF (an immutable tag or digest)")
    image = loaded.config.image
    return f"{image.registry}/{image.repository}:sha-{git.short}"
