"""OCI image labels (the annotations docker/metadata-action writes) plus rpdeploy's own."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime

from deploy.errors import UsageError
from deploy.gitinfo import GitInfo

OCI = "org.opencontainers.image"
#: rpdeploy's own labels: which config and which runtime lock produced the image.
CONFIG_HASH = "dev.rpdeploy.config-hash"
LOCK_HASH = "dev.rpdeploy.lock-hash"
STRATEGY = "dev.rpdeploy.strategy"
DIRTY = "dev.rpdeploy.dirty"

_SCP_REMOTE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?P<path>[^/].*)$")


def created_at(environ: Mapping[str, str], now: datetime | None = None) -> str:
    """RFC 3339 UTC build time; ``SOURCE_DATE_EPOCH`` wins, for reproducible builds."""
    epoch = environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch:
        if not epoch.isdigit():
            raise UsageError(f"SOURCE_DATE_EPOCH={epoch!r} is not a number of seconds since 1970")
        moment = datetime.fromtimestamp(int(epoch), tz=UTC)
    else:
        moment = now or datetime.now(tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def source_url(git: GitInfo, environ: Mapping[str, str]) -> str | None:
    """Browsable repository URL: GitHub's own in Actions, else ``origin`` without credentials."""
    server, repository = environ.get("GITHUB_SERVER_URL"), environ.get("GITHUB_REPOSITORY")
    if server and repository:
        return f"{server.rstrip('/')}/{repository}"
    remote = git.remote_url
    if not remote:
        return None
    scp = _SCP_REMOTE.match(remote)
    if scp and "://" not in remote:
        remote = f"https://{scp['host']}/{scp['path']}"
    # A token in an https remote (https://user:token@host/...) must never reach a label.
    remote = re.sub(r"^(\w+://)[^/@]*@", r"\1", remote)
    return remote.removesuffix(".git")


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
        f"{OCI}.created": created_at(environ),
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
