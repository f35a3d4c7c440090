"""REST v2 network volumes, `/v2/network-volumes`, and where an endpoint's workers can be placed.

Each volume is a row in the store and a Docker volume named after its API id (the worker
plane creates it; a worker mounts it at `/runpod-volume`, runpod-platform.md §2.9). Rules
from the spec's `CreateNetworkVolumeRequest` / `UpdateNetworkVolumeRequest`: the body
schema (422), `dataCenter` a catalog data center that offers network volumes of the asked
tier, the tier defaulting to the data center's primary (first) one (400), and `size` may
only grow (400, "attempts to reduce size will be rejected"). A volume attached to an
endpoint cannot be deleted (400 naming the endpoint).

Placement: a network volume lives in one data center, so a worker that mounts it must run
there. RunPod accepts an endpoint whose `dataCenterIds` exclude every attached volume's data
center (the spec names no error for it) and then never places a worker: the emulator does
the same, starts none, and says why in `/workers` and `/health` (`placementError`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from deploy.emulator.control import BODY_LIMIT, new_id, now_iso, validate_schema
from deploy.emulator.httputil import HttpError, found, json_body
from deploy.emulator.store import Store
from deploy.runpod.catalog import catalog

log = logging.getLogger("rpdeploy.emulator.volumes")

#: The data center a worker reports when nothing pins it (no volume, no `dataCenterIds`).
ANY_DATA_CENTER = "EMULATOR"


@dataclass(frozen=True)
class Placement:
    """Where an endpoint's next worker runs: a data center and the volume it mounts there."""

    data_center: str | None
    volume_id: str | None = None
    #: Why no worker can be placed (None: it can).
    error: str | None = None


def placement(doc: dict[str, Any], volume_data_center: Callable[[str], str | None]) -> Placement:
    """The placement of a worker of endpoint ``doc``; ``volume_data_center`` maps a volume id to its DC.

    The first allowed data center (``dataCenterIds``, or any) that holds an attached volume;
    without volumes, the first of ``dataCenterIds`` or :data:`ANY_DATA_CENTER`.
    """
    chosen: list[str] = list(doc.get("dataCenterIds") or [])
    volumes = list(doc.get("networkVolumes") or [])
    if not volumes:
        return Placement(chosen[0] if chosen else ANY_DATA_CENTER)
    located = [(volume, volume_data_center(volume)) for volume in volumes]
    allowed = chosen or catalog().data_center_ids()
    for data_center in allowed:
        for volume, where in located:
            if where == data_center:
                return Placement(data_center, volume)
    held = ", ".join(f"{volume} in {where or 'no data center (deleted)'}" for volume, where in located)
    return Placement(
        None,
        error=(
            f"no worker can be placed: dataCenterIds [{', '.join(chosen)}] exclude the data center of "
            f"every attached network volume ({held}); a network volume pins workers to its data center"
        ),
    )


class VolumeBackend(Protocol):
    """The Docker side (the worker plane): a Docker volume per network volume."""

    def create_volume(self, volume_id: str) -> None:
        """Blocking (run in a thread): create the Docker volume."""

    def volume_deleted(self, volume_id: str) -> None:
        """Remove the Docker volume once no container uses it (returns at once)."""


class VolumeService:
    """Network volumes in the store; the Docker volumes follow through ``backend`` when set."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.backend: VolumeBackend | None = None

    def get(self, volume_id: str) -> dict[str, Any]:
        return found(self.store.volume(volume_id), f"network volume {volume_id}")

    def list_all(self) -> dict[str, Any]:
        return {"networkVolumes": self.store.volumes()}

    def create(self, body: Any) -> dict[str, Any]:
        body = validate_schema("CreateNetworkVolumeRequest", body)
        data_center = body["dataCenter"]
        tiers = _tiers(data_center)
        tier = body.get("type", tiers[0])
        if tier not in tiers:
            raise HttpError(
                400,
                f"dataCenter: {data_center} offers no {tier} network volumes (offers: {', '.join(tiers)})",
            )
        doc = {
            "id": new_id(),
            "name": body["name"],
            "size": body["size"],
            "dataCenter": data_center,
            "type": tier,
        }
        self.store.put_volume(doc, now_iso())
        return doc

    def update(self, volume_id: str, body: Any) -> dict[str, Any]:
        doc = self.get(volume_id)
        body = validate_schema("UpdateNetworkVolumeRequest", body)
        size = body.get("size", doc["size"])
        if size < doc["size"]:
            raise HttpError(
                400,
                f"size: network volume storage cannot be reduced ({volume_id} is {doc['size']} GB, "
                f"asked {size})",
            )
        doc.update(name=body.get("name", doc["name"]), size=size)
        self.store.put_volume(doc, now_iso())
        return doc

    def delete(self, volume_id: str) -> None:
        self.get(volume_id)
        users = [
            doc["id"] for doc, _ in self.store.endpoints() if volume_id in (doc.get("networkVolumes") or [])
        ]
        if users:
            raise HttpError(
                400,
                f"network volume {volume_id} is attached to endpoint {users[0]} and cannot be deleted",
                [f"attached to endpoint {endpoint}" for endpoint in users],
            )
        self.store.delete_volume(volume_id)

    def data_center(self, volume_id: str) -> str | None:
        volume = self.store.volume(volume_id)
        return None if volume is None else str(volume["dataCenter"])


def _tiers(data_center: str) -> list[str]:
    """The volume tiers ``data_center`` offers, primary first; 400 if it is unknown or offers none."""
    known = {dc.id: dc for dc in catalog().data_centers}
    if data_center not in known:
        raise HttpError(400, f"dataCenter: unknown data center {data_center} (known: {', '.join(known)})")
    tiers = list(known[data_center].network_volume_types)
    if not tiers:
        offering = [dc.id for dc in known.values() if dc.network_volume_types]
        raise HttpError(
            400, f"dataCenter: {data_center} offers no network volumes (these do: {', '.join(offering)})"
        )
    return tiers


def router(service: VolumeService) -> APIRouter:
    """The `/v2/network-volumes` routes. Auth and problem+json errors are the app's job."""
    api = APIRouter()

    async def create_docker_volume(volume_id: str) -> None:
        if service.backend is None:
            return
        try:
            await asyncio.to_thread(service.backend.create_volume, volume_id)
        except Exception as exc:  # the API answer stands; the first mount creates it again
            log.warning("could not create the Docker volume of network volume %s: %s", volume_id, exc)

    @api.get("/v2/network-volumes")
    async def list_volumes() -> Response:
        return JSONResponse(service.list_all())

    @api.post("/v2/network-volumes")
    async def create_volume(request: Request) -> Response:
        doc = service.create(await json_body(request, BODY_LIMIT))
        await create_docker_volume(doc["id"])
        return JSONResponse(doc, status_code=201)

    @api.get("/v2/network-volumes/{volume_id}")
    async def get_volume(volume_id: str) -> Response:
        return JSONResponse(service.get(volume_id))

    @api.patch("/v2/network-volumes/{volume_id}")
    async def update_volume(volume_id: str, request: Request) -> Response:
        service.get(volume_id)  # 404 before looking at the body
        return JSONResponse(service.update(volume_id, await json_body(request, BODY_LIMIT)))

    @api.delete("/v2/network-volumes/{volume_id}")
    async def delete_volume(volume_id: str) -> Response:
        service.delete(volume_id)
        if service.backend is not None:
            service.backend.volume_deleted(volume_id)
        return Response(status_code=204)

    return api
