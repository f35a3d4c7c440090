"""The plan: desired vs current endpoint settings, field by field, in RunPod's release-diff vocabulary.

Both sides are normalised with the server's defaults (`deploy.runpod.defaults`) first, so a
field the config leaves out is not a change, and a field the config stops setting is a
change back to its default, which the PATCH body states explicitly (PATCH leaves omitted
fields alone: removing ``disk:`` from the config must not keep the old disk). ``env`` is
replaced whole by a PATCH; the plan shows it per key so a removed key is visible.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from deploy.config import LoadedConfig
from deploy.config.mask import MASK
from deploy.release.checks import Check
from deploy.runpod.defaults import CONTAINER_FIELDS, ENDPOINT_DEFAULTS, WORKERS_DEFAULTS, idle_timeout_applies
from deploy.runpod.release import RELEASE_FIELDS, diff

Action = Literal["create", "update", "none"]

#: Endpoint settings a deploy manages (identity, type and server-assigned fields are not settings).
SETTINGS = (
    *CONTAINER_FIELDS,
    "gpu",
    "cpu",
    "workers",
    "scaling",
    "timeout",
    "flashboot",
    "networkVolumes",
    "dataCenterIds",
)


def _gpu(gpu: dict[str, Any]) -> dict[str, Any]:
    return {
        "pools": list(gpu.get("pools") or []),
        "count": gpu.get("count", 1),
        "excludedTypes": [name.strip() for name in gpu.get("excludedTypes") or []],
        "allowedCudaVersions": list(gpu.get("allowedCudaVersions") or []),
        "minCudaVersion": gpu.get("minCudaVersion") or None,
    }


def normalize(doc: dict[str, Any]) -> dict[str, Any]:
    """An Endpoint (as the API returns it) or a request body, as comparable settings, defaults filled."""
    out: dict[str, Any] = {}
    for name in SETTINGS:
        if name == "gpu":
            if doc.get("gpu") is not None:
                out["gpu"] = _gpu(doc["gpu"])
        elif name == "cpu":
            if doc.get("cpu") is not None:
                out["cpu"] = [{"id": item["id"], "vcpuCount": item["vcpuCount"]} for item in doc["cpu"]]
        elif name == "workers":
            workers = {**WORKERS_DEFAULTS, **(doc.get("workers") or {})}
            scaling_type = (doc.get("scaling") or {}).get("type", "QUEUE_DELAY")
            if not idle_timeout_applies(doc.get("type", "QUEUE"), scaling_type):
                workers.pop("idleTimeout", None)
            out["workers"] = workers
        elif (name in doc and doc[name] is not None) or name not in ENDPOINT_DEFAULTS:
            out[name] = doc.get(name)
        else:
            out[name] = ENDPOINT_DEFAULTS[name]
    if "type" in doc:
        # Not a setting a PATCH can change, but `workers` depends on it (see above).
        out["type"] = doc["type"]
    return out


@dataclass(frozen=True)
class Change:
    field: str
    old: Any
    new: Any
    rolls_workers: bool

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "old": self.old, "new": self.new, "rolls_workers": self.rolls_workers}

    def line(self) -> str:
        mark = "release" if self.rolls_workers else "in place"
        if self.old is None:
            return f"+ {self.field}: {_shown(self.new)}  ({mark})"
        if self.new is None:
            return f"- {self.field}: {_shown(self.old)}  ({mark})"
        return f"~ {self.field}: {_shown(self.old)} -> {_shown(self.new)}  ({mark})"


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def changes(
    current: dict[str, Any] | None, desired: dict[str, Any], secret_keys: Iterable[str]
) -> list[Change]:
    """Field-level changes from ``current`` to ``desired`` (both normalised); env per key, sorted.

    Values of ``secret_keys`` env entries are shown as ``***`` on both sides.
    """
    before = {k: v for k, v in (current or {}).items() if k != "type"}
    after = {k: v for k, v in desired.items() if k != "type"}
    secret = frozenset(secret_keys)
    found: list[Change] = []
    for entry in diff(before, after):
        name = entry["field"]
        rolls = name.split(".")[0] in RELEASE_FIELDS
        if name == "env" and current is not None:
            found.extend(_env_changes(entry["old"] or {}, entry["new"] or {}, secret))
            continue
        old, new = entry["old"], entry["new"]
        if name == "env":
            old = _masked_env(old, secret)
            new = _masked_env(new, secret)
        found.append(Change(name, old, new, rolls))
    return found


def _masked_env(env: dict[str, str] | None, secret: frozenset[str]) -> dict[str, str] | None:
    if env is None:
        return None
    return {key: MASK if key in secret else value for key, value in sorted(env.items())}


def _env_changes(old: dict[str, str], new: dict[str, str], secret: frozenset[str]) -> list[Change]:
    out = []
    for key in sorted(old.keys() | new.keys()):
        if old.get(key) == new.get(key):
            continue
        before, after = old.get(key), new.get(key)
        if key in secret:
            before = None if before is None else MASK
            after = None if after is None else MASK
        out.append(Change(f"env.{key}", before, after, True))
    return out


def patch_body(current: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """The UpdateEndpointRequest for the top-level settings that differ, each stated in full.

    A whole `gpu`/`workers`/`env` block is sent for any change inside it (PATCH replaces
    `env` whole; `gpu.pools` must accompany `excludedTypes`), and a setting back at its
    default is sent as that default, explicitly.
    """
    body: dict[str, Any] = {}
    for name in SETTINGS:
        if name in desired and current.get(name) != desired[name]:
            body[name] = desired[name]
    if "gpu" in body:
        gpu = dict(body["gpu"])
        # The spec clears a floor with "" (null is not allowed).
        gpu["minCudaVersion"] = gpu["minCudaVersion"] or ""
        if not gpu["excludedTypes"]:
            gpu.pop("excludedTypes")
        body["gpu"] = gpu
    return body


@dataclass(frozen=True)
class Plan:
    """What an apply would do, with what it was computed from (for the race check and records)."""

    name: str
    endpoint_id: str | None
    action: Action
    changes: list[Change]
    #: The request body: CreateEndpointRequest for create, UpdateEndpointRequest for update.
    body: dict[str, Any]
    #: The current endpoint's settings as read (normalised), for the race check before a PATCH.
    current: dict[str, Any] | None
    desired: dict[str, Any]
    image: str
    preflight: list[Check] = field(default_factory=list)
    cost: dict[str, Any] = field(default_factory=dict)
    #: What apply creates besides the endpoint, ``{kind, name, action}``: secrets, credential, volumes.
    resources: list[dict[str, str]] = field(default_factory=list)
    #: The account's secrets as the preflight read them, so apply does not list them again.
    secrets: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rolls_workers(self) -> bool:
        return any(change.rolls_workers for change in self.changes)

    def to_json(self, loaded: LoadedConfig) -> dict[str, Any]:
        """The `plan` command's JSON data; every string goes through ``loaded``'s masker."""
        data = {
            "endpoint": {"name": self.name, "id": self.endpoint_id},
            "action": self.action,
            "changes": [change.to_json() for change in self.changes],
            "resources": self.resources,
            "preflight": [check.to_json() for check in self.preflight],
            "cost": self.cost,
        }
        masked: dict[str, Any] = loaded.masker.data(data)
        return masked


def make_plan(
    loaded: LoadedConfig,
    name: str,
    body: dict[str, Any],
    current_doc: dict[str, Any] | None,
) -> Plan:
    """Compare ``body`` (a CreateEndpointRequest) with the endpoint read from the API (or None)."""
    desired = normalize(body)
    secret_keys = [secret.name for secret in loaded.config.secrets if secret.mode == "inline"]
    if current_doc is None:
        return Plan(
            name, None, "create", changes(None, desired, secret_keys), body, None, desired, body["image"]
        )
    current = normalize(current_doc)
    found = changes(current, desired, secret_keys)
    action: Action = "update" if found else "none"
    patch = patch_body(current, desired) if found else {}
    return Plan(name, str(current_doc["id"]), action, found, patch, current, desired, body["image"])
