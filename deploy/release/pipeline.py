"""The gated release, per environment: deploy by digest, wait for the rollout, validate, roll back.

A stage reuses the engine's steps (`apply.prepare`, `apply.apply_plan`, `history.roll_back`)
and the validation runner (`validate.run`); it adds only the gate: a release that fails its
cases (or whose rollout fails or never finishes) is rolled back to the release the endpoint
ran before, and the stage says so. A stage that changed nothing still validates.

An endpoint this release created has no release to return to: when it fails, it is scaled
to zero workers (`workers.min` and `workers.max` 0, both allowed by RunPod's REST v2 spec,
`EndpointWorkers`: `minimum: 0`) so it stops billing (serverless bills running workers),
and kept, with its workers' logs and release history, for a look at what went wrong. The
same holds for an endpoint that was at zero workers before this deploy (stopped by an earlier
failed release): a failure leaves it stopped again, not serving a release that never passed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from deploy.api import RunPodApi
from deploy.config import LoadedConfig
from deploy.release import desired, history, reports, validate
from deploy.release.apply import Applied, Progress, RolloutError, apply_plan, prepare
from deploy.release.cases import CaseSet
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
    #: None when the rollout did not finish (`rollout_error`) or validation was skipped.
    report: ValidationReport | None
    rollout_error: str | None = None
    rollback: Applied | None = None
    #: The rollback was applied but its own rollout failed or timed out (the release before
    #: cannot start now either: a GPU pool short, a registry down).
    rollback_error: str | None = None
    #: Why a failed stage was not rolled back (a new endpoint, a change with no new release).
    no_rollback: str | None = None
    #: The failed endpoint was scaled to zero workers (min 0, max 0) to stop its billing.
    scaled_to_zero: bool = False
    #: Validation was not asked for (`release --skip-validation`): the rollout alone decides.
    validation_skipped: bool = False

    @property
    def ok(self) -> bool:
        if self.rollout_error is not None:
            return False
        return self.validation_skipped or (self.report is not None and self.report.ok)

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
            if self.report is None:
                return f"{self.env}: rolled out; validation skipped (--skip-validation)"
            return f"{self.env}: validation passed ({reports.headline(self.report)})"
        why = self.rollout_error or (reports.headline(self.report) if self.report else "not validated")
        stopped = f"; {STOPPED}" if self.scaled_to_zero else ""
        if self.rollback is not None:
            also = f", but its rollout failed too: {self.rollback_error}" if self.rollback_error else ""
            return (
                f"{self.env}: FAILED ({why}); rolled back automatically to release v{self.previous_version} "
                f"(now release v{self.rollback.version}){also}{stopped}"
            )
        return f"{self.env}: FAILED ({why}); not rolled back: {self.no_rollback}{stopped}"

    def to_json(self, loaded: LoadedConfig) -> dict[str, Any]:
        rollback = None
        if self.rollback is not None:
            rollback = {
                "to_version": self.previous_version,
                "release": {"version": self.rollback.version},
                "api_calls": self.rollback.api_calls,
                "rollout_error": self.rollback_error,
            }
        return {
            "env": self.env,
            "ok": self.ok,
            "deploy": {**self.applied.to_json(loaded), "previous_version": self.previous_version},
            "rollout_error": self.rollout_error,
            "validation": self.report.to_json() if self.report is not None else None,
            "rollback": rollback,
            "no_rollback": self.no_rollback,
            "scaled_to_zero": self.scaled_to_zero,
            "validation_skipped": self.validation_skipped,
        }


#: What a failed stage did to stop the billing of an endpoint it must not leave serving.
STOPPED = (
    "scaled to zero workers (workers.min 0, workers.max 0) to stop billing; kept for its logs: "
    "the next release that passes restores the config's workers, `rpdeploy destroy` removes it"
)


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
    cases: CaseSet | None,
    environ: Mapping[str, str],
    *,
    options: StageOptions,
    progress: Progress = lambda _line: None,
    listener: ValidateListener | None = None,
) -> Stage:
    """Deploy ``image`` to ``loaded``'s environment, wait, validate; roll back when it fails.

    ``cases`` None skips validation: the rollout alone decides (and still rolls back).
    """
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
    except RolloutError as exc:
        # The release stands but its workers never became ready: as good as a failed validation.
        if exc.applied is None:  # apply_plan sets it before re-raising; anything else is not ours
            raise
        progress(f"{env}: {exc}")
        stage = Stage(env, exc.applied, before, None, rollout_error=str(exc))
        return _failed(api, loaded, stage, environ=environ, options=options, progress=progress)
    stage = Stage(env, applied, before, None, validation_skipped=cases is None)
    progress(f"deploy: {stage.deploy_line}")
    if cases is None:
        return stage
    progress(f"validate: {env}: {len(cases.cases)} case(s) on {applied.endpoint_id}")
    report = validate.run(api, applied.endpoint_id, cases, concurrency=options.concurrency, listener=listener)
    stage = dataclasses.replace(stage, report=report)
    if stage.ok:
        return stage
    return _failed(api, loaded, stage, environ=environ, options=options, progress=progress)


def _failed(
    api: RunPodApi,
    loaded: LoadedConfig,
    stage: Stage,
    *,
    environ: Mapping[str, str],
    options: StageOptions,
    progress: Progress,
) -> Stage:
    """Roll ``stage``'s endpoint back to the release before this deploy, when there is one; then
    scale it to zero workers when it must not bill (created now, or stopped before this deploy)."""

    def roll_back(to: int) -> Applied:
        # Forced: the release before ran until minutes ago; returning to it must not wait on a
        # preflight (a GPU pool short right now) that would leave the failing release serving.
        return history.roll_back(
            api,
            loaded,
            desired.target(loaded),
            environ,
            to=to,
            force=True,
            wait=True,
            timeout=options.timeout,
            progress=progress,
        )

    stage = _rolled_back(stage, roll_back, progress)
    plan = stage.applied.plan
    # Only what this deploy changed: an endpoint left as it was is left as it was.
    if stage.applied.changed and (plan.action == "create" or _was_stopped(plan.current)):
        progress(f"{stage.env}: {stage.applied.endpoint_id}: {STOPPED}")
        scale_to_zero(api, stage.applied.endpoint_id)
        stage = dataclasses.replace(stage, scaled_to_zero=True)
    return stage


def _rolled_back(stage: Stage, roll_back: Callable[[int], Applied], progress: Progress) -> Stage:
    """``stage`` with its rollback (``roll_back(version)``), or with why there is none."""
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
    what = "rollout" if stage.rollout_error else "validation"
    progress(f"{stage.env}: {what} failed: rolling back to release v{before}")
    try:
        rollback = roll_back(before)
    except RolloutError as exc:
        if exc.applied is None:
            raise
        # The rollback stands (a new release with the old settings); the stage says it did not start.
        progress(f"{stage.env}: rollback: {exc}")
        return dataclasses.replace(stage, rollback=exc.applied, rollback_error=str(exc), no_rollback=None)
    return dataclasses.replace(stage, rollback=rollback, no_rollback=None)


def _no_rollback(stage: Stage, why: str) -> Stage:
    return dataclasses.replace(stage, rollback=None, no_rollback=why)


def _was_stopped(current: Mapping[str, Any] | None) -> bool:
    """Whether the endpoint, as the plan read it before this deploy, could run no worker."""
    return current is not None and int((current.get("workers") or {}).get("max", 1)) == 0


def scale_to_zero(api: RunPodApi, endpoint_id: str) -> None:
    """PATCH ``workers.min`` and ``workers.max`` to 0 (other settings untouched): no worker runs,
    none is billed; queued jobs wait. Autoscaler fields make no new release (runpod-platform.md §2.5).
    """
    workers = dict(api.get_endpoint(endpoint_id).get("workers") or {})
    # The whole object is sent (idleTimeout as it is, when it applies): a PATCH sets it as given.
    api.update_endpoint(endpoint_id, {"workers": {**workers, "min": 0, "max": 0}})
