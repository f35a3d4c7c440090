"""What an endpoint costs per hour: always-on (``workers.min``) and the ceiling (``workers.max``).

GPU: ``price.serverless`` (USD per GPU per hour, from the GPU catalog) × ``gpu.count`` per
worker. With several pools a worker may land in any of them, so the dearest listed pool
is used: the figures are an upper bound. CPU: ``price.serverlessPerVcpu`` × ``vcpuCount``
from the CPU catalog. Account discounts are not reflected (the catalog says so too).
"""

from __future__ import annotations

from typing import Any

from deploy.release.checks import Check
from deploy.release.preflight import Catalog

#: RunPod's default account spend limit, USD per hour across all resources (docs.runpod.io/pricing/serverless,
#: "Account limits: Spend limit: Default limit of $80/hour"); the account's "Total Workers" quota
#: (glossary) also caps the sum of workers.max, but RunPod publishes no default figure for it.
SPEND_LIMIT_PER_HOUR = 80.0


def _round(value: float) -> float:
    return round(value, 4)


def per_worker(settings: dict[str, Any], catalog: Catalog) -> float | None:
    """USD per hour of one worker of ``settings`` (normalised), None when the catalog has no price."""
    gpu = settings.get("gpu")
    if gpu:
        prices = [
            float(entry["price"]["serverless"])
            for entry in catalog.gpus
            if entry.get("pool") in gpu["pools"] and (entry.get("price") or {}).get("serverless") is not None
        ]
        return _round(max(prices) * int(gpu.get("count", 1))) if prices else None
    cpus = settings.get("cpu") or []
    if not cpus or catalog.cpus is None:
        return None
    prices = []
    for item in cpus:
        flavor = _cpu_flavor(catalog.cpus, str(item["id"]))
        if flavor is None:
            return None
        prices.append(float(flavor["price"]["serverlessPerVcpu"]) * int(item["vcpuCount"]))
    return _round(max(prices))


def _cpu_flavor(cpus: list[dict[str, Any]], flavor: str) -> dict[str, Any] | None:
    """The catalog entry for ``flavor`` (``cpu3c``); RunPod's ids may carry a size suffix (``cpu3c-2-4``)."""
    exact = [entry for entry in cpus if entry.get("id") == flavor]
    prefixed = [entry for entry in cpus if str(entry.get("id", "")).startswith(f"{flavor}-")]
    found = exact or prefixed
    return found[0] if found else None


def _figures(settings: dict[str, Any] | None, catalog: Catalog) -> dict[str, Any] | None:
    if settings is None:
        return None
    worker = per_worker(settings, catalog)
    workers = settings.get("workers") or {}
    if worker is None:
        return {"per_worker": None, "always_on": None, "ceiling": None}
    return {
        "per_worker": worker,
        "always_on": _round(worker * int(workers.get("min", 0))),
        "ceiling": _round(worker * int(workers.get("max", 0))),
    }


def estimate(desired: dict[str, Any], current: dict[str, Any] | None, catalog: Catalog) -> dict[str, Any]:
    """``{"currency", "unit", "per_worker", "always_on", "ceiling", "current", "change"}`` (USD per hour)."""
    new = _figures(desired, catalog) or {}
    old = _figures(current, catalog)
    change = None
    if old is not None:
        change = {
            key: None if new.get(key) is None or old.get(key) is None else _round(new[key] - old[key])
            for key in ("always_on", "ceiling")
        }
    return {"currency": "USD", "unit": "hour", **new, "current": old, "change": change}


def money(value: float, *, sign: bool = False) -> str:
    """``$1,234.56``: fixed point, thousands separators, at least cents, up to 4 decimals (never 1e+08)."""
    text = f"{abs(value):,.4f}".rstrip("0")
    whole, _, cents = text.partition(".")
    shown = f"${whole}.{cents.ljust(2, '0')}"
    if value < 0:
        return f"-{shown}"
    return f"+{shown}" if sign else shown


def line(cost: dict[str, Any]) -> str:
    """``cost: $0.00/h always-on, up to $2.232/h (was …)``, for the text output."""
    if cost.get("always_on") is None:
        return "cost: unknown (no catalog price for this compute)"
    text = f"cost: {money(cost['always_on'])}/h always-on, up to {money(cost['ceiling'])}/h at workers.max"
    change = cost.get("change")
    if change and change.get("always_on") is not None:
        text += (
            f" (change: {money(change['always_on'], sign=True)}/h always-on,"
            f" {money(change['ceiling'], sign=True)}/h ceiling)"
        )
    return text


def checks(cost: dict[str, Any], settings: dict[str, Any]) -> list[Check]:
    """A warning when ``workers.max`` workers would cost more than RunPod's default spend limit."""
    ceiling = cost.get("ceiling")
    if ceiling is None or ceiling <= SPEND_LIMIT_PER_HOUR:
        return []
    most = int((settings.get("workers") or {}).get("max", 0))
    detail = (
        f"workers.max {most:,} costs up to {money(ceiling)}/h, above RunPod's default account spend limit"
        f" of {money(SPEND_LIMIT_PER_HOUR)}/h: the account cannot run that many (lower it, or ask RunPod"
        " to raise the limit)"
    )
    return [Check("workers.max", True, detail, "endpoint.workers.max", warning=True)]
