"""The emulator's hardware catalog routes: `GET /v2/catalog/gpus` and `/v2/catalog/datacenters`.

The data and its shapes are `deploy.runpod.catalog` (one data file); this module only
reads the query string the way the spec's `listGpuTypes` parameters describe it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from deploy.emulator.httputil import HttpError
from deploy.runpod.catalog import catalog


def placement_gpu(pools: list[str], excluded: list[str]) -> str | None:
    """The GPU type a worker is 'placed' on: the first eligible card of the listed pools."""
    return catalog().placement_gpu(pools, excluded)


def _wants_availability(request: Request) -> bool:
    # listGpuTypes: include=AVAILABILITY "requires `product`", and product is "valid only
    # with it (400 either way)".
    include = request.query_params.get("include")
    product = request.query_params.get("product")
    if include is not None and include != "AVAILABILITY":
        raise HttpError(400, f"include must be AVAILABILITY, got {include[:40]!r}")
    if (include is None) != (product is None):
        raise HttpError(400, "include=AVAILABILITY and product are only valid together")
    if product is not None and not set(product.split(",")) <= {"POD", "CLUSTER", "SERVERLESS"}:
        raise HttpError(400, "product must be a comma-separated list of POD, CLUSTER, SERVERLESS")
    return include is not None


def add_routes(api: APIRouter) -> None:
    """Add the catalog routes to ``api``. Auth and problem+json errors are the app's job."""

    @api.get("/v2/catalog/gpus")
    async def list_gpus(request: Request) -> Response:
        return JSONResponse(catalog().gpus_response(availability=_wants_availability(request)))

    @api.get("/v2/catalog/datacenters")
    async def list_datacenters() -> Response:
        return JSONResponse(catalog().datacenters_response())
