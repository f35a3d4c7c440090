"""Plan and apply: read the platform once, compare, then create or PATCH (or do nothing).

Apply never writes what the plan did not show: the endpoint create/PATCH and the resources
the plan lists (missing secrets, a registry credential, network volumes), nothing else; a
stale secret is a preflight warning for `rpdeploy secrets sync`, never rotated here.
Each resource is read once per command: a no-op apply makes no write call and four reads
(the endpoint list, the GPU catalog, the data centers, the secrets list); an update adds
the race check (the endpoint re-read and compared, before the first write of the apply,
refused when another deploy changed it) and the releases read.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from deploy.api import RunPodApi
from deploy.config import LoadedConfig
from deploy.errors import ExitCode, RpdeployError
from deploy.release import cost, hooks, records, secrets_sync
from deploy.release.checks import Check, failed
from deploy.release.desired import Target, current_endpoint, desired_body
from deploy.release.plan import Plan, make_plan, normalize
from deploy.release.preflight import read_catalog, run_preflight

Progress = Callable[[str], None]
#: Seconds between two reads of the rollout while waiting (RunPod's rate limits allow far more).
POLL_S = 1.0


class DeployRefused(RpdeployError):
    """An apply that stopped, on purpose, before or after its write (exit 1: the input was fine)."""

    exit_code = ExitCode.FAILED


class PreflightFailed(DeployRefused):
    """A preflight check failed and ``--force`` was not given; nothing was written."""


class EndpointChanged(DeployRefused):
    """Another deploy (or the console) changed the endpoint between the plan's read and the write."""


class RolloutError(DeployRefused):
    """``--wait``: the release was applied but its rollout failed or did not finish (the release stands).

    ``applied`` is what the apply wrote (set by `apply_plan` before it re-raises), so that a
    caller (the release gate) can roll back or stop the endpoint it left.
    """

    applied: Applied | None = None


class RolloutTimeout(RolloutError):
    """``--wait``: the rollout did not reach every worker within ``--timeout`` (the release stands)."""


def prepare(
    api: RunPodApi, loaded: LoadedConfig, target: Target, image: str, environ: Mapping[str, str]
) -> Plan:
    """The plan for deploying ``image`` to ``target``, with its preflight and cost (reads only)."""
    body = desired_body(loaded, image, environ, target.name)
    hooks.resolve_ids(api, loaded, body, environ, dry_run=True)
    current = current_endpoint(api, target.name)
    return with_checks(api, loaded, make_plan(loaded, target.name, body, current), body, environ)


def with_checks(
    api: RunPodApi, loaded: LoadedConfig, plan: Plan, body: dict[str, Any], environ: Mapping[str, str]
) -> Plan:
    """``plan`` with its preflight and cost (the catalog read once for both)."""
    catalog = read_catalog(api, body)
    secrets = secrets_sync.listed(api, loaded, environ)
    checks = run_preflight(api, loaded, body, catalog, environ, secrets=secrets)
    estimate = cost.estimate(plan.desired, plan.current, catalog)
    checks += cost.checks(estimate, plan.desired)
    resources = hooks.resources(body, checks)
    return dataclasses.replace(plan, preflight=checks, cost=estimate, resources=resources, secrets=secrets)


