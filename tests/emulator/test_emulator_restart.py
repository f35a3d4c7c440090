"""Restarts lose nothing: endpoints, releases, secrets, registry credentials, network volumes and
queued jobs live in SQLite."""

from __future__ import annotations

import signal
from pathlib import Path

import docker
import pytest

from deploy.emulator.containers import LABEL
from deploy.emulator.settings import state_label
from tests.emulator.helpers import EmulatorProcess

ONE_WORKER = {"min": 0, "max": 1}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["graceful", "crash"])
def test_queued_jobs_and_config_survive_a_restart(tmp_path: Path, sig: signal.Signals) -> None:
    first = EmulatorProcess(tmp_path / "state").start()
    api = first.api
    endpoint = api.create_endpoint(name="persisted", env={"TAG": "v1"})
    api.rest("PATCH", f"/v2/serverless/{endpoint['id']}", {"env": {"TAG": "v2"}})
    queued = [api.job("POST", f"/{endpoint['id']}/run", {"input": {"n": n}}).json()["id"] for n in range(3)]
    api.job("POST", f"/{endpoint['id']}/cancel/{queued[0]}")
    secret = api.rest("POST", "/v2/account/secrets", {"name": "kept", "value": "v"}).json()
    registry = api.rest("POST", "/v2/registries", {"name": "kept", "username": "u", "password": "p"}).json()
    volume = api.rest(
        "POST", "/v2/network-volumes", {"name": "kept", "size": 10, "dataCenter": "EU-RO-1"}
    ).json()
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
        assert api.rest("GET", f"/v2/account/secrets/{secret['id']}").json() == secret
        assert api.rest("GET", f"/v2/registries/{registry['id']}").json() == registry
        assert api.rest("GET", f"/v2/network-volumes/{volume['id']}").json() == volume
    finally:
        second.stop()


def _labelled(state: Path) -> list[str]:
    mine = {"label": f"{LABEL}={state_label(state)}"}
    return [c.id for c in docker.from_env().containers.list(all=True, sparse=True, filters=mine)]


@pytest.mark.docker
def test_jobs_held_by_workers_fail_explicitly_across_a_restart(tmp_path: Path, sdk_image: str) -> None:
    state = tmp_path / "state"
    first = EmulatorProcess(state).start()
    api = first.api
    endpoint = api.create_endpoint(
        image=sdk_image, env={"HANDLER_MODE": "async"}, workers={"min": 0, "max": 1}
    )
    held = api.submit(endpoint["id"], {"mock_delay": 60})
    api.wait_status(endpoint["id"], held, {"IN_PROGRESS"})
    waiting = api.submit(endpoint["id"], {"mock_delay": 0})
    assert _labelled(state)
    first.stop(signal.SIGKILL)  # a crash: nobody cleans up

    second = EmulatorProcess(state)
    second.port, second.api = first.port, first.api
    second.start()
    try:
        view = api.job("GET", f"/{endpoint['id']}/status/{held}").json()
        assert view["status"] == "FAILED"
        assert "emulator restarted" in view["error"]
        # The queued job survived and runs on a fresh worker of the new run.
        assert api.wait_status(endpoint["id"], waiting, {"COMPLETED"})["status"] == "COMPLETED"
    finally:
        second.stop()
    assert _labelled(state) == []  # every container this emulator started is gone


@pytest.mark.docker
def test_read_only_rootfs_knob_leaves_a_small_tmp(tmp_path: Path, sdk_image: str) -> None:
    knobs = {"RPDEPLOY_EMULATOR_READ_ONLY_ROOTFS": "true", "RPDEPLOY_EMULATOR_TMP_SIZE_MB": "1"}
    proc = EmulatorProcess(tmp_path / "state", env=knobs).start()
    try:
        api = proc.api
        endpoint = api.create_endpoint(
            image=sdk_image, env={"HANDLER_MODE": "plain"}, workers={"min": 0, "max": 1}
        )

        def run(job_input: dict[str, object]) -> dict[str, object]:
            view = api.job("POST", f"/{endpoint['id']}/runsync", {"input": job_input}).json()
            assert view["status"] == "COMPLETED", view
            output: dict[str, object] = view["output"]
            return output

        assert run({"write": ["/app/new-file", "x"]})["written"] is False
        assert run({"write": ["/tmp/new-file", "x"]})["written"] is True
        assert run({"write": ["/tmp/big-file", "x" * 2_000_000]})["written"] is False  # over the 1 MB tmpfs
    finally:
        proc.stop()
