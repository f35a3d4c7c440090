"""Where plan/apply meet secrets, registry credentials and network volumes (C2's modules).

`plan` only reads (``dry_run``: a credential or volume still to be created shows as a pending
id); `apply` creates them right before the endpoint write that references them, and syncs
the RunPod secrets when it writes the endpoint or when the preflight says one is missing or
stale. A no-op apply therefore writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from deploy.api import RunPodApi
from deploy.config import LoadedConfig
from deploy.release import registry_auth, secrets_sync, volumes
from deploy.release.checks import Check

Progress = Callable[[str], None]


def checks(
    api: RunPodApi, loaded: LoadedConfig, body: dict[str, Any], environ: Mapping[str, str]
) -> list[Check]:
    """The preflight's volume, registry-credential and secret checks."""
    return [
        *volumes.check(api, loaded, body),
        *registry_auth.check(api, loaded, environ),
        *secrets_sync.check(api, loaded, environ),
    ]


def resolve_ids(
    api: RunPodApi, loaded: LoadedConfig, body: dict[str, Any], environ: Mapping[str, str], *, dry_run: bool
) -> None:
    """Put the registry credential id and the network volume ids into ``body`` (created unless ``dry_run``).

    Only fields ``body`` carries are set: a PATCH body without them does not change them.
    """
    if "registry" in body or loaded.config.image.registry_auth is not None:
        registry = registry_auth.ensure(api, loaded, environ, dry_run=dry_run)
        if registry is not None:
            body["registry"] = registry
    if "networkVolumes" in body and loaded.config.endpoint.named_volumes():
        body["networkVolumes"] = volumes.ensure(api, loaded, dry_run=dry_run)


def secrets_stale(found: list[Check]) -> bool:
    """Whether the secret checks say `secrets sync` has work (a secret to create, rotate or tag)."""
    return any(check.check == "secret" and check.ok and check.pending for check in found)


def sync_secrets(
    api: RunPodApi, loaded: LoadedConfig, environ: Mapping[str, str], progress: Progress
) -> secrets_sync.SecretsSyncResult | None:
    """Create/rotate the runpod-secrets when every value is at hand; None when there is nothing to
    sync or a value is missing (then the preflight has already refused a secret that is absent)."""
    items = secrets_sync.wanted(loaded, environ)
    if not items or any(item.value is None for item in items):
        return None
    result = secrets_sync.sync(api, loaded, environ)
    for action in result.secrets:
        if action.action != "none":
            progress(f"secrets: {action.action} {action.secret} (for {action.name})")
    if result.rotated:
        progress(f"secrets: {secrets_sync.RESTART_NOTE}")
    return result
