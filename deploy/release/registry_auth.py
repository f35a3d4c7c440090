"""Registry credentials for private images (`/v2/registries`): RunPod's workers pull with them.

REST v2 has no update route for a credential (create and delete only), and never returns
the user name or password. So the credential's name carries a fingerprint of them:
``<project>/<registry host>/<8 hex>``, where the hex is a PBKDF2-SHA256 hash of user
and password salted with project and host. The same credentials find the same
credential (an apply that changes nothing writes nothing); a new password makes a new
one, which the endpoint then references. The fingerprint is deterministic (it must be
found again), so it is slow (600,000 iterations) and short (32 bits): whoever can list
the account's credentials learns too little to test password guesses cheaply.

Superseded credentials of the project and host are deleted once no endpoint references
them: `ensure` runs before the endpoint's PATCH, while the old one is still in use, so
it deletes what earlier applies left behind, and `prune` (for after the PATCH) deletes
at once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any, Final

from deploy.api import RunPodApi
from deploy.config.load import LoadedConfig
from deploy.config.schema import RegistryAuth
from deploy.errors import UsageError
from deploy.release.checks import Check, pending_id

ITERATIONS: Final = 600_000


def credentials(auth: RegistryAuth, environ: Mapping[str, str]) -> tuple[str, str]:
    """(user, password) from the variables ``auth`` names; UsageError naming every unset one."""
    missing = [name for name in (auth.username_env, auth.password_env) if not environ.get(name)]
    if missing:
        raise UsageError(
            f"image.registry_auth needs these variables set and not empty: {', '.join(missing)}",
            hint="export them (in CI: from the repository's secrets); values never appear in output",
        )
    return environ[auth.username_env], environ[auth.password_env]


def _prefix(loaded: LoadedConfig) -> str:
    config = loaded.config
    return f"{config.project}/{config.image.registry}/"


def credential_name(loaded: LoadedConfig, username: str, password: str) -> str:
    """``<project>/<registry host>/<8 hex>``: the same credentials always give the same name."""
    prefix = _prefix(loaded)
    # NUL cannot occur in either value, so (user, password) pairs never run together.
    secret = f"{username}\0{password}".encode()
    digest = hashlib.pbkdf2_hmac("sha256", secret, f"rpdeploy-registry:{prefix}".encode(), ITERATIONS)
    return prefix + digest.hex()[:8]


def _ours(loaded: LoadedConfig) -> re.Pattern[str]:
    """Names of this project's credentials for its registry host (any fingerprint)."""
    return re.compile(re.escape(_prefix(loaded)) + r"[0-9a-f]{8}")


def ensure(api: RunPodApi, loaded: LoadedConfig, environ: Mapping[str, str], *, dry_run: bool) -> str | None:
    """The registry credential id for the endpoint body (`registry`), created when missing.

    None when the config sets no ``image.registry_auth`` (then ``endpoint.registry``, an
    id managed elsewhere, is the answer). With ``dry_run`` nothing is written and a
    credential to create shows as `pending_id`.
    """
    auth = loaded.config.image.registry_auth
    if auth is None:
        return loaded.config.endpoint.registry
    username, password = credentials(auth, environ)
    name = credential_name(loaded, username, password)
    registries = api.list_registries()  # one read finds ours and the superseded ones
    current = next((r for r in registries if r.get("name") == name), None)
    if dry_run:
        return str(current["id"]) if current else pending_id(name)
    if current is None:
        current = api.create_registry(name, username, password)
    _delete_unused(api, loaded, [r for r in registries if r is not current], keep=str(current["id"]))
    return str(current["id"])


def prune(api: RunPodApi, loaded: LoadedConfig, *, keep: str) -> list[str]:
    """Delete this project's credentials for its registry host that no endpoint references,
    except ``keep``; their names (for after the endpoint's PATCH has moved to ``keep``)."""
    return _delete_unused(api, loaded, api.list_registries(), keep=keep)


def _delete_unused(
    api: RunPodApi, loaded: LoadedConfig, registries: list[dict[str, Any]], *, keep: str
) -> list[str]:
    ours = _ours(loaded)
    candidates = [r for r in registries if ours.fullmatch(str(r.get("name"))) and str(r.get("id")) != keep]
    if not candidates:
        return []  # the usual case: no endpoint listing needed
    # Another environment of the project may still use one (staging with an older password).
    used = {str(ep.get("registry")) for ep in api.list_endpoints() if ep.get("registry")}
    deleted = []
    for registry in candidates:
        if str(registry["id"]) not in used:
            api.delete_registry(str(registry["id"]))
            deleted.append(str(registry["name"]))
    return deleted


def check(api: RunPodApi, loaded: LoadedConfig, environ: Mapping[str, str]) -> list[Check]:
    """The preflight's word on the credential: variables set, credential there or to be created."""
    auth = loaded.config.image.registry_auth
    if auth is None:
        return []
    where = "image.registry_auth"
    missing = [name for name in (auth.username_env, auth.password_env) if not environ.get(name)]
    if missing:
        return [
            Check("registry", False, f"${' and $'.join(missing)} not set: no credential to pull with", where)
        ]
    name = credential_name(loaded, *credentials(auth, environ))
    exists = any(r.get("name") == name for r in api.list_registries())
    detail = f"credential {name} " + ("exists" if exists else "is missing: apply creates it")
    return [Check("registry", True, detail, where)]
