"""Where plan/apply meet secrets, registry credentials and network volumes (C2's modules).

`plan` only reads (``dry_run``: a credential or volume still to be created shows as a pending
id) and lists what apply will create (`resources`); `apply` creates exactly those: the
missing secrets, then the credential and volumes right before the endpoint write that
references them. Apply never rotates a secret (a stale one is a preflight warning that
points at `rpdeploy secrets sync`), so a no-op apply with every secret present writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from deploy.api import RunPodApi
from deploy.config import LoadedConfig
from deploy.release import registry_auth, secrets_sync, volumes
from deploy.release.checks import Check, pending_id

Progress = Callable[[str], None]
#: How a dry run shows an id still to be created: ``(new: NAME)``.
PENDING = pending_id("")[:-1]


def checks(
    api: RunPodApi,
    loaded: LoadedConfig,
    body: dict[str, Any],
    environ: Mapping[str, str],
    secrets: list[dict[str, Any]],
) -> list[Check]:
    """The preflight's volume, registry-credential and secret checks (``secrets``: the list read once)."""
    return [
        *volumes.check(api, loaded, body),
        *registry_auth.check(api, loaded, environ),
        *secrets_sync.check(loaded, environ, secrets),
    ]


def resources(body: Mapping[str, Any], found: list[Check]) -> list[dict[str, str]]:
    """What `apply` creates besides the endpoint, as ``{kind, name, action}``: the missing secrets,
    the registry credential and the network volumes that the dry run showed as pending ids."""
    out = [
        {"kind": "secret", "name": check.resource, "action": "create"}
        for check in found
        if check.check == "secret" and check.pending and check.resource
    ]
    registry = body.get("registry")
    if isinstance(registry, str) and registry.startswith(PENDING):
        out.append({"kind": "registry-auth", "name": registry[len(PENDING) : -1], "action": "create"})
    for volume in body.get("networkVolumes") or []:
        if isinstance(volume, str) and volume.startswith(PENDING):
            out.append({"kind": "network-volume", "name": volume[len(PENDING) : -1], "action": "create"})
    return out


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


def create_secrets(
    api: RunPodApi, loaded: LoadedConfig, environ: Mapping[str, str], planned: list[dict[str, str]]
) -> list[str]:
    """Create the secrets the plan listed as missing (never a rotation: that is `secrets sync`)."""
    names = [item["name"] for item in planned if item["kind"] == "secret"]
    return secrets_sync.create_missing(api, loaded, environ, names) if names else []
