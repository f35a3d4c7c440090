"""OCI image labels (the annotations docker/metadata-action writes) plus rpdeploy's own."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from deploy.errors import UsageError
from deploy.gitinfo import GitInfo, public_remote_url

OCI = "org.opencontainers.image"
#: The label that dates the image (`created_at`): the commit time, never the clock.
CREATED = f"{OCI}.created"
#: rpdeploy's own labels: which config and which runtime lock produced the image.
CONFIG_HASH = "dev.rpdeploy.config-hash"
LOCK_HASH = "dev.rpdeploy.lock-hash"
STRATEGY = "dev.rpdeploy.strategy"
DIRTY = "dev.rpdeploy.dirty"


def created_at(environ: Mapping[str, str], commit_time: int) -> str:
    """RFC 3339 UTC date of the image: ``SOURCE_DATE_EPOCH`` if set, else the commit's time.

    Never the wall clock: the label is part of the image config, so a clock-dated
    label would give every rebuild of the same commit a new image id and digest
    (reproducible-builds.org's SOURCE_DATE_EPOCH convention).
    """
    epoch = environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch:
        if not (epoch.isascii() and epoch.isdigit()) or len(epoch) > 12:
            raise UsageError(f"SOURCE_DATE_EPOCH={epoch[:40]!r} is not a number of seconds since 1970")
        seconds = int(epoch)
    else:
        seconds = commit_time
    try:
        return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, OverflowError, OSError):  # past year 9999: 12 digits pass the check above
        raise UsageError(f"SOURCE_DATE_EPOCH={epoch!r} is past the year 9999") from None


def source_url(git: GitInfo, environ: Mapping[str, str]) -> str | None:
    """Browsable repository URL: GitHub's own in Actions, else ``origin`` without credentials."""
    server, repository = environ.get("GITHUB_SERVER_URL"), environ.get("GITHUB_REPOSITORY")
    if server and repository:
        return public_remote_url(f"{server.removesuffix('/')}/{repository}")
    return public_remote_url(git.remote_url)


def image_labels(
    *,
    title: str,
    version: str,
    git: GitInfo,
    dirty: bool,
    config_hash: str,
    lock_hash: str | None,
    strategy: str,
    environ: Mapping[str, str],
) -> dict[str, str]:
    """Labels for one build; keys sorted so the build's LABEL step is stable."""
    labels = {
        f"{OCI}.title": title,
        f"{OCI}.version": version,
        f"{OCI}.revision": git.sha,
        CREATED: created_at(environ, git.commit_time),
        CONFIG_HASH: config_hash,
        STRATEGY: strategy,
    }
    source = source_url(git, environ)
    if source:
        labels[f"{OCI}.source"] = source
    if lock_hash:
        labels[LOCK_HASH] = lock_hash
    if dirty:
        labels[DIRTY] = "true"
    return dict(sorted(labels.items()))
