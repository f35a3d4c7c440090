"""The release gate's decisions on a failed stage, without an API: when to roll back, what a
rollback whose own rollout fails leaves, how a skipped validation reads. The end-to-end runs
against the emulator are tests/release/test_release_gate.py and tests/test_workflows_steps.py;
the rollback's callable here stands for `history.roll_back` (its failing rollout would need a
release before that cannot start again: a GPU pool gone short, which the emulator cannot do).
"""

from __future__ import annotations

from typing import Any

import pytest

from deploy.release.apply import Applied, RolloutFailed
from deploy.release.pipeline import Stage, _rolled_back, _was_stopped
from deploy.release.plan import Action, Plan

WRITTEN = [{"kind": "endpoint", "name": "demo-staging", "action": "update"}]


def applied(version: int | None, *, action: Action = "update", written: bool = True) -> Applied:
    plan = Plan("demo-staging", "ep1", action, [], {}, None, {}, "r/w@sha256:" + "1" * 64)
    return Applied(plan, "ep1", version, {"reads": 1, "writes": 1}, written=WRITTEN if written else [])


def no_call(version: int) -> Applied:
    raise AssertionError(f"rolled back to v{version}: nothing to roll back here")


@pytest.mark.parametrize(
    ("stage", "why"),
    [
        (Stage("staging", applied(4, written=False), 4, None, "x"), "nothing was deployed"),
        (Stage("staging", applied(1, action="create"), None, None, "x"), "created by this release"),
        (Stage("staging", applied(3), 3, None, "x"), "the change made no new release"),
    ],
)
def test_no_rollback_says_why(stage: Stage, why: str) -> None:
    done = _rolled_back(stage, no_call, lambda _line: None)
    assert done.rollback is None
    assert done.no_rollback is not None
    assert why in done.no_rollback
    assert f"not rolled back: {done.no_rollback}" in done.verdict


def test_a_rollback_whose_rollout_fails_is_reported_not_raised() -> None:
    lines: list[str] = []
    back = applied(6)

    def roll_back(version: int) -> Applied:
        assert version == 4
        error = RolloutFailed("rollout of v6: worker w1 is unhealthy: exited with code 1")
        error.applied = back
        raise error

    stage = Stage("staging", applied(5), 4, None, rollout_error="rollout of v5: no worker can start")
    done = _rolled_back(stage, roll_back, lines.append)
    assert done.rollback is back
    assert not done.ok
    assert done.verdict.endswith(
        "rolled back automatically to release v4 (now release v6), but its rollout failed too: "
        "rollout of v6: worker w1 is unhealthy: exited with code 1"
    )
    assert lines == [
        "staging: rollout failed: rolling back to release v4",
        "staging: rollback: rollout of v6: worker w1 is unhealthy: exited with code 1",
    ]


def test_a_rollout_error_without_what_was_applied_is_not_swallowed() -> None:
    def roll_back(_version: int) -> Applied:
        raise RolloutFailed("raised before anything was applied")

    with pytest.raises(RolloutFailed):
        _rolled_back(Stage("staging", applied(5), 4, None, "x"), roll_back, lambda _line: None)


def test_a_skipped_validation_passes_on_the_rollout_alone() -> None:
    stage = Stage("staging", applied(5), 4, None, validation_skipped=True)
    assert stage.ok
    assert stage.verdict == "staging: rolled out; validation skipped (--skip-validation)"
    assert not Stage("staging", applied(5), 4, None, "timed out", validation_skipped=True).ok


@pytest.mark.parametrize(
    ("current", "stopped"),
    [
        (None, False),
        ({"workers": {"min": 0, "max": 0}}, True),
        ({"workers": {"min": 0, "max": 1}}, False),
        ({}, False),
    ],
)
def test_an_endpoint_is_stopped_when_it_can_run_no_worker(
    current: dict[str, Any] | None, stopped: bool
) -> None:
    assert _was_stopped(current) is stopped
