"""REST v2 container registry credentials, `/v2/registries` (no PATCH, as in the spec).

`username` and `password` are write-only (spec `createRegistry`, `getRegistry`): they are
kept only in the 0600 state database and handed to Docker when a worker pulls the image of
an endpoint whose `registry` names the credential, as RunPod does. The registry host is the
image's own (a credential carries none). Deleting a credential is not blocked by endpoints
or templates: "they silently lose the reference (`registry` becomes null)" (spec
`deleteRegistry`; the emulator has no pods, whose use would block it).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from deploy.emulator.control import BODY_LIMIT, new_id, now_iso, validate_schema
from deploy.emulator.httputil import found, json_body
from deploy.emulator.store import Store


class RegistryService:
    """Registry credentials in the store: `{id, name}` out, credentials only to a worker's pull."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, registry_id: str) -> dict[str, Any]:
        return found(self.store.registry(registry_id), f"registry {registry_id}")

    def list_all(self) -> dict[str, Any]:
        return {"registries": self.store.registries()}

    def create(self, body: Any) -> dict[str, Any]:
        body = validate_schema("CreateRegistryRequest", body)
        registry_id = new_id()
        self.store.add_registry(registry_id, body["name"], body["username"], body["password"], now_iso())
        return {"id": registry_id, "name": body["name"]}

    def delete(self, registry_id: str) -> list[str]:
        """Delete; the endpoints that lost their reference (their `registry` is now null)."""
        self.get(registry_id)
        return self.store.delete_registry(registry_id)


def router(service: RegistryService) -> APIRouter:
    """The `/v2/registries` routes. Auth and problem+json errors are the app's job."""
    api = APIRouter()

    @api.get("/v2/registries")
    async def list_registries() -> Response:
        return JSONResponse(service.list_all())

    @api.post("/v2/registries")
    async def create_registry(request: Request) -> Response:
        return JSONResponse(service.create(await json_body(request, BODY_LIMIT)), status_code=201)

    @api.get("/v2/registries/{registry_id}")
    async def get_registry(registry_id: str) -> Response:
        return JSONResponse(service.get(registry_id))

    @api.delete("/v2/registries/{registry_id}")
    async def delete_registry(registry_id: str) -> Response:
        service.delete(registry_id)
        return Response(status_code=204)

    return api