@dataclass(frozen=True)
class Applied:
    """What `apply` did."""

    plan: Plan
    endpoint_id: str
    version: int | None
    api_calls: dict[str, int]
    rollout: dict[str, Any] | None = None
    forced: list[Check] = field(default_factory=list)
    #: What this apply wrote, as ``{kind, name, action}``, in order (empty: nothing written).
    written: list[dict[str, str]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True whenever apply wrote anything (a created secret alone is a change)."""
        return bool(self.written)

    def to_json(self, loaded: LoadedConfig) -> dict[str, Any]:
        data = {
            "endpoint_id": self.endpoint_id,
            "changed": self.changed,
            "action": self.plan.action,
            "written": self.written,
            "release": {"version": self.version},
            "api_calls": self.api_calls,
            "preflight": [check.to_json() for check in self.plan.preflight],
            "cost": self.plan.cost,
        }
        masked: dict[str, Any] = loaded.masker.data(data)
        return masked


def refuse_failed_preflight(plan: Plan, *, force: bool) -> None:
    bad = failed(plan.preflight)
    if bad and not force:
        lines = [
            f"preflight failed: {check.check}: {check.detail}"
            + (f" (at {check.where})" if check.where else "")
            for check in bad
        ]
        raise PreflightFailed("\n".join(lines), hint="fix the config (or pass --force to deploy anyway)")


def check_unchanged(api: RunPodApi, plan: Plan) -> None:
    """Re-read the endpoint; EndpointChanged naming the fields when it differs from what the plan read."""
    assert plan.endpoint_id is not None
    assert plan.current is not None
    now = normalize(api.get_endpoint(plan.endpoint_id))
    moved = sorted(
        name for name in now.keys() | plan.current.keys() if now.get(name) != plan.current.get(name)
    )
    if moved:
        raise EndpointChanged(
            f"endpoint {plan.name} changed since this plan read it ({', '.join(moved)}); nothing written",
            hint="another deploy or the console changed it: run plan/apply again",
        )


def write_resources(
    api: RunPodApi, loaded: LoadedConfig, plan: Plan, environ: Mapping[str, str], progress: Progress
) -> list[dict[str, str]]:
    """Create the missing secrets the plan listed (only those); what was written."""
    created = hooks.create_secrets(api, loaded, environ, plan.resources)
    for name in created:
        progress(f"secrets: create {name}")
    return [{"kind": "secret", "name": name, "action": "create"} for name in created]


def write_endpoint(
    api: RunPodApi, loaded: LoadedConfig, plan: Plan, environ: Mapping[str, str]
) -> tuple[str, list[dict[str, str]]]:
    """Create or PATCH as planned, the registry credential and volumes first; the id and what was written."""
    body = dict(plan.body)
    # The plan showed ids still to be created as pending: create them now and send the real ones.
    hooks.resolve_ids(api, loaded, body, environ, dry_run=False)
    written = [item for item in plan.resources if item["kind"] != "secret" and _sent(item, body)]
    if plan.action == "create":
        endpoint_id = str(api.create_endpoint(body)["id"])
    else:
        assert plan.endpoint_id is not None
        api.update_endpoint(plan.endpoint_id, body)
        endpoint_id = plan.endpoint_id
    return endpoint_id, [*written, {"kind": "endpoint", "name": plan.name, "action": plan.action}]


def _sent(item: dict[str, str], body: dict[str, Any]) -> bool:
    """Whether ``body`` carries the resource ``item`` (resolve_ids created it only then)."""
    field_name = "registry" if item["kind"] == "registry-auth" else "networkVolumes"
    return field_name in body


class RolloutFailed(RolloutError):
    """``--wait``: a worker of the new release failed (unhealthy, or no worker can be placed)."""


#: Worker states that serve jobs (RunPod's WorkerStatus): RUNNING a job or IDLE and polling.
READY = frozenset({"RUNNING", "IDLE"})


def rollout_state(doc: dict[str, Any], version: int | None, needed: int) -> tuple[bool, str]:
    """Whether the rollout is done, and what it stands at (or what is still missing), from `/workers`.

    Done only when the endpoint is at ``version``, no worker runs an older one and at least
    ``needed`` workers are ready; RolloutFailed at once when a worker of the current version
    is unhealthy or RunPod says none can be placed. An unhealthy worker of an older version
    (the failed release a rollback replaces) is only a stale one still listed.
    """
    current = doc.get("endpointVersion")
    workers: list[dict[str, Any]] = doc.get("workers") or []
    bad = [
        w
        for w in workers
        if not w.get("isStale") and (w.get("status") == "UNHEALTHY" or w.get("statusReason"))
    ]
    if bad:
        reason = bad[0].get("statusReason") or "failing health checks"
        raise RolloutFailed(
            f"rollout of v{current}: worker {bad[0].get('id')} is unhealthy: {reason}",
            hint="see `rpdeploy releases` and the worker's logs; the release stays applied",
        )
    if doc.get("placementError"):
        raise RolloutFailed(f"rollout of v{current}: no worker can start: {doc['placementError']}")
    stale = sum(1 for w in workers if w.get("isStale"))
    ready = sum(1 for w in workers if not w.get("isStale") and w.get("status") in READY)
    arrived = version is None or (current is not None and current >= version)
    missing = []
    if not arrived:
        missing.append(f"the endpoint is still at v{current}")
    if stale:
        missing.append(f"{stale} worker(s) on an older version")
    if ready < needed:
        missing.append(f"{ready}/{needed} ready worker(s) on v{current}")
    if missing:
        return False, "; ".join(missing)
    return True, f"{ready} ready worker(s) on v{current} (needed {needed}), none on an older version"


def wait_rollout(
    api: RunPodApi,
    endpoint_id: str,
    timeout: float,
    progress: Progress,
    *,
    version: int | None = None,
    needed: int = 0,
) -> dict[str, Any]:
    """Follow ``/workers`` until `rollout_state` says done; the last workers summary.

    ``needed`` is min(workers.min, workers.max): an endpoint kept warm is only rolled out once
    that many workers of the new version serve; with workers.min 0 and no worker, it is done.
    """
    deadline = time.monotonic() + timeout
    while True:
        doc = api.workers(endpoint_id)
        done, state = rollout_state(doc, version, needed)
        summary: dict[str, Any] = doc.get("summary") or {}
        if done:
            progress(f"rollout: done, {state}")
            return summary
        progress(f"rollout: waiting: {state}")
        if time.monotonic() >= deadline:
            raise RolloutTimeout(
                f"rollout on {endpoint_id} not finished after {timeout:g}s: still missing {state}",
                hint="the release is applied; workers move to it as they cycle (see `rpdeploy releases`)",
            )
        time.sleep(POLL_S)


def apply_plan(
    api: RunPodApi,
    loaded: LoadedConfig,
    target: Target,
    plan: Plan,
    environ: Mapping[str, str],
    *,
    force: bool = False,
    wait: bool = False,
    timeout: float = 600.0,
    progress: Progress = lambda _line: None,
) -> Applied:
    """Apply ``plan`` (from `prepare`); record it in deploy.json when something was written."""
    refuse_failed_preflight(plan, force=force)
    history = records.read_history(loaded, target.record_env)
    if plan.action == "update":
        # Every consistency check comes before the first write: a refusal then writes nothing.
        check_unchanged(api, plan)
    written = write_resources(api, loaded, plan, environ, progress)
    if plan.action == "none":
        assert plan.endpoint_id is not None
        version = history[-1].get("version") if history else None
        calls = api.calls.to_json()
        return Applied(plan, plan.endpoint_id, version, calls, forced=failed(plan.preflight), written=written)
    progress(f"apply: {plan.action} {plan.name} ({len(plan.changes)} change(s))")
    endpoint_id, more = write_endpoint(api, loaded, plan, environ)
    written += more
    version = api.releases(endpoint_id).get("endpointVersion")
    entry = {
        "time": records.now(),
        "endpoint": plan.name,
        "image": plan.image,
        "version": version,
        "action": plan.action,
        "changes": [change.to_json() for change in plan.changes],
    }
    # Recorded before any wait: a rollout that fails or times out leaves the release applied.
    records.append(loaded, target.record_env, loaded.masker.data(entry))
    applied = Applied(plan, endpoint_id, version, api.calls.to_json(), None, failed(plan.preflight), written)
    if not wait:
        return applied
    workers = plan.desired.get("workers") or {}
    needed = min(int(workers.get("min", 0)), int(workers.get("max", 0)))
    try:
        rollout = wait_rollout(api, endpoint_id, timeout, progress, version=version, needed=needed)
    except RolloutError as exc:
        exc.applied = dataclasses.replace(applied, api_calls=api.calls.to_json())
        raise
    return dataclasses.replace(applied, api_calls=api.calls.to_json(), rollout=rollout)
