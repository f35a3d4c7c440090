"""RunPod's hardware catalog as data: GPU pools and types, CUDA versions, prices, data centers, CPU flavors.

Every fact lives in `catalog.json` beside this module (its `source` field names where each
kind of fact comes from). RunPod adds pools without notice (runpod-platform.md §13), so
validation treats the file as a snapshot: an unknown pool is a warning in `config
validate` and a 400 in the emulator, which serves this file at `GET /v2/catalog/gpus`
`/v2/catalog/datacenters` and `/v2/catalog/cpus` in the spec's `ListGpuTypesResponse` /
`ListDataCentersResponse` / `ListCpuTypesResponse` shapes. CPU prices are USD per vCPU per
hour and indicative (catalog.json `source.cpu_prices`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

SECONDS_PER_HOUR = 3600


@dataclass(frozen=True)
class GpuType:
    id: str
    name: str
    pool: str
    manufacturer: str
    memory_gb: int
    cuda_versions: tuple[str, ...]


@dataclass(frozen=True)
class Pool:
    id: str
    #: USD per GPU per second (serverless flex).
    price_per_second: float
    gpu_types: tuple[GpuType, ...]

    @property
    def price_per_hour(self) -> float:
        """USD per GPU per hour, as `GpuType.price.serverless` quotes it."""
        return round(self.price_per_second * SECONDS_PER_HOUR, 4)


@dataclass(frozen=True)
class DataCenter:
    id: str
    name: str
    region: str
    global_network: bool
    network_volume_types: tuple[str, ...]
    compliance: tuple[str, ...]


@dataclass(frozen=True)
class CpuFlavor:
    id: str
    name: str
    memory_gb_per_vcpu: int
    group: str = ""
    vcpu_min: int = 2
    vcpu_max: int = 32
    #: USD per vCPU per hour (`CpuType.price.securePerVcpu` / `serverlessPerVcpu`); indicative.
    secure_price_per_vcpu_hour: float = 0.0
    serverless_price_per_vcpu_hour: float = 0.0

    def doc(self, data_centers: tuple[DataCenter, ...] | None = None) -> dict[str, Any]:
        """`CpuType`; ``data_centers`` adds the include=AVAILABILITY fields."""
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "group": self.group,
            "vcpu": {"min": self.vcpu_min, "max": self.vcpu_max},
            "ramGbPerVcpu": self.memory_gb_per_vcpu,
            "price": {
                "securePerVcpu": self.secure_price_per_vcpu_hour,
                "serverlessPerVcpu": self.serverless_price_per_vcpu_hour,
            },
        }
        if data_centers is not None:
            out["availability"] = "HIGH"
            out["dataCenters"] = [
                {"id": dc.id, "name": dc.name, "availability": "HIGH"} for dc in data_centers
            ]
        return out


def cuda_key(version: str) -> tuple[int, ...]:
    """``"12.11"`` -> (12, 11): CUDA versions compare numerically (runpod-platform.md §2.3)."""
    return tuple(int(part) for part in version.split("."))


@dataclass(frozen=True)
class Catalog:
    pools: dict[str, Pool]
    data_centers: tuple[DataCenter, ...]
    cpu_flavors: dict[str, CpuFlavor]

    def gpu_types(self) -> list[GpuType]:
        return [gpu for pool in self.pools.values() for gpu in pool.gpu_types]

    def cards(self, pools: list[str]) -> list[str]:
        """GPU type ids in ``pools`` (unknown pools contribute none), in catalog order."""
        return [gpu.id for pool in pools if pool in self.pools for gpu in self.pools[pool].gpu_types]

    def cuda_versions(self) -> list[str]:
        """Every CUDA version some GPU type offers, oldest first (``12.4`` < ``12.11``)."""
        found = {version for gpu in self.gpu_types() for version in gpu.cuda_versions}
        return sorted(found, key=cuda_key)

    def data_center_ids(self) -> list[str]:
        return [dc.id for dc in self.data_centers]

    def cpu_memory_gb(self, flavor: str, vcpus: int) -> int:
        """Memory of a CPU worker, GB; KeyError for an unknown flavor."""
        return self.cpu_flavors[flavor].memory_gb_per_vcpu * vcpus

    def placement_gpu(self, pools: list[str], excluded: list[str]) -> str | None:
        """The GPU type a worker is placed on: the first eligible card of the listed pools."""
        skip = {name.strip() for name in excluded}
        return next((card for card in self.cards(pools) if card not in skip), None)

    def gpus_response(self, *, availability: bool = False) -> dict[str, Any]:
        """`ListGpuTypesResponse`; ``availability`` adds the include=AVAILABILITY fields."""
        return {"gpus": [self._gpu_doc(pool, gpu, availability) for pool in self.pools.values()
                         for gpu in pool.gpu_types]}  # fmt: skip

    def cpus_response(self, *, availability: bool = False) -> dict[str, Any]:
        """`ListCpuTypesResponse`; ``availability`` adds the include=AVAILABILITY fields."""
        where = self.data_centers if availability else None
        return {"cpus": [flavor.doc(where) for flavor in self.cpu_flavors.values()]}

    def datacenters_response(self) -> dict[str, Any]:
        """`ListDataCentersResponse`."""
        return {
            "dataCenters": [
                {
                    "id": dc.id,
                    "name": dc.name,
                    "region": dc.region,
                    "globalNetwork": dc.global_network,
                    "networkVolumeTypes": list(dc.network_volume_types),
                    "compliance": list(dc.compliance),
                }
                for dc in self.data_centers
            ]
        }

    def _gpu_doc(self, pool: Pool, gpu: GpuType, availability: bool) -> dict[str, Any]:
        hourly = pool.price_per_hour
        doc: dict[str, Any] = {
            "id": gpu.id,
            "name": gpu.name,
            "pool": pool.id,
            "manufacturer": gpu.manufacturer,
            "memory": gpu.memory_gb,
            "secure": True,
            "community": False,
            # Pod prices are not catalog facts rpdeploy has; see catalog.json `source`.
            "price": {"secure": hourly, "community": hourly, "serverless": hourly},
            "maxCount": {"secure": 8, "community": 0},
        }
        if availability:
            doc["availability"] = "HIGH"
            doc["dataCenters"] = [
                {"id": dc.id, "name": dc.name, "availability": "HIGH"} for dc in self.data_centers
            ]
            doc["cudaVersions"] = [{"version": v, "available": True} for v in gpu.cuda_versions]
        return doc


@cache
def catalog() -> Catalog:
    """The vendored catalog (`catalog.json`); loaded once."""
    text = resources.files("deploy.runpod").joinpath("catalog.json").read_text(encoding="utf-8")
    return parse(json.loads(text))


def parse(data: dict[str, Any]) -> Catalog:
    """A `Catalog` from the `catalog.json` shape; KeyError/TypeError if the data is malformed."""
    types: dict[str, list[GpuType]] = {}
    for item in data["gpu_types"]:
        gpu = GpuType(
            id=item["id"],
            name=item["name"],
            pool=item["pool"],
            manufacturer=item["manufacturer"],
            memory_gb=item["memory_gb"],
            cuda_versions=tuple(item["cuda_versions"]),
        )
        types.setdefault(gpu.pool, []).append(gpu)
    pools = {
        item["id"]: Pool(item["id"], item["serverless_price_per_second"], tuple(types.get(item["id"], [])))
        for item in data["pools"]
    }
    data_centers = tuple(
        DataCenter(
            id=item["id"],
            name=item["name"],
            region=item["region"],
            global_network=item["global_network"],
            network_volume_types=tuple(item["network_volume_types"]),
            compliance=tuple(item["compliance"]),
        )
        for item in data["data_centers"]
    )
    flavors = {
        item["id"]: CpuFlavor(
            id=item["id"],
            name=item["name"],
            memory_gb_per_vcpu=item["memory_gb_per_vcpu"],
            group=item["group"],
            vcpu_min=item["vcpu_min"],
            vcpu_max=item["vcpu_max"],
            secure_price_per_vcpu_hour=item["secure_price_per_vcpu_hour"],
            serverless_price_per_vcpu_hour=item["serverless_price_per_vcpu_hour"],
        )
        for item in data["cpu_flavors"]
    }
    return Catalog(pools=pools, data_centers=data_centers, cpu_flavors=flavors)
