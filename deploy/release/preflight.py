"""Preflight: will this endpoint actually get workers? Checked against the platform before any write.

Reads (kept few, the no-op apply budget is 4 API reads): the GPU catalog with serverless
availability (pools, CUDA versions and data centers per GPU type), the data centers, the
CPU catalog only for a CPU endpoint, and the secrets list (through the secrets module).
The image is checked in its own registry (a manifest read, with its compressed size).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deploy.api import RunPodApi
from deploy.config import LoadedConfig
from deploy.errors import RegistryError, UsageError
from deploy.image.registry import Credentials, Reference, RegistryClient, credentials_for
from deploy.image.size import format_bytes
from deploy.release import hooks, registry_auth
from deploy.release.checks import Check


@dataclass(frozen=True)
class Catalog:
    """The platform facts one plan reads once and every check and the cost share."""

    gpus: list[dict[str, Any]]
    data_centers: list[dict[str, Any]]
    #: Only read for a CPU endpoint (None otherwise: one read saved).
    cpus: list[dict[str, Any]] | None


def read_catalog(api: RunPodApi, body: Mapping[str, Any]) -> Catalog:
    gpus = api.gpu_types(serverless=True) if body.get("gpu") else []
    cpus = api.cpu_types() if body.get("cpu") else None
    return Catalog(gpus=gpus, data_centers=api.data_centers(), cpus=cpus)


def _pool_gpus(catalog: Catalog, pool: str) -> list[dict[str, Any]]:
    return [gpu for gpu in catalog.gpus if gpu.get("pool") == pool]


def gpu_checks(body: Mapping[str, Any], catalog: Catalog) -> list[Check]:
    """Every pool exists and serves serverless; every allowed CUDA version is offered in them."""
    gpu = body.get("gpu")
    if not gpu:
        return []
    checks: list[Check] = []
    pools: list[str] = list(gpu.get("pools") or [])
    for index, pool in enumerate(pools):
        where = f"endpoint.gpu.pools[{index}]"
        members = _pool_gpus(catalog, pool)
        if not members:
            known = sorted({str(g["pool"]) for g in catalog.gpus if g.get("pool")})
            detail = f"no GPU pool {pool} in the catalog (pools: {', '.join(known) or 'none'})"
            checks.append(Check("gpu.pool", False, detail, where))
        elif not any((g.get("price") or {}).get("serverless") is not None for g in members):
            checks.append(Check("gpu.pool", False, f"{pool} is not offered for serverless", where))
        else:
            names = ", ".join(str(g["name"]) for g in members)
            checks.append(Check("gpu.pool", True, f"{pool} serves serverless ({names})", where))
    offered = {
        str(version["version"])
        for pool in pools
        for g in _pool_gpus(catalog, pool)
        for version in g.get("cudaVersions") or []
    }
    for index, version in enumerate(gpu.get("allowedCudaVersions") or []):
        where = f"endpoint.gpu.allowedCudaVersions[{index}]"
        if version in offered:
            checks.append(Check("gpu.cuda", True, f"CUDA {version} is offered in {', '.join(pools)}", where))
        else:
            shown = ", ".join(sorted(offered)) or "none"
            detail = f"CUDA {version} is offered by no GPU type in {', '.join(pools)} (offered: {shown})"
            checks.append(Check("gpu.cuda", False, detail, where))
    return checks


def data_center_checks(body: Mapping[str, Any], catalog: Catalog) -> list[Check]:
    """Every listed data center exists and offers at least one GPU type of the endpoint's pools."""
    known = {str(dc["id"]) for dc in catalog.data_centers}
    pools = list((body.get("gpu") or {}).get("pools") or [])
    checks: list[Check] = []
    for index, dc in enumerate(body.get("dataCenterIds") or []):
        where = f"endpoint.dataCenterIds[{index}]"
        if dc not in known:
            checks.append(
                Check("datacenter", False, f"no data center {dc} (known: {', '.join(sorted(known))})", where)
            )
            continue
        if not pools:
            checks.append(Check("datacenter", True, f"{dc} exists", where))
            continue
        serving = sorted(
            {
                str(g["pool"])
                for pool in pools
                for g in _pool_gpus(catalog, pool)
                if any(entry.get("id") == dc for entry in g.get("dataCenters") or [])
            }
        )
        if serving:
            checks.append(Check("datacenter", True, f"{dc} offers {', '.join(serving)}", where))
        else:
            checks.append(Check("datacenter", False, f"{dc} offers none of {', '.join(pools)}", where))
    return checks


def _pull_credentials(loaded: LoadedConfig, registry: str, environ: Mapping[str, str]) -> Credentials | None:
    """What RunPod will pull with (``image.registry_auth``'s variables), else the push credentials."""
    auth = loaded.config.image.registry_auth
    if auth is not None and environ.get(auth.username_env) and environ.get(auth.password_env):
        return Credentials(*registry_auth.credentials(auth, environ))
    return credentials_for(registry, environ)


def image_check(loaded: LoadedConfig, image: str, environ: Mapping[str, str]) -> Check:
    """The image's manifest is in its registry; its compressed size (sum of the layers)."""
    try:
        ref = Reference.parse(image)
        registry = RegistryClient(ref.registry, _pull_credentials(loaded, ref.registry, environ))
        _, manifest = registry.manifest(ref.repository, ref.reference)
    except (RegistryError, UsageError) as exc:
        return Check("image", False, str(exc), "image")
    size = sum(int(layer.get("size", 0)) for layer in manifest.get("layers") or [])
    return Check("image", True, f"{image} is in its registry ({format_bytes(size)} compressed)", "image")


def run_preflight(
    api: RunPodApi,
    loaded: LoadedConfig,
    body: Mapping[str, Any],
    catalog: Catalog,
    environ: Mapping[str, str],
    *,
    secrets: list[dict[str, Any]],
) -> list[Check]:
    """Every check, in a stable order: compute, data centers, workers, image, then volumes, registry,
    secrets (``secrets``: the account's list, read once per command and passed on to apply)."""
    return [
        *gpu_checks(body, catalog),
        *data_center_checks(body, catalog),
        image_check(loaded, str(body["image"]), environ),
        *hooks.checks(api, loaded, dict(body), environ, secrets),
    ]
