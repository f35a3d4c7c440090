"""Fidelity with the real SDK: the unmodified runpod 1.12.0 worker in a real container, and the
unmodified `runpod.Endpoint` client, both against the emulator over HTTP."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from typing import Any

import docker
import pytest
import runpod

from deploy.emulator.settings import state_label
from tests.emulator.helpers import API_KEY, Api, EmulatorProcess, wait_for

pytestmark = pytest.mark.docker
ASYNC = {"HANDLER_MODE": "async"}


def endpoint(api: Api, image: str, **overrides: Any) -> str:
    body: dict[str, Any] = {"image": image, "workers": {"min": 0, "max": 2, "idleTimeout": 30}}
    body.update(overrides)
    return str(api.create_endpoint(**body)["id"])


@pytest.fixture(scope="module")
def plain(api: Api, sdk_image: str) -> str:
    return endpoint(api, sdk_image, name="plain", env={"HANDLER_MODE": "plain", "TAG": "v1"})


@pytest.fixture(scope="module")
def sdk(emulator: EmulatorProcess) -> Any:
    runpod.api_key = API_KEY
    runpod.endpoint_url_base = f"{emulator.api.base}/v2"
    return runpod


def workers(api: Api, endpoint_id: str) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = api.rest("GET", f"/v2/serverless/{endpoint_id}/workers").json()["workers"]
    return listed


def worker_log(emulator: EmulatorProcess, endpoint_id: str, worker_id: str) -> str:
    path = emulator.state / "logs" / endpoint_id / f"{worker_id}.log"
    return path.read_text(errors="replace") if path.exists() else ""


class Gate:
    """An HTTP gate on the host that test workers poll (`{"hold": url}`): shut (503) until `open()`.

    Lets a test hold a job IN_PROGRESS for exactly as long as it needs, whatever the machine's load.
    """

    def __init__(self) -> None:
        self.opened = threading.Event()
        opened = self.opened

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200 if opened.is_set() else 503)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/gate"

    def open(self) -> None:
        self.opened.set()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def gate() -> Any:
    opened = Gate()
    yield opened
    opened.open()  # release any worker still waiting before the server goes
    opened.close()


# -- worker side: handler kinds -----------------------------------------------------------------


def test_plain_handler_through_the_sdk_client(sdk: Any, api: Api, plain: str) -> None:
    client = sdk.Endpoint(plain)
    output = client.run_sync({"mock_return": "hello"}, timeout=120)
    assert output["echo"] == "hello"
    assert output["tag"] == "v1"
    job = client.run({"input": {"mock_return": "again"}})
    assert job.output(timeout=60)["echo"] == "again"
    assert job.status() == "COMPLETED"
    view = api.job("GET", f"/{plain}/status/{job.job_id}").json()
    assert isinstance(view["delayTime"], int)
    assert isinstance(view["executionTime"], int)
    assert view["workerId"] == output["worker"] or view["workerId"] in {w["id"] for w in workers(api, plain)}


def test_handler_that_raises_fails_the_job(api: Api, plain: str) -> None:
    view = api.job("POST", f"/{plain}/runsync", {"input": {"mock_error": "boom"}}).json()
    assert view["status"] == "FAILED"
    error = json.loads(view["error"])  # the SDK sends a JSON-encoded string
    assert error["error_type"] == "<class 'ValueError'>"
    assert error["error_message"] == "boom"
    assert "output" not in view


def test_handler_returning_error_fails_and_keeps_output(api: Api, plain: str) -> None:
    view = api.job("POST", f"/{plain}/runsync", {"input": {"mock_error_return": "bad input"}}).json()
    assert view["status"] == "FAILED"
    assert view["error"] == "bad input"
    assert view["output"] == {"partial": 1}


def test_progress_updates_show_as_in_progress_output(api: Api, plain: str) -> None:
    job_id = api.job(
        "POST", f"/{plain}/run", {"input": {"mock_progress": ["step-1", "step-2", "step-3"]}}
    ).json()["id"]
    seen: set[str] = set()

    def finished() -> bool:
        view = api.job("GET", f"/{plain}/status/{job_id}").json()
        if view["status"] == "IN_PROGRESS" and "output" in view:
            seen.add(view["output"])
        return bool(view["status"] == "COMPLETED")

    wait_for(finished, what="the progress job")
    assert seen & {"step-1", "step-2", "step-3"}
    assert api.job("GET", f"/{plain}/status/{job_id}").json()["output"]["echo"]["mock_progress"]


def test_refresh_worker_recycles_the_container(api: Api, plain: str) -> None:
    first = api.job("POST", f"/{plain}/runsync", {"input": {"mock_refresh": True}}).json()
    assert first["status"] == "COMPLETED"
    recycled = first["output"]["worker"]
    wait_for(lambda: recycled not in {w["id"] for w in workers(api, plain)}, what="the recycled worker to go")
    for _ in range(3):
        after = api.job("POST", f"/{plain}/runsync", {"input": {}}).json()
        assert after["output"]["worker"] != recycled


def test_generator_streams_each_chunk_once_and_aggregates(sdk: Any, api: Api, sdk_image: str) -> None:
    gen = endpoint(api, sdk_image, name="generator", env={"HANDLER_MODE": "generator", "AGGREGATE": "1"})
    job = sdk.Endpoint(gen).run({"input": {"chunks": 5, "pause": 0.2}})
    streamed = list(job.stream())
    assert streamed == [{"chunk": i} for i in range(5)]
    view = api.wait_status(gen, job.job_id, {"COMPLETED"})
    assert view["output"] == [{"chunk": i} for i in range(5)]
    assert api.job("GET", f"/{gen}/stream/{job.job_id}").json() == {"status": "COMPLETED", "stream": []}


def test_concurrency_modifier_takes_jobs_in_batches(api: Api, sdk_image: str) -> None:
    batch = endpoint(
        api,
        sdk_image,
        name="concurrent",
        env={"HANDLER_MODE": "async", "CONCURRENCY": "3"},
        workers={"min": 1, "max": 1, "idleTimeout": 30},
    )
    wait_for(lambda: [w for w in workers(api, batch) if w["status"] == "IDLE"], what="a warm worker")
    ids = [api.job("POST", f"/{batch}/run", {"input": {"barrier": 3}}).json()["id"] for _ in range(3)]
    views = [api.wait_status(batch, job_id, {"COMPLETED"}, timeout=180) for job_id in ids]
    assert len({v["output"]["worker"] for v in views}) == 1
    # Each job waits until three run at once (no clocks compared): one worker ran all three together.
    assert [v["output"]["peak"] for v in views] == [3, 3, 3]
    api.rest("DELETE", f"/v2/serverless/{batch}")


# -- platform behaviour --------------------------------------------------------------------------


def test_worker_environment_matches_the_platform(api: Api, plain: str) -> None:
    names = [
        "RUNPOD_WEBHOOK_GET_JOB",
        "RUNPOD_WEBHOOK_POST_OUTPUT",
        "RUNPOD_WEBHOOK_POST_STREAM",
        "RUNPOD_WEBHOOK_PING",
        "RUNPOD_POD_ID",
        "RUNPOD_ENDPOINT_ID",
        "RUNPOD_PING_INTERVAL",
        "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS",
        "RUNPOD_SKIP_GPU_CHECK",
    ]
    view = api.job("POST", f"/{plain}/runsync", {"input": {"env": names, "job_keys": True}}).json()
    env = view["output"]["env"]
    root = f"{api.base}/v2/{plain}"
    gpu = "?gpu=NVIDIA+GeForce+RTX+4090"
    assert env["RUNPOD_WEBHOOK_GET_JOB"] == f"{root}/job-take/$ID{gpu}"
    assert env["RUNPOD_WEBHOOK_POST_OUTPUT"] == f"{root}/job-done/$RUNPOD_POD_ID/$ID{gpu}"
    assert env["RUNPOD_WEBHOOK_POST_STREAM"] == f"{root}/job-stream/$RUNPOD_POD_ID/$ID{gpu}"
    assert env["RUNPOD_WEBHOOK_PING"] == f"{root}/ping/$RUNPOD_POD_ID{gpu}"
    assert env["RUNPOD_POD_ID"] == view["output"]["worker"]
    assert env["RUNPOD_ENDPOINT_ID"] == plain
    assert env["RUNPOD_SKIP_AUTO_SYSTEM_CHECKS"] == "true"
    assert env["RUNPOD_SKIP_GPU_CHECK"] == "true"
    assert env["RUNPOD_PING_INTERVAL"] == "2000"
    assert view["output"]["job_keys"] == ["id", "input"]


def test_sdk_client_cancel_health_and_purge(
    sdk: Any, api: Api, sdk_image: str, emulator: EmulatorProcess
) -> None:
    slow = endpoint(api, sdk_image, name="slow", env={"HANDLER_MODE": "async"}, workers={"min": 0, "max": 1})
    client = sdk.Endpoint(slow)
    running = client.run({"input": {"mock_delay": 30}})
    wait_for(lambda: running.status() == "IN_PROGRESS", what="the slow job to start")
    queued = [client.run({"input": {"mock_delay": 0}}) for _ in range(2)]
    health = client.health()
    assert health["jobs"]["inProgress"] == 1
    assert health["jobs"]["inQueue"] == 2
    assert health["workers"]["running"] == 1
    assert client.purge_queue() == {"removed": 2, "status": "completed"}
    assert [job.status() for job in queued] == ["CANCELLED", "CANCELLED"]
    assert running.cancel() == {"id": running.job_id, "status": "CANCELLED"}
    # The worker got the stop signal and is free again: a new job completes on it.
    assert client.run_sync({"mock_delay": 0}, timeout=60)["worker"]
    worker_id = workers(api, slow)[0]["id"]
    wait_for(lambda: "Stopping job" in worker_log(emulator, slow, worker_id), what="the SDK to log the stop")
    api.rest("DELETE", f"/v2/serverless/{slow}")


def test_execution_timeout_times_out_and_stops_the_job(
    api: Api, sdk_image: str, emulator: EmulatorProcess
) -> None:
    slow = endpoint(
        api, sdk_image, name="timeout", env={"HANDLER_MODE": "async"}, workers={"min": 0, "max": 1}
    )
    job_id = api.job(
        "POST", f"/{slow}/run", {"input": {"mock_delay": 30}, "policy": {"executionTimeout": 5000}}
    ).json()["id"]
    view = api.wait_status(slow, job_id, {"TIMED_OUT", "COMPLETED", "FAILED"}, timeout=60)
    assert view["status"] == "TIMED_OUT"
    worker_id = view["workerId"]
    wait_for(lambda: "Stopping job" in worker_log(emulator, slow, worker_id), what="the stop signal")
    assert api.job("POST", f"/{slow}/runsync", {"input": {}}).json()["status"] == "COMPLETED"
    retried = api.job("POST", f"/{slow}/retry/{job_id}").json()
    assert retried == {"id": job_id, "status": "IN_QUEUE"}
    api.rest("DELETE", f"/v2/serverless/{slow}")


def test_worker_crash_fails_its_job_and_is_replaced(api: Api, plain: str, emulator: EmulatorProcess) -> None:
    view = api.job("POST", f"/{plain}/runsync", {"input": {"mock_crash": 3}}).json()
    assert view["status"] == "FAILED"
    assert "exited with code 3" in view["error"]
    crashed = view["workerId"]
    after = api.job("POST", f"/{plain}/runsync", {"input": {}}).json()
    assert after["status"] == "COMPLETED"
    assert after["output"]["worker"] != crashed
    assert "exited with code 3" in worker_log(emulator, plain, crashed)


class _Hook(http.server.BaseHTTPRequestHandler):
    """A webhook receiver that always fails, so the emulator makes every attempt it will make."""

    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        self.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


def test_webhook_gets_the_full_record_with_two_retries(
    api: Api, plain: str, emulator: EmulatorProcess
) -> None:
    received: list[dict[str, Any]] = []  # this test's own list: nothing shared across runs
    handler = type("Hook", (_Hook,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        job_id = api.job(
            "POST", f"/{plain}/run", {"input": {"mock_return": "hooked"}, "webhook": url}
        ).json()["id"]
        # The emulator logs when it gives up: after that no attempt can come, whatever the machine's load.
        wait_for(lambda: f"webhook for job {job_id}: gave up" in emulator.log(), what="the last attempt")
        assert len(received) == 3
        record = received[0]
        assert received == [record] * 3
        assert record["id"] == job_id
        assert record["status"] == "COMPLETED"
        assert record["input"] == {"mock_return": "hooked"}
        assert record["output"]["echo"] == "hooked"
        assert record["webhook"] == url
        assert isinstance(record["delayTime"], int)
        assert isinstance(record["executionTime"], int)
    finally:
        server.shutdown()


# -- results the platform would not deliver ------------------------------------------------------


def test_non_string_error_fails_and_the_worker_log_warns(
    api: Api, plain: str, emulator: EmulatorProcess
) -> None:
    view = api.job("POST", f"/{plain}/runsync", {"input": {"mock_error_return": {"code": 42}}}).json()
    assert view["status"] == "FAILED"
    assert view["error"] == {"code": 42}
    log = worker_log(emulator, plain, view["workerId"])
    assert f"job {view['id']}: the handler returned an error that is not a string (dict)" in log
    assert "runpod-python#299" in log
    # A handler may print what its env holds: the log, like every state file, is private.
    log_file = emulator.state / "logs" / plain / f"{view['workerId']}.log"
    assert oct(log_file.stat().st_mode & 0o777) == "0o600"
    assert oct(log_file.parent.stat().st_mode & 0o777) == "0o700"


@pytest.mark.parametrize(
    ("job_input", "reason"),
    [({"mock_size": 21 * 1024 * 1024}, "the limit is 20 MB"), ({"mock_nan": True}, "not valid JSON")],
    ids=["over-20MB", "NaN"],
)
def test_a_result_the_emulator_refuses_ends_the_job_failed_with_the_reason(
    api: Api, plain: str, emulator: EmulatorProcess, job_input: dict[str, Any], reason: str
) -> None:
    view = api.job("POST", f"/{plain}/runsync", {"input": job_input}).json()
    assert view["status"] == "FAILED", view
    assert "the worker's result was refused" in view["error"]
    assert reason in view["error"]
    assert "output" not in view
    log = worker_log(emulator, plain, view["workerId"])
    assert f"job {view['id']}: result refused" in log
    assert "runpod-python#309" in log


def test_a_stream_chunk_that_is_not_json_is_refused_and_logged(
    api: Api, sdk_image: str, emulator: EmulatorProcess
) -> None:
    gen = endpoint(api, sdk_image, name="nan-stream", env={"HANDLER_MODE": "generator", "AGGREGATE": "1"})
    job_id = api.submit(gen, {"nan_chunk": True, "chunks": 2})
    view = api.wait_status(gen, job_id, {"COMPLETED", "FAILED"})
    # The aggregate result holds the same NaN: refused too, so the job ends FAILED with the reason.
    assert view["status"] == "FAILED"
    assert "not valid JSON" in view["error"]
    assert f"job {job_id}: stream chunk refused" in worker_log(emulator, gen, view["workerId"])
    api.rest("DELETE", f"/v2/serverless/{gen}")


# -- workers that cannot start -----------------------------------------------------------------------


def endpoint_containers(endpoint_id: str, status: str | None = None) -> list[Any]:
    filters: dict[str, Any] = {"label": f"dev.rpdeploy.emulator.endpoint={endpoint_id}"}
    if status is not None:
        filters["status"] = status
    # sparse: a full listing inspects each container, and one removed meanwhile fails the call.
    return list(docker.from_env().containers.list(all=True, sparse=True, filters=filters))


def failed_starts(emulator: EmulatorProcess, endpoint_id: str) -> int:
    folder = emulator.state / "logs" / endpoint_id
    logs = folder.glob("*.log") if folder.is_dir() else []
    return sum("worker start failed" in path.read_text(errors="replace") for path in logs)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"args": "python3 -c 'print(1)"}, "cannot be split into a command"),
        ({"args": "/no/such/binary"}, "container start failed"),
        ({"image": "127.0.0.1:5000/rpdeploy-test/no-such-image:0"}, "image pull failed"),
    ],
    ids=["unsplittable-args", "start-fails", "missing-image"],
)
def test_a_worker_that_cannot_start_is_unhealthy_with_the_reason_and_leaves_no_container(
    api: Api, sdk_image: str, emulator: EmulatorProcess, overrides: dict[str, Any], reason: str
) -> None:
    settings = {"image": sdk_image, "name": "cannot-start", "workers": {"min": 1, "max": 1}, **overrides}
    broken = str(api.create_endpoint(**settings)["id"])
    listed = wait_for(
        lambda: [w for w in workers(api, broken) if w["status"] == "UNHEALTHY"], what="the failed start"
    )
    assert reason in listed[0]["statusReason"]
    assert reason in worker_log(emulator, broken, listed[0]["id"])
    # Each failed attempt would leave a Created container; at most the attempt in flight may exist.
    wait_for(lambda: failed_starts(emulator, broken) >= 3, what="three failed attempts")
    assert len(endpoint_containers(broken, status="created")) <= 1
    api.rest("DELETE", f"/v2/serverless/{broken}")
    wait_for(lambda: not endpoint_containers(broken), what="the endpoint's containers to go")


def test_deleting_an_endpoint_removes_its_containers(api: Api, sdk_image: str) -> None:
    warm = endpoint(api, sdk_image, name="warm", env={"HANDLER_MODE": "plain"}, workers={"min": 1, "max": 1})
    wait_for(lambda: [w for w in workers(api, warm) if w["status"] == "IDLE"], what="the warm worker")
    assert endpoint_containers(warm)
    api.rest("DELETE", f"/v2/serverless/{warm}")
    wait_for(lambda: not endpoint_containers(warm), what="the endpoint's containers to go")


def test_secrets_resolve_in_worker_env_and_missing_ones_fail_the_start(
    api: Api, sdk_image: str, emulator: EmulatorProcess
) -> None:
    value = "hf_secret_value_for_emulator"
    created = api.client.post(
        f"{api.base}/graphql",
        json={"query": f'mutation {{ secretCreate(input: {{name: "hf_tok", value: "{value}"}}) {{ id }} }}'},
        headers={"Authorization": f"Bearer {api.key}"},
    )
    assert created.json()["data"]["secretCreate"]["id"]
    env = {"HANDLER_MODE": "plain", "HF_TOKEN": "{{ RUNPOD_SECRET_hf_tok }}"}
    good = endpoint(api, sdk_image, name="secret", env=env, workers={"min": 0, "max": 1})
    view = api.job("POST", f"/{good}/runsync", {"input": {"env_sha256": "HF_TOKEN"}}).json()
    assert view["output"]["env_sha256"] == hashlib.sha256(value.encode()).hexdigest()
    assert value not in json.dumps(api.rest("GET", f"/v2/serverless/{good}").json())

    bad = endpoint(
        api, sdk_image, name="nosecret", env={"X": "{{RUNPOD_SECRET_missing}}"}, workers={"min": 1, "max": 1}
    )
    failed = wait_for(
        lambda: [w for w in workers(api, bad) if w["status"] == "UNHEALTHY"], what="the failed worker start"
    )
    assert "secret 'missing'" in failed[0]["statusReason"]
    assert "secret 'missing'" in worker_log(emulator, bad, failed[0]["id"])
    for doomed in (good, bad):
        api.rest("DELETE", f"/v2/serverless/{doomed}")


def test_rolling_release_lets_busy_workers_finish(api: Api, sdk_image: str, gate: Gate) -> None:
    rolling = endpoint(
        api,
        sdk_image,
        name="rolling",
        env={"HANDLER_MODE": "plain", "TAG": "v1"},
        workers={"min": 0, "max": 2},
    )
    busy = api.job("POST", f"/{rolling}/run", {"input": {"hold": gate.url}}).json()["id"]
    api.wait_status(rolling, busy, {"IN_PROGRESS"})
    api.rest("PATCH", f"/v2/serverless/{rolling}", {"env": {"HANDLER_MODE": "plain", "TAG": "v2"}})
    releases = api.rest("GET", f"/v2/serverless/{rolling}/releases").json()
    assert releases["endpointVersion"] == 2
    assert releases["rollout"]["inProgress"] is True
    listed = workers(api, rolling)
    assert [w["isStale"] for w in listed] == [True]
    fresh = api.job("POST", f"/{rolling}/runsync", {"input": {}}).json()
    assert fresh["output"]["tag"] == "v2"
    gate.open()  # only now may the old worker's job end: the rollout above was seen mid-way
    old = api.wait_status(rolling, busy, {"COMPLETED", "FAILED"})
    assert old["status"] == "COMPLETED"
    assert old["output"]["tag"] == "v1"
    done = wait_for(
        lambda: (
            api.rest("GET", f"/v2/serverless/{rolling}/releases").json()["rollout"]["inProgress"] is False
        ),
        what="the rollout to finish",
    )
    assert done
    api.rest("DELETE", f"/v2/serverless/{rolling}")


def test_network_volume_persists_across_workers_and_idle_scale_to_zero(
    api: Api, sdk_image: str, emulator: EmulatorProcess
) -> None:
    volume = api.rest(
        "POST", "/v2/network-volumes", {"name": "sdk", "size": 10, "dataCenter": "EU-RO-1"}
    ).json()
    vol = endpoint(
        api,
        sdk_image,
        name="volume",
        env={"HANDLER_MODE": "plain"},
        networkVolumes=[volume["id"]],
        workers={"min": 0, "max": 1, "idleTimeout": 1},
    )
    wrote = api.job("POST", f"/{vol}/runsync", {"input": {"write": ["/runpod-volume/note", "kept"]}}).json()
    assert wrote["output"]["written"] is True
    first_worker = wrote["output"]["worker"]
    wait_for(lambda: workers(api, vol) == [], what="scale to zero after idleTimeout")
    read = api.job("POST", f"/{vol}/runsync", {"input": {"read": "/runpod-volume/note"}}).json()
    assert read["output"]["content"] == "kept"
    assert read["output"]["worker"] != first_worker
    api.rest("DELETE", f"/v2/serverless/{vol}")
    # The network volume is a Docker volume named and labelled with the API's id; deleting it removes it.
    client = docker.from_env()
    mine = {"label": f"dev.rpdeploy.volume={volume['id']}"}
    assert [v.name for v in client.volumes.list(filters=mine)] == [
        f"rpdeploy-emu-{state_label(emulator.state)}-vol-{volume['id']}"
    ]
    assert api.rest("DELETE", f"/v2/network-volumes/{volume['id']}").status_code == 204
    # Removed once the deleted endpoint's last worker has let go of it.
    wait_for(lambda: client.volumes.list(filters=mine) == [], what="the Docker volume to be removed")


def test_a_worker_runs_in_a_volume_data_center_and_mounts_that_volume(api: Api, sdk_image: str) -> None:
    kansas = api.rest(
        "POST", "/v2/network-volumes", {"name": "ks", "size": 10, "dataCenter": "US-KS-2"}
    ).json()
    romania = api.rest(
        "POST", "/v2/network-volumes", {"name": "ro", "size": 10, "dataCenter": "EU-RO-1"}
    ).json()
    pinned = endpoint(
        api,
        sdk_image,
        name="volume-dc",
        env={"HANDLER_MODE": "plain"},
        networkVolumes=[kansas["id"], romania["id"]],
        dataCenterIds=["EU-RO-1"],
        workers={"min": 0, "max": 1, "idleTimeout": 60},
    )
    view = api.job(
        "POST", f"/{pinned}/runsync", {"input": {"env": ["RUNPOD_DC_ID", "RUNPOD_VOLUME_ID"]}}
    ).json()
    assert view["output"]["env"] == {"RUNPOD_DC_ID": "EU-RO-1", "RUNPOD_VOLUME_ID": romania["id"]}
    assert [w["dataCenterId"] for w in workers(api, pinned)] == ["EU-RO-1"]
    api.rest("DELETE", f"/v2/serverless/{pinned}")
    for volume in (kansas, romania):
        assert api.rest("DELETE", f"/v2/network-volumes/{volume['id']}").status_code == 204


def test_request_count_scaling_starts_a_worker_per_request_count(
    api: Api, sdk_image: str, gate: Gate
) -> None:
    counted = endpoint(
        api,
        sdk_image,
        name="request-count",
        env=ASYNC,
        scaling={"type": "REQUEST_COUNT", "requestCount": 1},
        workers={"min": 0, "max": 2},
    )
    ids = [api.submit(counted, {"hold": gate.url}) for _ in range(2)]
    # Both run at once while the gate is shut: a worker holds one job at a time, so two workers ran.
    for job_id in ids:
        api.wait_status(counted, job_id, {"IN_PROGRESS"}, timeout=120)
    gate.open()
    views = [api.wait_status(counted, job_id, {"COMPLETED"}) for job_id in ids]
    assert len({view["workerId"] for view in views}) == 2
    api.rest("DELETE", f"/v2/serverless/{counted}")


def test_failing_fitness_check_marks_the_worker_unhealthy(api: Api, sdk_image: str) -> None:
    unfit = endpoint(
        api, sdk_image, name="unfit", env={"FITNESS_FAIL": "no GPU found"}, workers={"min": 0, "max": 1}
    )
    job_id = api.submit(unfit, {})
    listed = wait_for(
        lambda: [w for w in workers(api, unfit) if "exited" in (w.get("statusReason") or "")],
        what="the unhealthy worker to exit",
    )
    assert listed[0]["status"] == "UNHEALTHY"
    assert "exited with code 1 after reporting unhealthy" in listed[0]["statusReason"]
    assert "fitness check gpu_present failed: RuntimeError: no GPU found" in listed[0]["statusReason"]
    # The job was never taken: it waits in the queue for a healthy worker.
    assert api.job("GET", f"/{unfit}/status/{job_id}").json()["status"] == "IN_QUEUE"
    api.rest("DELETE", f"/v2/serverless/{unfit}")
