"""Restarts lose nothing: endpoints, releases, secrets and queued jobs live in SQLite."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.emulator.helpers import EmulatorProcess


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["graceful", "crash"])
def test_queued_jobs_and_config_survive_a_restart(tmp_path: Path, sig: signal.Signals) -> None:
    first = EmulatorProcess(tmp_path / "state").start()
    api = first.api
    endpoint = api.create_endpoint(name="persisted", env={"TAG": "v1"})
    api.rest("PATCH", f"/v2/serverless/{endpoint['id']}", {"env": {"TAG": "v2"}})
    queued = [api.job("POST", f"/{endpoint['id']}/run", {"input": {"n": n}}).json()["id"] for n in range(3)]
    api.job("POST", f"/{endpoint['id']}/cancel/{queued[0]}")
    first.stop(sig)

    second = EmulatorProcess(tmp_path / "state")
    second.port = first.port
    second.api = first.api
    second.start()
    try:
        assert api.rest("GET", f"/v2/serverless/{endpoint['id']}").json()["env"] == {"TAG": "v2"}
        assert api.rest("GET", f"/v2/serverless/{endpoint['id']}/releases").json()["endpointVersion"] == 2
        states = [api.job("GET", f"/{endpoint['id']}/status/{j}").json()["status"] for j in queued]
        assert states == ["CANCELLED", "IN_QUEUE", "IN_QUEUE"]
        # The rebuilt queue is live: purge sees exactly the two queued jobs.
        assert api.job("POST", f"/{endpoint['id']}/purge-queue").json()["removed"] == 2
    finally:
        second.stop()
