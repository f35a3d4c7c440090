"""The resolved config as data for people and tools (``rpdeploy config show``).

What the config resolves to for one environment: interpolated, the environment's
overrides applied, defaults filled in, the endpoint name computed, and every secret
masked. Secrets are masked twice over, by construction: values that interpolation read
from a secret variable are replaced wherever they ended up (`LoadedConfig.masker`),
and each `secrets:` entry and endpoint env value that names a secret shows `MASK`.
"""

from __future__ import annotations

from typing import Any

from deploy.config.load import LoadedConfig
from deploy.config.mask import MASK


def resolved_view(loaded: LoadedConfig) -> dict[str, Any]:
    """The resolved config as JSON-ready data, with every secret value shown as ``***``.

    Shape: the config's own keys (``endpoint`` in RunPod's camelCase), with
    ``environments`` reduced to the sorted list of names, ``endpoint.name`` filled in,
    and ``secrets`` as ``[{name, mode, secret, from_env, value: "***"}]`` (``secret`` is
    the RunPod secret name, or None for inline secrets).
    """
    config = loaded.config
    # Equivalent mutants of `mode`: the config holds only JSON types (str, int, float, bool,
    # lists, mappings), so python and json dumps are equal.
    data = config.model_dump(mode="json", by_alias=True)  # pragma: no mutate
    data["environments"] = sorted(config.environments)
    data["endpoint"]["name"] = config.endpoint_name(loaded.environment)
    secret_names = {s.name for s in config.secrets}
    data["endpoint"]["env"] = {
        # Unreachable today (rules refuse a secret's name in endpoint.env); kept as a second
        # guard, so its mutant is equivalent (docs/quality.md).
        k: (MASK if k in secret_names else v)  # pragma: no mutate
        for k, v in data["endpoint"]["env"].items()
    }
    data["secrets"] = [
        {
            "name": s.name,
            "mode": s.mode,
            "secret": config.secret_name(s) if s.mode == "runpod-secret" else None,
            "from_env": s.from_env or s.name,
            "value": MASK,
        }
        for s in config.secrets
    ]
    masked: dict[str, Any] = loaded.masker.data(data)
    return masked
