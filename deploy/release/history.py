"""Releases, rollback and promote: history read from the API (and the deploy records), never rewritten.

RunPod has no rollback call. A rollback rebuilds the state an earlier release had by
applying, newest first, the inverse of every newer release's diff (``field := old``) to
the endpoint as it is now, and PATCHes that as a new release. A release's diff names
every field its PATCH changed, autoscaler ones included (RunPod's example release holds a
`workers.max` diff, runpod-platform.md §2.6), so only the entries that roll workers
(image, env, compute, disk…; `deploy.runpod.release.rolls`) are undone: autoscaler
settings (`workers`, `scaling`, `timeout`) stay as they are now.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from deploy.api import RunPodApi
from deploy.config import LoadedConfig
from deploy.errors import UsageError
from deploy.release.apply import Applied, Progress, apply_plan, with_checks
from deploy.release.desired import Target
from deploy.release.plan import Plan, make_plan, normalize
from deploy.runpod.release import rolls


def existing(api: RunPodApi, target: Target) -> dict[str, Any]:
    """The endpoint ``target`` names; UsageError when there is none."""
    found = api.find_endpoint(target.name)
    if found is None:
        raise UsageError(f"no endpoint named {target.name}", hint="deploy it first with `rpdeploy apply`")
    return found


def rows(releases: dict[str, Any], history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``[{version, time, image, workers, changed}]``, newest first.

    The image a release runs is the newest ``image`` diff at or below it; a release whose
    diff does not name one falls back to the deploy record of that version.
    """
    recorded = {entry.get("version"): entry.get("image") for entry in history}
    image: str | None = None
    out: list[dict[str, Any]] = []
    for release in reversed(releases.get("releases") or []):
        diff = release.get("diff") or []
        image = next((str(d["new"]) for d in diff if d.get("field") == "image" and d.get("new")), image)
        out.append(
            {
                "version": release.get("version"),
                "time": release.get("createdAt"),
                "image": image or recorded.get(release.get("version")),
                "workers": release.get("workerCount"),
                "changed": sorted({str(d.get("field")) for d in diff}),
            }
        )
    return list(reversed(out))


def target_version(releases: dict[str, Any], to: int | None, steps: int | None) -> int:
    """The version to roll back to (``--to VERSION`` or ``--steps N``); UsageError when there is none."""
    versions = sorted(
        (int(r["version"]) for r in releases.get("releases") or [] if r.get("version")), reverse=True
    )
    current = releases.get("endpointVersion") or (versions[0] if versions else None)
    if to is None:
        index = steps if steps is not None else 1
        older = [v for v in versions if current is None or v <= current]
        if index >= len(older):
            raise UsageError(f"--steps {index}: only {len(older)} release(s) exist ({_listed(versions)})")
        return older[index]
    if to not in versions:
        raise UsageError(f"--to {to}: no such release (releases: {_listed(versions)})")
    if to == current:
        raise UsageError(f"--to {to}: the endpoint already runs release v{to}")
    return to


def _listed(versions: list[int]) -> str:
    return ", ".join(f"v{v}" for v in versions) or "none"


def _set(doc: dict[str, Any], field: str, value: Any) -> None:
    """``doc[field] = value`` for a dotted release-diff field (``gpu.pools``); None removes (default)."""
    head, _, rest = field.partition(".")
    if rest:
        inner = doc.setdefault(head, {})
        if value is None:
            inner.pop(rest, None)
        else:
            inner[rest] = value
    elif value is None:
        doc.pop(head, None)
    else:
        doc[head] = value


def state_at(current_doc: dict[str, Any], releases: dict[str, Any], version: int) -> dict[str, Any]:
    """The endpoint's settings as of ``version``: the current ones with newer releases' rolled fields undone.

    Autoscaler entries in a diff are skipped: a rollback restores what a release rolled
    out, not the scaling someone has since tuned (docs/deploy.md).
    """
    state = copy.deepcopy(current_doc)
    for release in releases.get("releases") or []:  # newest first
        if int(release.get("version") or 0) <= version:
            continue
        for entry in release.get("diff") or []:
            if not rolls(str(entry["field"])):
                continue
            _set(state, str(entry["field"]), copy.deepcopy(entry.get("old")))
    return normalize(state)


def rollback_plan(
    loaded: LoadedConfig, target: Target, current_doc: dict[str, Any], releases: dict[str, Any], version: int
) -> tuple[Plan, dict[str, Any]]:
    """The plan that puts release ``version``'s settings back (as a new release); also its body for checks."""
    state = state_at(current_doc, releases, version)
    body = {"name": target.name, "type": current_doc.get("type", "QUEUE"), **state}
    return make_plan(loaded, target.name, body, current_doc), body


def roll_back(
    api: RunPodApi,
    loaded: LoadedConfig,
    target: Target,
    environ: Mapping[str, str],
    *,
    to: int | None = None,
    steps: int | None = None,
    force: bool = False,
    wait: bool = False,
    timeout: float = 600.0,
    progress: Progress = lambda _line: None,
) -> Applied:
    """Put release ``to``'s settings back (or ``steps`` back, default one) as a new release.

    `rpdeploy rollback` and the automatic rollback of `rpdeploy release`.
    """
    current = existing(api, target)
    doc = api.releases(str(current["id"]))
    version = target_version(doc, to, steps)
    progress(f"rollback: {target.name} to the settings of release v{version}")
    plan, body = rollback_plan(loaded, target, current, doc, version)
    plan = with_checks(api, loaded, plan, body, environ)
    return apply_plan(
        api, loaded, target, plan, environ, force=force, wait=wait, timeout=timeout, progress=progress
    )
