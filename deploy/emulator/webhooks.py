"""Webhook delivery: the full job record POSTed when a job ends, with RunPod's two retries.

RunPod posts COMPLETED, FAILED and TIMED_OUT records, retries a non-200 answer twice,
10 s apart (runpod-platform.md §4). Each failed attempt, and giving up, is logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

import httpx

log = logging.getLogger("rpdeploy.emulator.webhooks")

#: States the SDK's Job.status() treats as final, minus CANCELLED: webhooks go out for these.
WEBHOOK_STATES = frozenset({"COMPLETED", "FAILED", "TIMED_OUT"})
WEBHOOK_ATTEMPTS = 3  # the first try and RunPod's 2 retries


class WebhookSender:
    """Owns the HTTP client and the delivery tasks; `close` cancels what is still pending."""

    def __init__(self, retry_interval_s: float) -> None:
        self.retry_interval_s = retry_interval_s
        self._http: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, url: str, record: dict[str, Any]) -> None:
        """Deliver in the background (the job's transition never waits on a webhook)."""
        self._spawn(self._deliver(url, record))

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, url: str, record: dict[str, Any]) -> None:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=10.0)
        for attempt in range(1, WEBHOOK_ATTEMPTS + 1):
            try:
                response = await self._http.post(url, json=record)
                if response.status_code == 200:
                    return
                outcome = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            log.warning("webhook for job %s attempt %d failed: %s", record["id"], attempt, outcome)
            if attempt < WEBHOOK_ATTEMPTS:
                await asyncio.sleep(self.retry_interval_s)
        log.warning("webhook for job %s: gave up after %d attempts", record["id"], WEBHOOK_ATTEMPTS)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._http is not None:
            await self._http.aclose()
