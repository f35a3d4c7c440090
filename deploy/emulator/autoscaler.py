"""The autoscaling policy: how many workers an endpoint wants, as a pure function.

`plan(queue, workers, settings)` takes a snapshot (queue counts, each worker's
readiness and idle time, the endpoint's scaling settings) and says how many workers
to start and which to stop; the worker plane applies it. No clock, no docker, no
I/O, so every rule has a unit test.

RunPod's rules (runpod-platform.md §3): QUEUE_DELAY adds a worker when jobs waited
longer than `queueDelay` seconds and scales from zero on the first job;
REQUEST_COUNT wants ceil((queued + running) / requestCount) workers; idle workers
stop after `idleTimeout` seconds; the result stays within [workers.min, workers.max].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: idleTimeout RunPod applies when an endpoint has none (REQUEST_COUNT queue endpoints), seconds.
DEFAULT_IDLE_TIMEOUT_S = 5


@dataclass(frozen=True)
class ScalingSettings:
    """An endpoint's scaling settings: `scaling.type`/`queueDelay`/`requestCount`, `workers.*`."""

    kind: str
    queue_delay_s: float = 4.0
    request_count: int = 4
    min_workers: int = 0
    max_workers: int = 3
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S

    @classmethod
    def of_endpoint(cls, doc: dict[str, Any]) -> ScalingSettings:
        scaling, workers = doc["scaling"], doc["workers"]
        return cls(
            kind=scaling["type"],
            queue_delay_s=float(scaling.get("queueDelay", 4)),
            request_count=int(scaling.get("requestCount", 4)),
            min_workers=int(workers["min"]),
            max_workers=int(workers["max"]),
            idle_timeout_s=float(workers.get("idleTimeout", DEFAULT_IDLE_TIMEOUT_S)),
        )


@dataclass(frozen=True)
class QueueState:
    """Queued jobs that may trigger scaling (not low priority), jobs held by workers, oldest wait (s)."""

    queued: int
    held: int
    oldest_wait_s: float


@dataclass(frozen=True)
class WorkerState:
    """A live worker: polling yet (`ready`), holding a job (`busy`), idle for how long, being replaced."""

    id: str
    ready: bool
    busy: bool
    idle_for_s: float = 0.0
    draining: bool = False


@dataclass(frozen=True)
class ScalingPlan:
    start: int = 0
    stop: tuple[str, ...] = ()


def wanted_workers(queue: QueueState, active: Sequence[WorkerState], settings: ScalingSettings) -> int:
    """How many non-draining workers the endpoint wants now, within [min, max]."""
    if settings.kind == "REQUEST_COUNT":
        wanted = math.ceil((queue.queued + queue.held) / settings.request_count)
    else:
        wanted = len(active)
        free = sum(1 for w in active if not w.ready or not w.busy)
        if queue.queued and not active:
            wanted = 1  # scale from zero on the first job
        elif queue.queued > free and queue.oldest_wait_s >= settings.queue_delay_s:
            wanted = len(active) + 1  # jobs waited longer than queueDelay: add a worker
        elif not queue.queued:
            # Only ready, idle workers expire, so the busy and starting ones always stay.
            wanted = len(active) - _idle_expired(active, settings)
    return max(settings.min_workers, min(wanted, settings.max_workers))


def _idle_expired(active: Sequence[WorkerState], settings: ScalingSettings) -> int:
    return sum(1 for w in active if w.ready and not w.busy and w.idle_for_s >= settings.idle_timeout_s)


def plan(queue: QueueState, workers: Sequence[WorkerState], settings: ScalingSettings) -> ScalingPlan:
    """Workers to start and to stop. ``workers``: every live worker, draining ones included.

    Starts never exceed `workers.max` counting draining workers; a stop picks the
    longest-idle ready worker, and only once its idle timeout passed (or the endpoint
    is over its max).
    """
    active = [w for w in workers if not w.draining]
    wanted = wanted_workers(queue, active, settings)
    # At wanted == len(active) both branches give the empty plan, so `>=` is the same.
    if wanted > len(active):  # pragma: no mutate
        return ScalingPlan(start=max(0, min(wanted - len(active), settings.max_workers - len(workers))))
    if wanted == len(active):
        return ScalingPlan()
    over_max = len(active) > settings.max_workers
    candidates = sorted((w for w in active if w.ready and not w.busy), key=lambda w: -w.idle_for_s)
    stop = tuple(
        w.id
        for w in candidates[: len(active) - wanted]
        if over_max or w.idle_for_s >= settings.idle_timeout_s
    )
    return ScalingPlan(stop=stop)
