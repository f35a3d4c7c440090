"""Endpoint releases: the `{field, old, new}` diff and which changes roll workers.

runpod-platform.md §2.5/§2.6: container changes (image, env, …) and compute changes
create a new endpoint release that rolls out as workers cycle; `workers`, `scaling` and
`timeout` apply to the autoscaler at once. Release diffs name fields with dotted paths
(`workers.max`); `env` is compared whole, as PATCH replaces it whole (§13).

A release's diff names every field its PATCH changed, autoscaler fields included: the
spec's own example release carries a `workers.max` diff (§2.6), so a PATCH that changes
the image and `workers.max` together makes one release whose diff holds both. Readers
that want only what a release rolled out (rollback) filter with `rolls`.
"""

from __future__ import annotations

from typing import Any, Final

from deploy.runpod.defaults import CONTAINER_FIELDS

#: Top-level fields whose change needs new containers, so it makes a release.
RELEASE_FIELDS: Final = frozenset({*CONTAINER_FIELDS, "gpu", "cpu", "networkVolumes"})
#: Server-assigned fields that are never part of a diff.
IDENTITY_FIELDS: Final = frozenset({"id", "createdAt", "requestUrls"})
#: Mappings compared whole rather than per key.
WHOLE_FIELDS: Final = frozenset({"env"})


def flatten(doc: dict[str, Any]) -> dict[str, Any]:
    """Settings as dotted fields (`workers.max`, `gpu.pools`; `env` stays whole)."""
    flat: dict[str, Any] = {}
    for key, value in doc.items():
        if key in IDENTITY_FIELDS:
            continue
        if isinstance(value, dict) and key not in WHOLE_FIELDS:
            for sub, sub_value in value.items():
                flat[f"{key}.{sub}"] = sub_value
        else:
            flat[key] = value
    return flat


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """`[{field, old, new}]` for every dotted field that differs, sorted by field; absent = None."""
    before, after = flatten(old), flatten(new)
    return [
        {"field": name, "old": before.get(name), "new": after.get(name)}
        for name in sorted(before.keys() | after.keys())
        if before.get(name) != after.get(name)
    ]


def rolls(field: str) -> bool:
    """Whether a change to the dotted ``field`` needs new containers (`image`, `env`, `gpu.pools`)."""
    return field.split(".", maxsplit=1)[0] in RELEASE_FIELDS


def rolls_workers(changes: list[dict[str, Any]]) -> bool:
    """Whether a diff needs new containers (so the endpoint version goes up)."""
    return any(rolls(change["field"]) for change in changes)
