"""The cold-host knob: each worker start removes the endpoint's image and pulls it again, as on a
RunPod host that never ran it, and leaves alone an image some other container uses.

Real parts only: the Docker engine, the stack's registry (127.0.0.1:5000), an emulator process
started with `serve --cold-host`, and one image per test built on the SDK worker image (a label
makes it a distinct image, so removing it touches nothing another test or engineer uses).
"""

from __future__ import annotations

import contextlib
import io
import time
import uuid
from collections.abc import Iterator

import docker
import pytest
from docker.errors import APIError, ImageNotFound

from deploy.emulator.settings import WorkerKnobs
from deploy.errors import UsageError
from tests.emulator.helpers import EmulatorProcess

REPOSITORY = "127.0.0.1:5000/rpdeploy-test/cold-host"
TEST_LABEL = "dev.rpdeploy.test.cold-host"


@pytest.fixture(scope="module")
def cold_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    proc = EmulatorProcess(tmp_path_factory.mktemp("cold") / "state", args=("--cold-host",)).start()
    yield proc
    proc.stop()


@pytest.fixture
def own_image(sdk_image: str) -> Iterator[str]:
    """A pushed image of this test alone: the SDK worker plus a unique label."""
    client = docker.from_env()
    tag = f"{REPOSITORY}:{uuid.uuid4().hex[:12]}"
    dockerfile = f"FROM {sdk_image}\nLABEL {TEST_LABEL}={tag.rsplit(':', 1)[1]}\n"
    client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
    for event in client.api.push(REPOSITORY, tag=tag.rsplit(":", 1)[1], stream=True, decode=True):
        assert "error" not in event, event
    yield tag
    with contextlib.suppress(ImageNotFound, APIError):
        client.images.remove(tag)


def _run_jobs(proc: EmulatorProcess, image: str, jobs: int = 1) -> str:
    """Run ``jobs`` jobs on a new endpoint of ``image``, each from zero workers; its workers' logs."""
    api = proc.api
    workers = {"min": 0, "max": 1, "idleTimeout": 1}
    endpoint = api.create_endpoint(name="cold", image=image, env={"HANDLER_MODE": "plain"}, workers=workers)
    for _ in range(jobs):
        _wait_scaled_to_zero(proc, endpoint["id"])
        view = api.job("POST", f"/{endpoint['id']}/runsync", {"input": {"mock_return": "cold"}}).json()
        assert view["status"] == "COMPLETED", view
    api.rest("DELETE", f"/v2/serverless/{endpoint['id']}")
    logs = sorted((proc.state / "logs" / endpoint["id"]).glob("*.log"))
    return "".join(path.read_text() for path in logs)


def _wait_scaled_to_zero(proc: EmulatorProcess, endpoint_id: str) -> None:
    """Until the endpoint lists no worker (a generous bound, not a timing claim)."""
    deadline = time.monotonic() + 120
    while proc.api.rest("GET", f"/v2/serverless/{endpoint_id}/workers").json()["workers"]:
        assert time.monotonic() < deadline, "the endpoint never scaled to zero"
        time.sleep(0.2)


@pytest.mark.docker
def test_a_cold_host_removes_the_image_and_pulls_it_again(
    cold_emulator: EmulatorProcess, own_image: str
) -> None:
    client = docker.from_env()
    client.images.get(own_image)  # present: without the knob the start would not pull
    since = int(time.time()) - 1
    # Two starts in a row: the second must not be kept warm by the first worker's container,
    # which the emulator removes a moment after the endpoint lists no worker.
    log = _run_jobs(cold_emulator, own_image, jobs=2)
    pulls = client.api.events(
        since=since, until=int(time.time()) + 1, filters={"type": "image", "event": "pull"}, decode=True
    )
    assert [event.get("id") for event in pulls].count(own_image) == 2
    assert log.count(f"cold host: removed {own_image} from the engine") == 2, log
    assert f"image {own_image} pulled in " in log, log
    assert "created and started in " in log, log


@pytest.mark.docker
def test_a_cold_host_leaves_an_image_in_use_alone(cold_emulator: EmulatorProcess, own_image: str) -> None:
    client = docker.from_env()
    image_id = client.images.get(own_image).id
    holder = client.containers.run(own_image, ["sleep", "300"], detach=True, labels={TEST_LABEL: "holder"})
    try:
        log = _run_jobs(cold_emulator, own_image)
        assert client.images.get(own_image).id == image_id  # never removed, never re-tagged
        said = f"cold host: {own_image} left in place: used by 1 container(s) ({str(holder.id)[:12]})"
        assert said in log, log
    finally:
        holder.remove(force=True)


def test_the_knob_is_off_by_default_and_read_from_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RPDEPLOY_EMULATOR_COLD_HOST", raising=False)
    assert WorkerKnobs.from_env().cold_host is False
    monkeypatch.setenv("RPDEPLOY_EMULATOR_COLD_HOST", "true")
    assert WorkerKnobs.from_env().cold_host is True
    monkeypatch.setenv("RPDEPLOY_EMULATOR_COLD_HOST", "maybe")
    with pytest.raises(UsageError, match=r"RPDEPLOY_EMULATOR_COLD_HOST='maybe' is not a boolean"):
        WorkerKnobs.from_env()
