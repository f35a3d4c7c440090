"""The autoscaling policy as a pure function: no Docker, no clock, every rule one case."""

from __future__ import annotations

from deploy.emulator.autoscaler import QueueState, ScalingPlan, ScalingSettings, WorkerState, plan

QUEUE_DELAY = ScalingSettings(
    kind="QUEUE_DELAY", queue_delay_s=4, min_workers=0, max_workers=3, idle_timeout_s=5
)
REQUESTS = ScalingSettings(kind="REQUEST_COUNT", request_count=2, min_workers=0, max_workers=3)


def idle(worker_id: str, for_s: float = 0.0) -> WorkerState:
    return WorkerState(id=worker_id, ready=True, busy=False, idle_for_s=for_s)


def busy(worker_id: str) -> WorkerState:
    return WorkerState(id=worker_id, ready=True, busy=True)


def booting(worker_id: str) -> WorkerState:
    return WorkerState(id=worker_id, ready=False, busy=False)


def test_first_job_scales_from_zero_without_waiting_for_the_queue_delay() -> None:
    assert plan(QueueState(queued=1, held=0, oldest_wait_s=0), [], QUEUE_DELAY) == ScalingPlan(start=1)


def test_queue_delay_adds_one_worker_only_after_jobs_waited_that_long() -> None:
    workers = [busy("a")]
    assert plan(QueueState(2, 1, oldest_wait_s=3.9), workers, QUEUE_DELAY) == ScalingPlan()
    assert plan(QueueState(2, 1, oldest_wait_s=4.0), workers, QUEUE_DELAY) == ScalingPlan(start=1)


def test_queue_delay_does_not_add_when_free_workers_can_take_the_queue() -> None:
    workers = [idle("a"), booting("b")]
    assert plan(QueueState(2, 0, oldest_wait_s=60), workers, QUEUE_DELAY) == ScalingPlan()


def test_request_count_wants_ceil_of_queued_plus_running_over_the_count() -> None:
    assert plan(QueueState(3, 0, 0), [], REQUESTS) == ScalingPlan(start=2)
    assert plan(QueueState(4, 1, 0), [busy("a")], REQUESTS) == ScalingPlan(start=2)


def test_max_caps_starts_counting_draining_workers() -> None:
    draining = WorkerState(id="old", ready=True, busy=True, draining=True)
    assert plan(QueueState(10, 0, 0), [draining], REQUESTS) == ScalingPlan(start=2)
    assert plan(QueueState(10, 0, 0), [draining, busy("a"), busy("b")], REQUESTS) == ScalingPlan()


def test_min_workers_are_started_with_an_empty_queue_and_never_stopped() -> None:
    floor = ScalingSettings(kind="QUEUE_DELAY", min_workers=2, max_workers=3, idle_timeout_s=5)
    assert plan(QueueState(0, 0, 0), [], floor) == ScalingPlan(start=2)
    assert plan(QueueState(0, 0, 0), [idle("a", 99), idle("b", 99)], floor) == ScalingPlan()


def test_idle_workers_stop_after_the_idle_timeout_longest_idle_first() -> None:
    workers = [idle("recent", 4.9), idle("oldest", 30), busy("c")]
    assert plan(QueueState(0, 1, 0), workers, QUEUE_DELAY) == ScalingPlan(stop=("oldest",))
    at_limit = [idle("a", 5.0), idle("b", 6.0)]
    assert plan(QueueState(0, 0, 0), at_limit, QUEUE_DELAY) == ScalingPlan(stop=("b", "a"))


def test_busy_and_booting_workers_are_never_stopped() -> None:
    assert plan(QueueState(0, 1, 0), [busy("a"), booting("b")], QUEUE_DELAY) == ScalingPlan()


def test_over_max_after_a_max_change_stops_idle_workers_at_once() -> None:
    lowered = ScalingSettings(kind="QUEUE_DELAY", min_workers=0, max_workers=1, idle_timeout_s=60)
    workers = [idle("a", 1), idle("b", 2), busy("c")]
    assert plan(QueueState(1, 1, 0), workers, lowered) == ScalingPlan(stop=("b", "a"))


def test_settings_come_from_the_endpoint_document() -> None:
    doc = {
        "scaling": {"type": "QUEUE_DELAY", "queueDelay": 7},
        "workers": {"min": 1, "max": 4, "idleTimeout": 12},
    }
    settings = ScalingSettings.of_endpoint(doc)
    assert (settings.kind, settings.queue_delay_s, settings.min_workers, settings.max_workers) == (
        "QUEUE_DELAY",
        7.0,
        1,
        4,
    )
    assert settings.idle_timeout_s == 12.0
