"""The sweeper: applies execution timeouts, job TTLs and result retention on a clock.

`sweep(now)` takes the time to judge by, so tests move the clock instead of waiting
30 real minutes; `run_forever` calls it every `sweep_interval_s` in the server.
"""

from __future__ import annotations

import asyncio
import logging
import time

from deploy.emulator.jobs import JobService

log = logging.getLogger("rpdeploy.emulator.sweeper")


def sweep(service: JobService, now: float | None = None) -> None:
    """One pass: TIMED_OUT past the execution deadline, remove past TTL, drop results past retention."""
    now = time.time() if now is None else now
    store = service.store
    for job in store.jobs_past_execution_deadline(now):
        service.time_out(job)
    for job in store.jobs_past_ttl(now):
        service.expire(job)
    for job in store.results_past_retention(now):
        service.drop_result(job)


async def run_forever(service: JobService, interval_s: float) -> None:
    while True:
        try:
            sweep(service)
        except Exception:  # a sweep must never kill the loop that enforces TTLs
            log.exception("sweep failed")
        await asyncio.sleep(interval_s)
