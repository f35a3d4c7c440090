"""The slice of RunPod's hardware catalog the emulator checks endpoint requests against.

Pool ids and their cards are RunPod's documented serverless GPU pools
(docs `references/gpu-types.mdx#gpu-pools`, runpod-platform.md §2.3); CPU flavors
follow the catalog's naming (`cpu3c`/`cpu5c` compute, `…g` general, `…m` memory
optimised) with memory derived per vCPU as the console shows it.
"""

from __future__ import annotations

GPU_POOLS: dict[str, tuple[str, ...]] = {
    "AMPERE_16": ("NVIDIA RTX A4000", "NVIDIA RTX A4500", "NVIDIA RTX 4000 Ada Generation",
                  "NVIDIA RTX 2000 Ada Generation"),
    "AMPERE_24": ("NVIDIA L4", "NVIDIA RTX A5000", "NVIDIA GeForce RTX 3090"),
    "ADA_24": ("NVIDIA GeForce RTX 4090",),
    "AMPERE_48": ("NVIDIA RTX A6000", "NVIDIA A40"),
    "ADA_48_PRO": ("NVIDIA L40", "NVIDIA L40S", "NVIDIA RTX 6000 Ada Generation"),
    "AMPERE_80": ("NVIDIA A100 80GB PCIe", "NVIDIA A100-SXM4-80GB"),
    "ADA_80_PRO": ("NVIDIA H100 80GB HBM3", "NVIDIA H100 PCIe", "NVIDIA H100 NVL"),
    "HOPPER_141": ("NVIDIA H200",),
}  # fmt: skip

#: GB of memory per vCPU by flavor family letter.
CPU_MEMORY_PER_VCPU = {"c": 2, "g": 4, "m": 8}
CPU_FLAVORS = tuple(f"cpu{gen}{family}" for gen in (3, 5) for family in CPU_MEMORY_PER_VCPU)


def cpu_memory_gb(flavor: str, vcpus: int) -> int:
    return CPU_MEMORY_PER_VCPU[flavor[-1]] * vcpus


def placement_gpu(pools: list[str], excluded: list[str]) -> str | None:
    """The GPU type a worker is 'placed' on: the first eligible card of the listed pools."""
    skip = {name.strip() for name in excluded}
    for pool in pools:
        for card in GPU_POOLS.get(pool, ()):
            if card not in skip:
                return card
    return None
