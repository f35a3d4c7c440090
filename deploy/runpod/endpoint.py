"""Endpoint rules: what RunPod's REST v2 accepts as an endpoint, beyond what each field says alone.

One implementation for config validation, render (which checks its own output) and the
emulator, so the three accept and reject the same documents. Three kinds of problem:

- schema (422): the body breaks the vendored `CreateEndpointRequest` /
  `UpdateEndpointRequest` schema;
- range (422): a number the spec leaves unbounded but the platform cannot take (see
  `range_problems`), or text it cannot carry (`deploy.runpod.text`: name length and
  invisible characters, POSIX env names, NUL in env values or args, env size);
- rule (400): a relation between fields, as the spec's operation descriptions and
  runpod-platform.md §2.3/§2.5 give them. Rules that depend on the hardware catalog
  (`catalog=True`) may be out of date where the live catalog is newer.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from deploy.runpod import schemas
from deploy.runpod.catalog import catalog, cuda_key
from deploy.runpod.defaults import WORKERS_DEFAULTS, idle_timeout_applies
from deploy.runpod.text import request_text_problems

JsonPath = tuple[str | int, ...]

#: Largest integer any endpoint field takes. The spec bounds few integers; RunPod's
#: management backend is GraphQL, whose `Int` is a signed 32-bit integer (GraphQL spec
#: §3.5.1), so a larger value can never be stored. Anything above is absurd, not big.
INT_MAX: Final = 2**31 - 1
#: Endpoint `timeout` bounds, ms: the job `policy.executionTimeout` range, "min 5 s, max
#: 7 days", which overrides the endpoint setting per job (runpod-platform.md §4.2). The
#: spec types `timeout` as a bare integer; a negative one would time every job out at once.
TIMEOUT_MS: Final = (5_000, 7 * 24 * 3600 * 1000)


@dataclass(frozen=True)
class Problem:
    """One thing RunPod would refuse: where (JSON path in the body), why, and the HTTP status."""

    path: JsonPath
    message: str
    status: int = 400
    #: The rule reads the vendored hardware catalog, which may be older than RunPod's.
    catalog: bool = False

    def dotted(self) -> str:
        """``workers.max``, ``cpu[0].id``; ``$`` for the whole body."""
        text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in self.path)
        return text.lstrip(".") or "$"

    def line(self) -> str:
        """``workers.max: message`` (config and render spelling)."""
        return f"{self.dotted()}: {self.message}"

    def json_line(self) -> str:
        """``$.workers.max: message`` (the emulator's problem-details spelling, a JSON path)."""
        return f"${'' if not self.path else '.' + self.dotted()}: {self.message}".replace(".[", "[")


def request_problems(schema_name: str, body: Any) -> list[Problem]:
    """Schema, range and text problems (all 422) of a request body, in path order."""
    found = [Problem(path, message, 422) for path, message in schemas.errors(schema_name, body)]
    if _load_balancer_on_queue_delay(body):
        # The schema's if/then gives three opaque lines for this one mistake; say it once.
        found = [p for p in found if p.path[:1] != ("scaling",)]
        found.append(Problem(("scaling", "type"), LB_SCALING, 422))
    if not found:
        found = list(range_problems(body))
        found += [Problem(path, message, 422) for path, message in request_text_problems(body)]
    return sorted(found, key=lambda p: (str(p.path), p.message))


LB_SCALING: Final = "LOAD_BALANCER endpoints must scale on REQUEST_COUNT"


def _load_balancer_on_queue_delay(body: Any) -> bool:
    if not isinstance(body, dict):
        return False
    scaling = body.get("scaling")
    return (
        body.get("type") == "LOAD_BALANCER"
        and isinstance(scaling, dict)
        and scaling.get("type") == "QUEUE_DELAY"
    )


def range_problems(body: Any, path: JsonPath = ()) -> Iterator[Problem]:
    """Numbers beyond `INT_MAX` or not finite, and a `timeout` outside `TIMEOUT_MS`."""
    if isinstance(body, dict):
        for key, value in body.items():
            yield from range_problems(value, (*path, key))
    elif isinstance(body, list):
        for index, value in enumerate(body):
            yield from range_problems(value, (*path, index))
    elif isinstance(body, bool | str) or body is None:
        return
    elif isinstance(body, int):
        if path == ("timeout",) and not TIMEOUT_MS[0] <= body <= TIMEOUT_MS[1]:
            low, high = TIMEOUT_MS
            yield Problem(path, f"must be {low} to {high} ms (5 s to 7 days), got {_short(body)}", 422)
        elif abs(body) > INT_MAX:
            yield Problem(path, f"{_short(body)} is out of range (at most {INT_MAX})", 422)
    elif isinstance(body, float) and not math.isfinite(body):
        yield Problem(path, "must be a finite number", 422)
    elif isinstance(body, float) and abs(body) > INT_MAX:
        # No float field (queueDelay, seconds) can mean more than the integer fields can hold.
        yield Problem(path, f"{body:.3g} is out of range (at most {INT_MAX})", 422)


def _short(number: int) -> str:
    # A 4,000-digit integer must not become a 4,000-digit error line (nor hit int->str limits).
    if abs(number) < 10**20:
        return str(number)
    return f"an integer of about {int(math.log10(abs(number))) + 1} digits"


def state_problems(doc: dict[str, Any], *, idle_timeout_given: bool) -> list[Problem]:
    """Rule problems (400) of a whole endpoint: a create body, or an endpoint after a PATCH.

    ``doc`` uses REST v2 spelling and has passed the schema; ``idle_timeout_given`` says
    whether the request itself set `workers.idleTimeout` (defaults never count).
    """
    found = list(_compute_problems(doc))
    found += _data_center_problems(doc.get("dataCenterIds") or [])
    workers = doc.get("workers") or {}
    low = workers.get("min", WORKERS_DEFAULTS["min"])
    high = workers.get("max", WORKERS_DEFAULTS["max"])
    if high < low:
        found.append(Problem(("workers", "max"), f"must be >= workers.min ({high} < {low})"))
    scaling_type = (doc.get("scaling") or {}).get("type")
    endpoint_type = doc.get("type", "QUEUE")
    if endpoint_type == "LOAD_BALANCER" and scaling_type == "QUEUE_DELAY":
        found.append(Problem(("scaling", "type"), LB_SCALING))
    if idle_timeout_given and not idle_timeout_applies(endpoint_type, str(scaling_type)):
        found.append(
            Problem(
                ("workers", "idleTimeout"),
                "not applicable to QUEUE endpoints scaling on REQUEST_COUNT (RunPod rejects it)",
            )
        )
    return found


def update_problems(current: dict[str, Any], body: dict[str, Any]) -> list[Problem]:
    """Rule problems (400) of a PATCH body against the endpoint it changes: the compute family is fixed."""
    if "gpu" in body and "cpu" in body:
        return [Problem(("cpu",), "set either gpu or cpu, not both")]
    for given, other in (("gpu", "cpu"), ("cpu", "gpu")):
        if given in body and other in current:
            message = f"{given} given for a {other.upper()} endpoint; the compute family cannot change"
            return [Problem((given,), message)]
    return []


def _compute_problems(doc: dict[str, Any]) -> Iterator[Problem]:
    gpu, cpu = doc.get("gpu"), doc.get("cpu")
    if gpu is not None and cpu is not None:
        yield Problem(("cpu",), "set either gpu or cpu, not both")
    elif gpu is None and cpu is None:
        yield Problem((), "set either gpu (pools) or cpu (flavors): RunPod needs exactly one")
    if gpu is not None:
        yield from _gpu_problems(gpu)
    for index, item in enumerate(cpu or []):
        yield from _cpu_problems(index, item)


def _gpu_problems(gpu: dict[str, Any]) -> Iterator[Problem]:
    pools: list[str] = gpu.get("pools") or []
    known = catalog().pools
    unknown = [pool for pool in pools if pool not in known]
    for index, pool in enumerate(pools):
        if pool in unknown:
            message = f"unknown GPU pool {pool} (known pools: {', '.join(known)})"
            yield Problem(("gpu", "pools", index), message, catalog=True)
    cards = set(catalog().cards(pools))
    excluded = [name.strip() for name in gpu.get("excludedTypes") or []]
    for index, name in enumerate(excluded):
        if name not in cards:
            message = f"{name} is not in the selected pools"
            # Only an unknown pool makes this a question of catalog age.
            yield Problem(("gpu", "excludedTypes", index), message, catalog=bool(unknown))
    if cards and not unknown and cards <= set(excluded):
        yield Problem(("gpu", "excludedTypes"), "excludedTypes leave no GPU type in the selected pools")
    yield from _cuda_problems(gpu)
    if gpu.get("allowedCudaVersions") and gpu.get("minCudaVersion"):
        yield Problem(
            ("gpu", "minCudaVersion"),
            "cannot be combined with a non-empty allowedCudaVersions (pick an exact set or a floor)",
        )


def _cuda_problems(gpu: dict[str, Any]) -> Iterator[Problem]:
    """CUDA versions no GPU type in the catalog offers: placement could never match."""
    known = catalog().cuda_versions()
    for index, version in enumerate(gpu.get("allowedCudaVersions") or []):
        if version not in known:
            message = f"unknown CUDA version {version} (known: {', '.join(known)})"
            yield Problem(("gpu", "allowedCudaVersions", index), message, catalog=True)
    floor = gpu.get("minCudaVersion")
    if floor and cuda_key(floor) > cuda_key(known[-1]):
        message = f"no GPU type offers CUDA {floor} or newer (newest known: {known[-1]})"
        yield Problem(("gpu", "minCudaVersion"), message, catalog=True)


def _data_center_problems(ids: list[str]) -> list[Problem]:
    known = catalog().data_center_ids()
    return [
        Problem(
            ("dataCenterIds", index), f"unknown data center {dc} (known: {', '.join(known)})", catalog=True
        )
        for index, dc in enumerate(ids)
        if dc not in known
    ]


def _cpu_problems(index: int, item: dict[str, Any]) -> Iterator[Problem]:
    flavors = catalog().cpu_flavors
    if item["id"] not in flavors:
        message = f"unknown CPU flavor {item['id']} (known: {', '.join(flavors)})"
        yield Problem(("cpu", index, "id"), message, catalog=True)
    vcpus = item["vcpuCount"]
    if vcpus & (vcpus - 1):
        yield Problem(("cpu", index, "vcpuCount"), f"must be a power of two, got {vcpus}")


def create_problems(body: Any, *, idle_timeout_given: bool | None = None) -> list[Problem]:
    """Every problem of a `CreateEndpointRequest` body: schema/range (422) first, else rules (400).

    ``idle_timeout_given`` defaults to whether the body carries `workers.idleTimeout`.
    """
    found = request_problems("CreateEndpointRequest", body)
    if found:
        return found
    if idle_timeout_given is None:
        idle_timeout_given = "idleTimeout" in (body.get("workers") or {})
    return state_problems(body, idle_timeout_given=idle_timeout_given)
