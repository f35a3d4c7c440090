"""The emulator's hardware catalog routes: `GET /v2/catalog/gpus`, `/cpus[/{id}]` and `/datacenters`.

The data and its shapes are `deploy.runpod.catalog` (one data file); this module only
reads the query string the way the spec's `listGpuTypes` parameters describe it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from deploy.emulator.httputil import HttpError
from deploy.runpod import schemas
from deploy.runpod.catalog import catalog


def placement_gpu(pools: list[str], excluded: list[str]) -> str | None:
    """The GPU type a worker is 'placed' on: the first eligible card of the listed pools."""
    return catalog().placement_gpu(pools, excluded)


def _check_query(request: Request, path: str) -> None:
    """A 400 for a query parameter the spec declares but whose value it does not allow
    (an unknown enum value, a malformed CUDA version): RunPod validates its filters."""
    problems = schemas.query_problems(path, "get", request.query_params.multi_items())
    if problems:
        raise HttpError(400, "; ".join(problems))


GPU_PRODUCTS = ("POD", "CLUSTER", "SERVERLESS")
CPU_PRODUCTS = ("POD", "SERVERLESS")


def _wants_availability(request: Request, products: tuple[str, ...]) -> bool:
    # listGpuTypes / listCpuTypes: include=AVAILABILITY "requires `product`", and product is
    # "valid only with it (400 either way)"; so is the CPU vcpuCount filter.
    include = request.query_params.get("include")
    product = request.query_params.get("product")
    if include is not None and include != "AVAILABILITY":
        raise HttpError(400, f"include must be AVAILABILITY, got {include[:40]!r}")
    if (include is None) != (product is None):
        raise HttpError(400, "include=AVAILABILITY and product are only valid together")
    if product is not None and not set(product.split(",")) <= set(products):
        raise HttpError(400, f"product must be a comma-separated list of {', '.join(products)}")
    vcpus = request.query_params.get("vcpuCount")
    if vcpus is not None and include is None:
        raise HttpError(400, "vcpuCount is only valid with include=AVAILABILITY")
    if vcpus is not None and int(vcpus) & (int(vcpus) - 1):
        raise HttpError(400, f"vcpuCount must be a power of two, got {vcpus}")
    return include is not None


def add_routes(api: APIRouter) -> None:
    """Add the catalog routes to ``api``. Auth and problem+json errors are the app's job."""

    @api.get("/v2/catalog/gpus")
    async def list_gpus(request: Request) -> Response:
        _check_query(request, "/v2/catalog/gpus")
        wanted = _wants_availability(request, GPU_PRODUCTS)
        return JSONResponse(catalog().gpus_response(availability=wanted))

    @api.get("/v2/catalog/cpus")
    async def list_cpus(request: Request) -> Response:
        _check_query(request, "/v2/catalog/cpus")
        wanted = _wants_availability(request, CPU_PRODUCTS)
        return JSONResponse(catalog().cpus_response(availability=wanted))

    @api.get("/v2/catalog/cpus/{cpu_id}")
    async def get_cpu(cpu_id: str, request: Request) -> Response:
        _check_query(request, "/v2/catalog/cpus/{id}")
        wanted = _wants_availability(request, CPU_PRODUCTS)
        flavor = catalog().cpu_flavors.get(cpu_id)
        if flavor is None:
            raise HttpError(404, f"CPU type {cpu_id} not found")
        return JSONResponse(flavor.doc(catalog().data_centers if wanted else None))

    @api.get("/v2/catalog/datacenters")
    async def list_datacenters(request: Request) -> Response:
        _check_query(request, "/v2/catalog/datacenters")
        return JSONResponse(catalog().datacenters_response())
