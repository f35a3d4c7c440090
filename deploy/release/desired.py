"""Desired state (config + environment + image → a CreateEndpointRequest) and current state (by name).

Names are the identity: the endpoint is found by name through the API, and no id is ever
stored in the repository. An inline secret's value is read from the process environment
here, at deploy time, and added to the config's masker so that no output shows it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deploy import layout
from deploy.api import RunPodApi
from deploy.config import LoadedConfig
from deploy.config.mask import Masker
from deploy.config.schema import SecretConfig
from deploy.errors import ConfigError, UsageError
from deploy.render import endpoint_spec
from deploy.runpod import text as runpod_text

#: ``--ephemeral NAME``: short, lower-case, DNS-like (``pr-42``), as CI names pull requests.
EPHEMERAL_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


@dataclass(frozen=True)
class Target:
    """Which endpoint a command acts on, and where its records live."""

    #: The endpoint's name on RunPod (its identity).
    name: str
    #: ``build/rpdeploy/<record_env>/``: the environment, or ``ephemeral-<NAME>``.
    record_env: str | None
    ephemeral: str | None = None


def target(loaded: LoadedConfig, ephemeral: str | None = None) -> Target:
    """The endpoint of ``loaded``'s environment, or ``<project>-<NAME>`` for ``--ephemeral NAME``."""
    if ephemeral is None:
        return Target(loaded.config.endpoint_name(loaded.environment), loaded.environment)
    if not EPHEMERAL_NAME.fullmatch(ephemeral):
        raise UsageError(
            f"--ephemeral {ephemeral!r}: use 1-40 lower-case letters, digits and '-' (e.g. pr-42)"
        )
    name = f"{loaded.config.project}-{ephemeral}"
    problem = runpod_text.name_problem(name)
    if problem:
        raise UsageError(f"--ephemeral {ephemeral!r}: endpoint name {name!r}: {problem}")
    owner = environment_names(loaded).get(name)
    if owner is not None:
        # `destroy --ephemeral staging` must never delete the staging endpoint.
        raise UsageError(f"--ephemeral {ephemeral!r}: {name} is the endpoint of {owner}; pick another NAME")
    return Target(name, layout.ephemeral_env(ephemeral), ephemeral)


def environment_names(loaded: LoadedConfig) -> dict[str, str]:
    """Endpoint name -> what owns it: the base config and each environment (``endpoint.name`` honoured)."""
    config = loaded.config
    base = config.endpoint.name
    owners = {base or config.project: "the base config"}
    for env, block in config.environments.items():
        override = (block or {}).get("endpoint") or {}
        named = override.get("name") if isinstance(override, dict) else None
        owners[str(named or base or f"{config.project}-{env}")] = f"environment {env}"
    return owners


def _inline_value(secret: SecretConfig, environ: Mapping[str, str]) -> str:
    variable = secret.from_env or secret.name
    value = environ.get(variable)
    if not value:
        raise UsageError(
            f"secrets: {secret.name} (mode: inline) reads ${variable}, which is not set",
            hint=f"export {variable} (a CI secret) before deploying",
        )
    return value


def with_inline_secrets(loaded: LoadedConfig, environ: Mapping[str, str]) -> LoadedConfig:
    """``loaded`` whose masker also knows every inline secret's value (read from ``environ``).

    UsageError naming the variable when one is missing, before any API call.
    """
    extra = {
        _inline_value(secret, environ): secret.from_env or secret.name
        for secret in loaded.config.secrets
        if secret.mode == "inline"
    }
    if not extra:
        return loaded
    return dataclasses.replace(loaded, masker=Masker({**loaded.masker.secrets, **extra}))


#: ``image:`` settings the environments of `rpdeploy release --promote` must agree on: it builds
#: and pushes once, with the first environment's settings, and deploys that digest to both, so a
#: production that named another registry, repository, budget or ``latest`` would be ignored.
#: (`rpdeploy promote` deploys the image the source runs, by definition, and `release --image`
#: the one given: neither builds.)
PROMOTED_IMAGE_KEYS = ("registry", "repository", "max_compressed_mb", "latest")


def check_promotion(origin: LoadedConfig, dest: LoadedConfig) -> None:
    """ConfigError (exit 2), one line per `PROMOTED_IMAGE_KEYS` setting on which ``dest``
    differs from ``origin``, each naming where both values were written (masked)."""
    source, target_env = origin.environment or "default", dest.environment or "default"
    problems = []
    for key in PROMOTED_IMAGE_KEYS:
        theirs, mine = getattr(origin.config.image, key), getattr(dest.config.image, key)
        if mine == theirs:
            continue
        problems.append(
            dest.masker.text(
                f"{dest.where(('image', key))}: image.{key}: {target_env}'s {mine!r} differs from"
                f" {source}'s {theirs!r} ({origin.where(('image', key))}): a promotion deploys"
                f" {source}'s build as it is; set one value for both, or build, push and apply"
                f" {target_env} on its own (--env {target_env})"
            )
        )
    if problems:
        raise ConfigError(problems)


def desired_body(
    loaded: LoadedConfig, image: str, environ: Mapping[str, str], name: str | None = None
) -> dict[str, Any]:
    """The CreateEndpointRequest body to deploy: inline secrets resolved (so it must never be shown
    unmasked: pass it through ``loaded.masker``, whose values `with_inline_secrets` added)."""
    body = endpoint_spec.create_request(
        loaded.config,
        loaded.environment,
        image,
        resolve_inline=lambda secret: _inline_value(secret, environ),
        source=loaded,
    )
    if name is not None:
        body["name"] = name
    return body


def current_endpoint(api: RunPodApi, name: str) -> dict[str, Any] | None:
    """The endpoint called ``name``, or None (ApiError when two share the name)."""
    return api.find_endpoint(name)
