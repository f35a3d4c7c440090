"""`secrets sync`: create and rotate the RunPod secrets a config references (`/v2/account/secrets`).

Values come from the process environment (GitHub secrets in CI). RunPod never returns a
secret's value, so a changed value is detected through the secret's description: every
write stores a salted hash of the value there (`value_tag`), and the next sync compares
the value it has against that hash. A salted, slow hash (PBKDF2-SHA256, 600,000
iterations, OWASP's 2023 figure) because anyone who can read the account's secret list
can read descriptions: the tag must not let them test guesses of a value cheaply.
A secret with no tag (made by hand) is rotated once, which sets the value and the tag.

A rotation reaches only workers that start after it (runpod-platform.md §6.1): running
workers keep the old value until they restart, which the result says.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets as stdlib_secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from deploy.api import Conflict, RunPodApi
from deploy.config.load import LoadedConfig
from deploy.config.schema import SecretConfig
from deploy.errors import UsageError
from deploy.release.checks import Check

#: Version 1 of the tag: PBKDF2-HMAC-SHA256 with this many iterations, 16 random bytes of salt.
ITERATIONS: Final = 600_000
TAG_PREFIX: Final = "rpdeploy:v1:sha256"
_TAG: Final = re.compile(r"rpdeploy:v1:sha256:([0-9a-f]{32}):([0-9a-f]{64})")
#: RunPod's limit on a secret value (runpod-platform.md §6.1).
MAX_VALUE_BYTES: Final = 16_777_215

Action = Literal["create", "rotate", "none"]

#: What `sync` says after a rotation. There is no roll-only release in the deploy engine yet,
#: so no `--recycle`: the note says what restarts workers.
RESTART_NOTE: Final = (
    "running workers keep the old value of a rotated secret until they restart:"
    " a new release (an apply that changes the image or env) or scaling workers to zero restarts them"
)


def value_tag(value: str, salt: str | None = None) -> str:
    """``rpdeploy:v1:sha256:<salt>:<hex>`` for ``value``; a new random salt unless one is given."""
    salt = salt if salt is not None else stdlib_secrets.token_hex(16)
    return f"{TAG_PREFIX}:{salt}:{_digest(value, salt)}"


@functools.lru_cache(maxsize=64)
def _digest(value: str, salt: str) -> str:
    # Cached: plan/apply's preflight and the sync that follows compare the same stored tag,
    # and each derivation costs most of a second by design. Process memory already holds the value.
    return hashlib.pbkdf2_hmac("sha256", value.encode(), bytes.fromhex(salt), ITERATIONS).hex()


def tag_matches(description: str | None, value: str) -> bool | None:
    """Whether the tag in ``description`` is that of ``value``; None when there is no tag."""
    found = _TAG.search(description or "")
    if found is None:
        return None
    return hmac.compare_digest(value_tag(value, found.group(1)), found.group(0))


def with_tag(description: str | None, tag: str) -> str:
    """``description`` with its tag replaced by ``tag`` (or added): other text is the owner's."""
    if description and _TAG.search(description):
        return _TAG.sub(tag, description, count=1)
    return f"{description} {tag}" if description else f"managed by rpdeploy: {tag}"


@dataclass(frozen=True)
class Wanted:
    """One RunPod secret a config references, with the value the process environment holds."""

    secret: str  # the RunPod secret name
    entry: SecretConfig
    index: int  # in the config's `secrets:` list, for messages
    value: str | None  # None: the variable is unset or empty

    @property
    def variable(self) -> str:
        return self.entry.from_env or self.entry.name


def wanted(loaded: LoadedConfig, environ: Mapping[str, str]) -> list[Wanted]:
    """Every runpod-secret of the config, once per RunPod name, in config order."""
    config = loaded.config
    found: dict[str, Wanted] = {}
    for index, entry in enumerate(config.secrets):
        if entry.mode != "runpod-secret":
            continue
        name = config.secret_name(entry)
        item = Wanted(name, entry, index, environ.get(entry.from_env or entry.name) or None)
        first = found.setdefault(name, item)
        if first is not item and first.value != item.value:
            raise UsageError(
                f"secrets[{first.index}] and secrets[{index}] both set the RunPod secret {name!r},"
                f" from ${first.variable} and ${item.variable}, which differ: give one a `secret:` name"
            )
    return list(found.values())


def require_values(loaded: LoadedConfig, environ: Mapping[str, str]) -> dict[str, str]:
    """RunPod name -> value; UsageError naming every unset or unusable variable (before any API call)."""
    return _values(wanted(loaded, environ))


def _values(items: list[Wanted]) -> dict[str, str]:
    missing = [f"{item.variable} (secrets[{item.index}])" for item in items if item.value is None]
    if missing:
        raise UsageError(
            f"secrets sync needs these variables set and not empty: {', '.join(missing)}",
            hint="export them (in CI: from the repository's secrets); values never appear in output",
        )
    values = {item.secret: item.value for item in items if item.value is not None}
    large = [i.variable for i in items if len(values[i.secret].encode()) > MAX_VALUE_BYTES]
    if large:
        raise UsageError(f"RunPod takes at most {MAX_VALUE_BYTES} bytes per secret: {', '.join(large)}")
    return values


