"""REST v2 secrets, `/v2/account/secrets` (runpod-platform.md §6.1), and the store both APIs share.

The legacy GraphQL `secretCreate` / `secretDelete` (graphql.py) create and delete through
:class:`SecretService` too, so a secret made either way is the same row, resolved the same
way at worker start. Values are write-only: no answer carries one, no log line names one.

Checks, in RunPod's order: the body against the vendored `CreateSecretRequest` /
`UpdateSecretRequest` schema (422, every problem), then the name rule of
`deploy.runpod.secrets` (400: the schema's pattern cannot say "not RUNPOD…"), then the value's
size in UTF-8 bytes (422: the schema counts characters, RunPod counts bytes).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from deploy.emulator.control import new_id, now_iso, validate_schema
from deploy.emulator.httputil import MB, HttpError, found, json_body
from deploy.emulator.store import UNCHANGED, Store
from deploy.runpod.secrets import name_problem

#: A value is 1 to 16,777,215 bytes of UTF-8 (§6.1).
MAX_VALUE_BYTES = 16_777_215
#: Room for the largest value sent as UTF-8 JSON, with escapes for some of it, and a description.
#: A value escaped beyond this (``\u00e9`` for every "é") is refused as too large (400).
BODY_LIMIT = 64 * MB


def _value_problem(value: str) -> str | None:
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > MAX_VALUE_BYTES:
        return f"$.value: {size} bytes of UTF-8, at most {MAX_VALUE_BYTES} allowed"
    return None


class SecretService:
    """Create, read, rotate and delete secrets in the emulator's store (values never leave it)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, name: str, value: str, description: str | None) -> dict[str, Any]:
        """The new `Secret`; HttpError 400 for a bad name, 409 for a name in use."""
        problem = name_problem(name)
        if problem is not None:
            raise HttpError(400, problem)
        secret_id = new_id()
        if not self.store.add_secret(secret_id, name, value, description or None, now_iso()):
            raise HttpError(409, f"A secret named {name} already exists")
        return self.get(secret_id)

    def get(self, secret_id: str) -> dict[str, Any]:
        return found(self.store.secret(secret_id), f"secret {secret_id}")

    def list_all(self, name: str | None) -> dict[str, Any]:
        if name is None:
            return {"secrets": self.store.secrets()}
        match = self.store.secret_by_name(name)
        return {"secrets": [] if match is None else [match]}

    def update(self, secret_id: str, value: str | None, description: str | object | None) -> dict[str, Any]:
        """Rotate the value and/or set the description (``""`` clears it); the updated `Secret`."""
        self.get(secret_id)
        if isinstance(description, str) and not description:
            description = None
        self.store.update_secret(secret_id, value=value, description=description, at=now_iso())
        return self.get(secret_id)

    def delete(self, secret_id: str) -> None:
        """Deleting is "not blocked while the secret is in use" (§6.1): references stop resolving."""
        if not self.store.delete_secret(secret_id):
            raise HttpError(404, f"secret {secret_id} not found")


def _checked(schema_name: str, body: Any) -> dict[str, Any]:
    checked = validate_schema(schema_name, body)
    value = checked.get("value")
    problem = None if value is None else _value_problem(value)
    if problem is not None:
        raise HttpError(422, "Request validation failed.", [problem])
    return checked


def router(service: SecretService) -> APIRouter:
    """The `/v2/account/secrets` routes. Auth and problem+json errors are the app's job."""
    api = APIRouter()

    @api.get("/v2/account/secrets")
    async def list_secrets(request: Request) -> Response:
        # The spec declares no 400 here: a repeated `name` counts once, the last (as HTTP servers do).
        return JSONResponse(service.list_all(request.query_params.get("name")))

    @api.post("/v2/account/secrets")
    async def create_secret(request: Request) -> Response:
        body = _checked("CreateSecretRequest", await json_body(request, BODY_LIMIT))
        created = service.create(body["name"], body["value"], body.get("description"))
        return JSONResponse(created, status_code=201)

    @api.get("/v2/account/secrets/{secret_id}")
    async def get_secret(secret_id: str) -> Response:
        return JSONResponse(service.get(secret_id))

    @api.patch("/v2/account/secrets/{secret_id}")
    async def update_secret(secret_id: str, request: Request) -> Response:
        service.get(secret_id)  # 404 before looking at the body
        body = _checked("UpdateSecretRequest", await json_body(request, BODY_LIMIT))
        description = body.get("description", UNCHANGED)
        return JSONResponse(service.update(secret_id, body.get("value"), description))

    @api.delete("/v2/account/secrets/{secret_id}")
    async def delete_secret(secret_id: str) -> Response:
        service.delete(secret_id)
        return Response(status_code=204)

    return api
