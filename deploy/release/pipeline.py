"""The gated release, per environment: deploy by digest, wait for the rollout, validate, roll back.

A stage reuses the engine's steps (`apply.prepare`, `apply.apply_plan`, `history.roll_back`)
and the validation runner (`validate.run`); it adds only the gate: a release that fails its
cases (or whose rollout never finishes) is rolled back to the release the endpoint ran
before, and the stage says so. A stage that changed nothing still validates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deploy.api import RunPodApi
from deploy.config import LoadedConfig
from deploy.release import desired, history, reports, validate
from deploy.release.apply import Applied, Progress, RolloutTimeout, apply_plan, prepare
from deploy.release.cases import CaseSet
from deploy.release.plan import Plan
from deploy.release.summary import plan_lines
from deploy.release.validate import ValidateListener, ValidationReport


@dataclass(frozen=True)
class StageOptions:
    """How every stage of one release runs (the `release` command's options)."""

    timeout: float = 600.0
    force: bool = False
    concurrency: int = 4


@dataclass(frozen=True)
class Stage:
    """What one environment's deploy, validation and (on failure) rollback did."""

    env: str
    applied: Applied
    #: The release the endpoint ran before this deploy (None: created now, or no release yet).
    previous_version: int | None
    #: None when the rollout did not finish (`rollout_error`): nothing was validated.
    report: ValidationReport | None
    rollout_error: str | None = None
    rollback: Applied | None = None
    #: Why a failed stage was not rolled back (a new endpoint, a change with no new release).
    no_rollback: str | None = None

    @property
    def ok(self) -> bool:
        return self.rollout_error is None and self.report is not None and self.report.ok

    @property
    def deploy_line(self) -> str:
        """The deploy step in one line: "no change" when the endpoint already matched."""
        applied = self.applied
        if not applied.changed:
            where = f"{applied.plan.name}, {applied.endpoint_id}, release v{applied.version}"
            return f"{self.env}: no change ({where})"
        return (
            f"{self.env}: {applied.plan.action}d {applied.plan.name} ({applied.endpoint_id}), "
            f"release v{applied.version}"
        )

    @property
    def verdict(self) -> str:
        """The stage's outcome in one line, the rollback included."""
        if self.ok:
            assert self.report is not None
            return f"{self.env}: validation passed ({reports.headline(self.report)})"
        why = self.rollout_error or (reports.headline(self.report) if self.report else "not validated")
        if self.rollback is not None:
            return (
                f"{self.env}: FAILED ({why}); rolled back automatically to release v{self.previous_version} "
                f"(now release v{self.rollback.version})"
            )
        return f"{self.env}: FAILED ({why}); not rolled back: {self.no_rollback}"

    def to_json(self, loaded: LoadedConfig) -> dict[str, Any]:
        rollback = None
        if self.rollback is not None:
            rollback = {
                "to_version": self.previous_version,
                "release": {"version": self.rollback.version},
                "api_calls": self.rollback.api_calls,
            }
        return {
            "env": self.env,
            "ok": self.ok,
            "deploy": {**self.applied.to_json(loaded), "previous_version": self.previous_version},
            "rollout_error": self.rollout_error,
            "validation": self.report.to_json() if self.report is not None else None,
            "rollback": rollback,
            "no_rollback": self.no_rollback,
        }


def _version_before(api: RunPodApi, endpoint_id: str | None) -> int | None:
    """The release an existing endpoint runs (one read); None for an endpoint still to create."""
    if endpoint_id is None:
        return None
    version = api.releases(endpoint_id).get("endpointVersion")
    return int(version) if version is not None else None


def run_stage(
    api: RunPodApi,
    loaded: LoadedConfig,
    image: str,
    cases: CaseSet,
    environ: Mapping[str, str],
    *,
    options: StageOptions,
    progress: Progress = lambda _line: None,
    listener: ValidateListener | None = None,
) -> Stage:
    """Deploy ``image`` to ``loaded``'s environment, wait, validate; roll back when it fails."""
    env = loaded.environment or "default"
    where = desired.target(loaded)
    plan = prepare(api, loaded, where, image, environ)
    for line in plan_lines(plan, loaded):  # what is about to be applied, preflight and cost included
        progress(f"plan: {env}: {line}")
    before = _version_before(api, plan.endpoint_id) if plan.action == "update" else None
    try:
        applied = apply_plan(
            api,
            loaded,
            where,
            plan,
            environ,
            force=options.force,
            wait=True,
            timeout=options.timeout,
            progress=progress,
        )
    except RolloutTimeout as exc:
        # The release stands but never reached its workers: as good as a failed validation.
        progress(f"{env}: {exc}")
        timed_out = Stage(env, _applied_after_timeout(api, where, plan), before, None, rollout_error=str(exc))
        return _failed(api, loaded, timed_out, environ=environ, options=options, progress=progress)
    stage = Stage(env, applied, before, None)
    progress(f"deploy: {stage.deploy_line}")
    progress(f"validate: {env}: {len(cases.cases)} case(s) on {applied.endpoint_id}")
    report = validate.run(api, applied.endpoint_id, cases, concurrency=options.concurrency, listener=listener)
    stage = Stage(env, applied, before, report)
    if stage.ok:
        return stage
    return _failed(api, loaded, stage, environ=environ, options=options, progress=progress)


def _applied_after_timeout(api: RunPodApi, where: desired.Target, plan: Plan) -> Applied:
    """What the timed-out apply wrote, read back (its record was not written: the wait raised)."""
    found = history.existing(api, where)
    version = _version_before(api, str(found["id"]))
    return Applied(plan, str(found["id"]), version, api.calls.to_json())


def _failed(
    api: RunPodApi,
    loaded: LoadedConfig,
    stage: Stage,
    *,
    environ: Mapping[str, str],
    options: StageOptions,
    progress: Progress,
) -> Stage:
    """Roll ``stage``'s endpoint back to the release before this deploy, when there is one."""
    applied = stage.applied
    before = stage.previous_version
    if not applied.changed:
        return _no_rollback(stage, "nothing was deployed: the endpoint already ran this release")
    if before is None:
        return _no_rollback(
            stage, "the endpoint was created by this release: no earlier release to return to"
        )
    if applied.version is None or applied.version <= before:
        return _no_rollback(stage, "the change made no new release (settings changed in place)")
    progress(f"{stage.env}: validation failed: rolling back to release v{before}")
    # Forced: the release before ran until minutes ago; returning to it must not wait on a
    # preflight (a GPU pool short right now) that would leave the failing release serving.
    rollback = history.roll_back(
        api,
        loaded,
        desired.target(loaded),
        environ,
        to=before,
        force=True,
        wait=True,
        timeout=options.timeout,
        progress=progress,
    )
    return Stage(
        stage.env, applied, before, stage.report, stage.rollout_error, rollback=rollback, no_rollback=None
    )


def _no_rollback(stage: Stage, why: str) -> Stage:
    return Stage(
        stage.env, stage.applied, stage.previous_version, stage.report, stage.rollout_error, None, why
    )