def _lookup(secrets: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    """The secret named exactly ``name``; UsageError when one differs only in case (RunPod's
    name filter ignores case, so creating ours could clash while a reference misses theirs)."""
    exact = next((secret for secret in secrets if secret.get("name") == name), None)
    if exact is not None:
        return exact
    other = next((s for s in secrets if str(s.get("name")).lower() == name.lower()), None)
    if other is not None:
        raise UsageError(
            f"RunPod has a secret {other.get('name')!r}, which differs from {name!r} only in case:"
            " a reference names one exactly; rename one of them"
        )
    return None


def listed(api: RunPodApi, loaded: LoadedConfig, environ: Mapping[str, str]) -> list[dict[str, Any]]:
    """The account's secrets, read once per command (none read when the config has no runpod-secret)."""
    return api.list_secrets() if wanted(loaded, environ) else []


def check(loaded: LoadedConfig, environ: Mapping[str, str], existing: list[dict[str, Any]]) -> list[Check]:
    """One preflight `Check` per runpod-secret, against ``existing`` (`listed`): current, stale
    (a warning: rotating is `secrets sync`'s job, never apply's), or missing (apply creates it)."""
    items = wanted(loaded, environ)
    checks = []
    for item in items:
        where = f"secrets[{item.index}]"
        try:
            found = _lookup(existing, item.secret)
        except UsageError as exc:  # a name clash is a failed check here, an error in sync
            checks.append(Check("secret", False, exc.message, where))
            continue
        if found is not None:
            state, stale = _state(found, item)
            checks.append(Check("secret", True, f"{item.secret} exists{state}", where, warning=stale))
        elif item.value is not None:
            detail = f"{item.secret} is missing: apply creates it"
            checks.append(Check("secret", True, detail, where, pending=True, resource=item.secret))
        else:
            detail = f"{item.secret} is missing on RunPod and ${item.variable} is not set to create it"
            checks.append(Check("secret", False, detail, where))
    return checks


def _state(found: dict[str, Any], item: Wanted) -> tuple[str, bool]:
    """What the check line adds about an existing secret's value, and whether it is stale."""
    if item.value is None:
        return f" (value not compared: ${item.variable} is not set)", False
    same = tag_matches(found.get("description"), item.value)
    if same is None:
        return " (no rpdeploy hash: run `rpdeploy secrets sync` to set its value)", True
    stale = f" (${item.variable} differs: run `rpdeploy secrets sync` to rotate it)"
    return ("", False) if same else (stale, True)


@dataclass(frozen=True)
class SecretAction:
    """What sync did for one secret: never its value."""

    name: str  # the variable the worker reads
    secret: str  # the RunPod secret name
    action: Action

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "secret": self.secret, "action": self.action}


@dataclass(frozen=True)
class SecretsSyncResult:
    secrets: tuple[SecretAction, ...]
    warnings: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return any(item.action != "none" for item in self.secrets)

    @property
    def rotated(self) -> bool:
        return any(item.action == "rotate" for item in self.secrets)

    def to_json(self) -> dict[str, Any]:
        return {
            "secrets": [item.to_json() for item in self.secrets],
            "changed": self.changed,
            "warnings": list(self.warnings),
        }


def sync(
    api: RunPodApi, loaded: LoadedConfig, environ: Mapping[str, str], *, rotate: bool = False
) -> SecretsSyncResult:
    """Create each missing runpod-secret, rotate each whose value changed (all of them with ``rotate``)."""
    items = wanted(loaded, environ)
    values = _values(items)
    existing = api.list_secrets() if items else []
    for item in items:  # every name clash refuses the sync before its first write
        _lookup(existing, item.secret)
    actions = tuple(
        SecretAction(
            item.entry.name, item.secret, _sync_one(api, existing, item.secret, values[item.secret], rotate)
        )
        for item in items
    )
    warnings = [*_inline_warnings(loaded)]
    if any(action.action == "rotate" for action in actions):
        warnings.append(RESTART_NOTE)
    return SecretsSyncResult(actions, tuple(warnings))


def create_missing(
    api: RunPodApi, loaded: LoadedConfig, environ: Mapping[str, str], names: Collection[str]
) -> list[str]:
    """Create the secrets ``names`` (the plan listed them as missing), never rotate one; those created."""
    items = [item for item in wanted(loaded, environ) if item.secret in names]
    values = _values(items)
    for item in items:
        api.create_secret(item.secret, values[item.secret], with_tag(None, value_tag(values[item.secret])))
    return [item.secret for item in items]


def _sync_one(api: RunPodApi, existing: list[dict[str, Any]], name: str, value: str, rotate: bool) -> Action:
    found = _lookup(existing, name)
    if found is None:
        try:
            api.create_secret(name, value, with_tag(None, value_tag(value)))
        except Conflict:
            # Created since our look-up (another sync raced this one): rotate it to our value.
            found = api.find_secret(name)
            if found is None:
                raise
        else:
            return "create"
    if not rotate and tag_matches(found.get("description"), value):
        return "none"
    # Value and description go in one PATCH; RunPod applies the value first, so a failure
    # between them leaves an old tag, and the next sync rotates again: harmless.
    description = with_tag(found.get("description"), value_tag(value))
    api.update_secret(str(found["id"]), value=value, description=description)
    return "rotate"


def _inline_warnings(loaded: LoadedConfig) -> list[str]:
    return [
        f"{entry.name} is mode: inline: nothing to sync; its value goes into the endpoint env,"
        " where anyone with access to the RunPod account can read it"
        for entry in loaded.config.secrets
        if entry.mode == "inline"
    ]
