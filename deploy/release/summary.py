"""A plan as people read it: the lines `plan` and `apply` print and `release` logs before it applies.

One place, so every command shows the same changes, resources, preflight and cost, each line
through the config's masker (no secret value, inline or copied, is ever shown).
"""

from __future__ import annotations

from deploy.config import LoadedConfig
from deploy.release import cost
from deploy.release.plan import Plan


def plan_lines(plan: Plan, loaded: LoadedConfig) -> list[str]:
    """``endpoint:``, ``image:``, the action and its changes, resources, ``preflight:`` items, cost."""
    mask = loaded.masker.text
    shown_id = f" ({plan.endpoint_id})" if plan.endpoint_id else ""
    lines = [f"endpoint: {plan.name}{shown_id}", mask(f"image: {plan.image}")]
    if plan.action == "none":
        lines.append("action: none (the endpoint matches the config)")
    else:
        rolls = "a new release: workers roll" if plan.rolls_workers else "in place: no new release"
        lines.append(f"action: {plan.action}, {len(plan.changes)} change(s), {rolls}")
        lines.extend(mask(f"  {change.line()}") for change in plan.changes)
    lines.extend(mask(f"resource: {item['action']} {item['kind']} {item['name']}") for item in plan.resources)
    if plan.preflight:
        lines.append("preflight:")
        lines.extend(mask(f"  {check.line()}") for check in plan.preflight)
    lines.append(cost.line(plan.cost))
    return lines
