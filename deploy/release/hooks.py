"""Where plan/apply call the secrets, registry-credential and volume modules (engineer C2's).

C2 writes `deploy.release.secrets_sync`, `registry_auth` and `volumes`; until they merge, these
small stand-ins keep the call sites in place: the secrets check reads the secrets list once
(RunPod never returns values, so existence is all it can check), the others do nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deploy.api import RunPodApi
from deploy.config import LoadedConfig
from deploy.release.checks import Check


def secrets_check(api: RunPodApi, loaded: LoadedConfig, environ: Mapping[str, str]) -> list[Check]:
    """Every runpod-secret the endpoint references exists, or its value is here for `secrets sync`."""
    wanted = [s for s in loaded.config.secrets if s.mode == "runpod-secret"]
    if not wanted:
        return []
    existing = {str(item.get("name", "")).lower() for item in api.list_secrets()}
    checks = []
    for secret in wanted:
        name = loaded.config.secret_name(secret)
        variable = secret.from_env or secret.name
        where = f"secrets.{secret.name}"
        if name.lower() in existing:
            checks.append(Check("secret", True, f"RunPod secret {name} exists", where))
        elif environ.get(variable):
            checks.append(
                Check("secret", True, f"RunPod secret {name} will be created from ${variable}", where)
            )
        else:
            detail = f"RunPod secret {name} does not exist and ${variable} is not set to create it"
            checks.append(Check("secret", False, detail, where))
    return checks


def secrets_sync(api: RunPodApi, loaded: LoadedConfig, environ: Mapping[str, str]) -> dict[str, Any] | None:
    """Create the missing secrets before the endpoint references them (C2's `secrets_sync.sync`)."""
    return None


def registry_ensure(
    api: RunPodApi, loaded: LoadedConfig, environ: Mapping[str, str], *, dry_run: bool
) -> str | None:
    """The registry credential id for the body (C2's `registry_auth.ensure`); None: none configured."""
    return None


def volumes_check(api: RunPodApi, loaded: LoadedConfig, body: dict[str, Any]) -> list[Check]:
    """Each network volume in an allowed data center (C2's `volumes.check`)."""
    return []


def volumes_ensure(api: RunPodApi, loaded: LoadedConfig, *, dry_run: bool) -> list[str]:
    """Create the missing network volumes; their ids (C2's `volumes.ensure`)."""
    return []
