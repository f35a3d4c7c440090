"""Network volumes (`/v2/network-volumes`): create the ones the config names, attach them by id.

A volume given by name is RunPod's ``<project>/<name>`` (`Config.volume_name`), created
when missing; one given by id is used as it is. One list call serves every volume of a
deploy (none when the config has no volumes). The preflight reports what would make a
volume useless or a deploy fail: a volume whose data center is not among the
endpoint's ``dataCenterIds`` (it pins the workers that mount it to its data center, so
they could run nowhere: a top user complaint), a size smaller than the volume has
(RunPod never shrinks one), a data center other than the existing volume's (immutable).
"""

from __future__ import annotations

from typing import Any

from deploy.api import RunPodApi
from deploy.config.load import LoadedConfig
from deploy.config.schema import NetworkVolumeConfig
from deploy.errors import UsageError
from deploy.release.checks import Check, pending_id


def _where(index: int) -> str:
    return f"endpoint.networkVolumes[{index}]"


def _by_name(volumes: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [volume for volume in volumes if volume.get("name") == name]


def check(api: RunPodApi, loaded: LoadedConfig, body: dict[str, Any]) -> list[Check]:
    """One `Check` per configured volume, against the endpoint ``body``'s ``dataCenterIds``."""
    entries = loaded.config.endpoint.network_volumes
    if not entries:
        return []
    volumes = api.list_network_volumes()
    allowed = [str(dc) for dc in body.get("dataCenterIds") or []]
    checks = []
    for index, entry in enumerate(entries):
        if isinstance(entry, str):
            checks.append(_check_id(entry, volumes, allowed, _where(index)))
        else:
            checks.append(_check_named(loaded, entry, volumes, allowed, _where(index)))
    return checks


def _check_id(volume_id: str, volumes: list[dict[str, Any]], allowed: list[str], where: str) -> Check:
    found = next((volume for volume in volumes if volume.get("id") == volume_id), None)
    if found is None:
        return Check("volume", False, f"no network volume has the id {volume_id}", where)
    return _placed(f"{found.get('name')} ({volume_id})", str(found.get("dataCenter")), allowed, where)


def _check_named(
    loaded: LoadedConfig,
    entry: NetworkVolumeConfig,
    volumes: list[dict[str, Any]],
    allowed: list[str],
    where: str,
) -> Check:
    name = loaded.config.volume_name(entry)
    found = _by_name(volumes, name)
    if not found:
        placed = _placed(name, entry.data_center, allowed, where)
        new = f"{name} is missing: apply creates it ({entry.size} GB in {entry.data_center})"
        return placed if not placed.ok else Check("volume", True, new, where)
    if len(found) > 1:
        ids = ", ".join(str(volume.get("id")) for volume in found)
        return Check("volume", False, f"{len(found)} volumes are named {name} ({ids}): keep one", where)
    volume = found[0]
    size, center = int(volume.get("size", 0)), str(volume.get("dataCenter"))
    if center != entry.data_center:
        detail = f"{name} exists in {center}, not {entry.data_center}: a volume's data center cannot change"
        return Check("volume", False, detail, where)
    if size > entry.size:
        detail = f"{name} has {size} GB and the config asks for {entry.size}: RunPod never shrinks a volume"
        return Check("volume", False, detail, where)
    if size < entry.size:
        detail = (
            f"{name} has {size} GB and the config asks for {entry.size}: rpdeploy does not resize"
            f" volumes; grow it in the RunPod console or set size: {size}"
        )
        return Check("volume", False, detail, where)
    return _placed(name, center, allowed, where)


def _placed(name: str, center: str, allowed: list[str], where: str) -> Check:
    """Whether workers may run where the volume is (no ``dataCenterIds``: wherever RunPod picks)."""
    if allowed and center not in allowed:
        detail = (
            f"{name} is in {center}, which is not in dataCenterIds ({', '.join(allowed)}):"
            " workers that mount it could run nowhere"
        )
        return Check("volume", False, detail, where)
    return Check("volume", True, f"{name} in {center}: workers that mount it run there", where)


def ensure(api: RunPodApi, loaded: LoadedConfig, *, dry_run: bool) -> list[str]:
    """The ids of the configured volumes, in config order; missing named ones are created.

    With ``dry_run`` nothing is written and a volume to create shows as `pending_id`.
    """
    entries = loaded.config.endpoint.network_volumes
    named = loaded.config.endpoint.named_volumes()
    volumes = api.list_network_volumes() if named else []
    return [
        entry if isinstance(entry, str) else _ensure_one(api, loaded, entry, volumes, dry_run)
        for entry in entries
    ]


def _ensure_one(
    api: RunPodApi,
    loaded: LoadedConfig,
    entry: NetworkVolumeConfig,
    volumes: list[dict[str, Any]],
    dry_run: bool,
) -> str:
    name = loaded.config.volume_name(entry)
    found = _by_name(volumes, name)
    if len(found) > 1:
        ids = ", ".join(str(volume.get("id")) for volume in found)
        raise UsageError(f"{len(found)} network volumes are named {name} ({ids}): delete all but one")
    if found:
        return str(found[0]["id"])
    if dry_run:
        return pending_id(name)
    body: dict[str, Any] = {"name": name, "size": entry.size, "dataCenter": entry.data_center}
    if entry.type is not None:
        body["type"] = entry.type
    return str(api.create_network_volume(body)["id"])
