"""Plan and apply: read the platform once, compare, then create or PATCH (or do nothing).

A no-op apply makes no write call and at most four reads (the endpoint list, the GPU
catalog, the data centers, the secrets list). An update re-reads the endpoint just before
its PATCH and refuses when another deploy changed it since the plan read it.
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
from deploy.release import cost, hooks, records
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


class RolloutTimeout(DeployRefused):
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
    checks = run_preflight(api, loaded, body, catalog, environ)
    estimate = cost.estimate(plan.desired, plan.current, catalog)
    return dataclasses.replace(plan, preflight=checks, cost=estimate)


@dataclass(frozen=True)
class Applied:
    """What `apply` did."""

    plan: Plan
    endpoint_id: str
    version: int | None
    api_calls: dict[str, int]
    rollout: dict[str, Any] | None = None
    forced: list[Check] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.plan.action != "none"

    def to_json(self, loaded: LoadedConfig) -> dict[str, Any]:
        data = {
            "endpoint_id": self.endpoint_id,
            "changed": self.changed,
            "action": self.plan.action,
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


def write(
    api: RunPodApi, loaded: LoadedConfig, plan: Plan, environ: Mapping[str, str], progress: Progress
) -> str:
    """Create or PATCH as planned, secrets, registry credential and volumes first; the endpoint id."""
    hooks.sync_secrets(api, loaded, environ, progress)
    body = dict(plan.body)
    # The plan showed ids still to be created as pending: create them now and send the real ones.
    hooks.resolve_ids(api, loaded, body, environ, dry_run=False)
    if plan.action == "create":
        return str(api.create_endpoint(body)["id"])
    assert plan.endpoint_id is not None
    check_unchanged(api, plan)
    api.update_endpoint(plan.endpoint_id, body)
    return plan.endpoint_id


def wait_rollout(
    api: RunPodApi, endpoint_id: str, timeout: float, progress: Progress, *, version: int | None = None
) -> dict[str, Any]:
    """Follow ``/releases`` until no worker runs an older version; the last rollout summary."""
    deadline = time.monotonic() + timeout
    while True:
        doc = api.releases(endpoint_id)
        rollout: dict[str, Any] = doc["rollout"]
        current = doc.get("endpointVersion")
        arrived = version is None or (current is not None and current >= version)
        if arrived and not rollout["inProgress"]:
            progress(
                f"rollout: done, {rollout['workersOnLatest']}/{rollout['workersTotal']} workers on v{current}"
            )
            return rollout
        progress(
            f"rollout: {rollout['percentOnLatest']}% "
            f"({rollout['workersOnLatest']}/{rollout['workersTotal']} workers on v{current})"
        )
        if time.monotonic() >= deadline:
            raise RolloutTimeout(
                f"rollout of v{current} on {endpoint_id} not finished after {timeout:g}s "
                f"({rollout['workersOnLatest']}/{rollout['workersTotal']} workers on it)",
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
    if plan.action == "none":
        assert plan.endpoint_id is not None
        if hooks.secrets_stale(plan.preflight):
            # The endpoint is as configured but a secret it references is missing or stale.
            hooks.sync_secrets(api, loaded, environ, progress)
        version = history[-1].get("version") if history else None
        return Applied(plan, plan.endpoint_id, version, api.calls.to_json(), forced=failed(plan.preflight))
    progress(f"apply: {plan.action} {plan.name} ({len(plan.changes)} change(s))")
    endpoint_id = write(api, loaded, plan, environ, progress)
    version = api.releases(endpoint_id).get("endpointVersion")
    rollout = None
    if wait:
        rollout = wait_rollout(api, endpoint_id, timeout, progress, version=version)
    entry = {
        "time": records.now(),
        "endpoint": plan.name,
        "image": plan.image,
        "version": version,
        "action": plan.action,
        "changes": [change.to_json() for change in plan.changes],
    }
    records.append(loaded, target.record_env, loaded.masker.data(entry))
    return Applied(plan, endpoint_id, version, api.calls.to_json(), rollout, failed(plan.preflight))
