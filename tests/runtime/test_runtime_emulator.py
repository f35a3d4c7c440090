"""The slim runtime under the emulator with a tiny OS disk: a real install of more than 150 MB
lands on the network volume, and 2 and 4 workers starting together on one volume install once.

Real parts only: a slim image built by `rpdeploy build` whose handler needs the runpod SDK
(runpod==1.12.0 and its dependencies from the stack's package index: about 170 MB installed by
pip, bytecode included); `rpdeploy emulator start --tiny-os-disk 16` (read-only root, 16 MB
tmpfs /tmp) running it as workers with a network volume at /runpod-volume; jobs submitted with
the runpod SDK's client. Lean on purpose (an install takes tens of seconds here): one image, one
emulator, and both endpoints (2 workers installing with pip, 4 with uv, a volume each)
provisioning at the same time. The seconds printed are observations for the report, never
asserted on.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
import runpod

from deploy.emulator.containers import LABEL, LABEL_ENDPOINT
from deploy.emulator.settings import state_label
from tests.conftest import json_data
from tests.emulator.helpers import API_KEY, Api, free_port
from tests.emulator.test_emulator_cli import rpdeploy
from tests.emulator.test_emulator_sdk import Gate
from tests.runtime.conftest import INDEX_URL
from tests.test_image_docker import CLEAN_ENV, CREATED, config_text, engine, git

pytestmark = pytest.mark.docker
__all__ = ["engine"]  # the module-scoped engine fixture, which removes the images built here

#: The tiny OS disk: /tmp is a tmpfs of this many MB, far smaller than the install.
TMP_MB = 16
#: Real, heavy requirements: runpod 1.12.0 and its dependencies, ~170 MB with their bytecode.
REQUIREMENTS = "runpod==1.12.0\n"
#: Workers per endpoint, and the installer each endpoint's bootstrap uses (pip is the default;
#: uv, much quicker, keeps the second install short and proves its cache off the OS disk too).
INSTALLERS = {2: "pip", 4: "uv"}
#: What each environment must hold on the volume, bytecode included (the bootstrap compiles it
#: after either installer; the floors date from when uv's environments had none).
INSTALL_FLOOR = {"pip": 150_000_000, "uv": 100_000_000}
#: What may land outside the work disk: a few kB of interpreter and SDK state at most.
OUTSIDE_BOUND = 1_000_000
#: A generous bound for a cold start that installs from the index on a loaded 2-core machine.
PROVISION_TIMEOUT_S = 900

HANDLER = """\
import errno, os, sys, time, urllib.request
import runpod

sys.path.insert(0, "/opt/rpdeploy")
from rpdeploy_runtime import envstore  # the bootstrap's own completeness check, file by file

WORK = "/runpod-volume/rpdeploy"

def used(path):
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize

def gate_open(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False

def handler(job):
    url = job["input"]["hold"]
    for _ in range(HOLD_STEPS):  # held until the test opens its gate (every worker then holds a job)
        if gate_open(url):
            break
        time.sleep(0.1)
    try:
        with open("/opt/rpdeploy/probe", "w") as probe:
            probe.write("x")
        root = "writable"
    except OSError as exc:
        root = errno.errorcode.get(exc.errno, str(exc))  # a code: the SDK logs this output
    env_dir = os.environ["RPDEPLOY_ENV_DIR"]
    return {
        "worker": os.environ["RUNPOD_POD_ID"],
        "runpod": runpod.__file__,
        "env_dir": env_dir,
        "env_bytes": envstore.size_of(env_dir),
        "problem": envstore.check(env_dir, files=True),
        "tmpdir": os.environ.get("TMPDIR"),
        "tmp_used": used("/tmp"),
        "shm_used": used("/dev/shm"),
        "shm": sorted(os.listdir("/dev/shm")),
        "root": root,
        "work": {name: sorted(os.listdir(os.path.join(WORK, name))) for name in ("envs", "staging", "locks")},
    }

runpod.serverless.start({"handler": handler})
"""


@dataclass
class Emulator:
    state: Path
    api: Api

    def worker_logs(self, endpoint_id: str) -> dict[str, str]:
        folder = self.state / "logs" / endpoint_id
        return {path.stem: path.read_text(errors="replace") for path in sorted(folder.glob("*.log"))}


def emulator_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return rpdeploy(*args, env={"RUNPOD_API_KEY": API_KEY})


@pytest.fixture(scope="module")
def slim_image(tmp_path_factory: pytest.TempPathFactory, engine: Any) -> str:
    root = tmp_path_factory.mktemp("project")
    (root / "worker").mkdir()
    repository = f"rpdeploy-test/{uuid.uuid4().hex[:10]}"
    CREATED.add(repository)  # the engine fixture removes it afterwards
    # A held job waits as long as the test waits for the slowest worker, and never longer.
    handler = HANDLER.replace("HOLD_STEPS", str(PROVISION_TIMEOUT_S * 10))
    (root / "worker" / "handler.py").write_text(f"# {repository}\n{handler}")
    (root / "worker" / "requirements.txt").write_text(REQUIREMENTS)
    (root / ".gitignore").write_text("build/\n")
    (root / "rpdeploy.yaml").write_text(config_text(repository))
    git(root, "init", "-q", "-b", "main")
    git(root, "-c", "user.email=t@example.com", "-c", "user.name=t", "add", "-A")
    git(root, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "-m", "init")
    clean = {key: value for key, value in os.environ.items() if key not in CLEAN_ENV}
    built = subprocess.run(
        [sys.executable, "-m", "deploy", "build", "-o", "json"],
        cwd=root,
        env=clean,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    image: str = json_data(built.stdout, "build")["image"]
    return image


@pytest.fixture(scope="module")
def tiny_disk_emulator(tmp_path_factory: pytest.TempPathFactory, engine: Any) -> Iterator[Emulator]:
    """`rpdeploy emulator start --tiny-os-disk` (the background form, as a user starts it).

    Takes ``engine`` so that it stops (removing its workers) before the engine fixture removes
    the image they run."""
    state, port = tmp_path_factory.mktemp("emulator") / "state", free_port()
    started = emulator_cli("start", "--port", str(port), "--state", str(state), "--tiny-os-disk", str(TMP_MB))
    try:
        assert started.returncode == 0, started.stderr
        yield Emulator(state, Api(f"http://127.0.0.1:{port}"))
    finally:
        stopped = emulator_cli("stop", "--state", str(state))
        client = docker.from_env()
        # Network volumes outlive the emulator on purpose; this run's go with its state.
        for volume in client.volumes.list(filters={"label": f"{LABEL}={state_label(state)}"}):
            with contextlib.suppress(docker.errors.APIError):
                volume.remove(force=True)
    assert stopped.returncode == 0, stopped.stderr


def volume_endpoint(api: Api, image: str, workers: int, installer: str) -> str:
    """An endpoint of ``workers`` workers (all started at once: min = max) on a fresh network volume."""
    created = api.rest(
        "POST", "/v2/network-volumes", {"name": f"w{workers}", "size": 10, "dataCenter": "EU-RO-1"}
    )
    assert created.status_code == 201, created.text
    endpoint = api.create_endpoint(
        name=f"slim-{workers}",
        image=image,
        networkVolumes=[created.json()["id"]],
        env={"RPDEPLOY_INDEX_URL": INDEX_URL, "RPDEPLOY_INSTALLER": installer},
        workers={"min": workers, "max": workers, "idleTimeout": 600},
        # Jobs are held until the slowest worker is up: the 300 s default execution timeout
        # must not end the early ones.
        timeout=2 * PROVISION_TIMEOUT_S * 1000,
    )
    return str(endpoint["id"])


def layer_bytes(endpoint_id: str) -> dict[str, int]:
    """Bytes each of the endpoint's containers wrote to its own layer (the engine's SizeRw)."""
    client = docker.from_env()
    listed = client.api.containers(all=True, size=True, filters={"label": f"{LABEL_ENDPOINT}={endpoint_id}"})
    return {item["Id"][:12]: item.get("SizeRw") or 0 for item in listed}


def test_workers_on_one_volume_install_once_on_a_tiny_os_disk(
    tiny_disk_emulator: Emulator, slim_image: str
) -> None:
    emulator, api = tiny_disk_emulator, tiny_disk_emulator.api
    runpod.api_key = API_KEY
    runpod.endpoint_url_base = f"{api.base}/v2"
    gate = Gate()
    started = time.monotonic()
    try:
        # Both endpoints provision at the same time: the two installs overlap, not add up.
        endpoints = {count: volume_endpoint(api, slim_image, count, how) for count, how in INSTALLERS.items()}
        jobs = {
            count: [runpod.Endpoint(endpoint_id).run({"hold": gate.url}) for _ in range(count)]
            for count, endpoint_id in endpoints.items()
        }
        # Every worker holds one job: all of them started, with the environment provisioned.
        for count, endpoint_id in endpoints.items():
            for job in jobs[count]:
                api.wait_status(endpoint_id, job.job_id, {"IN_PROGRESS"}, timeout=PROVISION_TIMEOUT_S)
        provisioned_s = time.monotonic() - started
        gate.open()
        outputs = {count: [job.output(timeout=120) for job in jobs[count]] for count in jobs}
    finally:
        gate.open()
        gate.close()
    for count, endpoint_id in endpoints.items():
        logs = emulator.worker_logs(endpoint_id)
        check_one_install(INSTALLERS[count], outputs[count], logs)
        layers = layer_bytes(endpoint_id)
        assert len(layers) == count, layers
        # The read-only root took nothing: the engine saw no byte written to any container's layer.
        assert max(layers.values()) <= OUTSIDE_BOUND, layers
    sizes = {INSTALLERS[count]: found[0]["env_bytes"] / 1e6 for count, found in outputs.items()}
    outside = {(o["tmp_used"], o["shm_used"], *o["shm"]) for found in outputs.values() for o in found}
    print(
        f"\nslim under the emulator, tiny OS disk (read-only root, {TMP_MB} MB /tmp): 2 + 4 workers on two"
        f" volumes provisioned and holding jobs after {provisioned_s:.0f} s; environment MB {sizes};"
        f" (/tmp, /dev/shm) bytes used in the workers, files in /dev/shm: {sorted(outside)}"
    )


def check_one_install(installer: str, outputs: list[dict[str, Any]], logs: dict[str, str]) -> None:
    """Each worker completed a job from one intact environment, installed by one of them."""
    shown = "\n".join(f"== {worker}\n{text[-3000:]}" for worker, text in logs.items())
    assert sorted(output["worker"] for output in outputs) == sorted(logs), shown  # each worker ran one job
    line = f"rpdeploy-bootstrap: installing /opt/rpdeploy/requirements.txt with {installer} from {INDEX_URL}"
    installers = [worker for worker, text in logs.items() if "rpdeploy-bootstrap: installing" in text]
    assert len(installers) == 1, shown
    assert line in logs[installers[0]], shown
    others = [text for worker, text in logs.items() if worker not in installers]
    waited = [text for text in others if "was provisioned by another worker; using it" in text]
    ready = [text for text in others if "is ready on /runpod-volume" in text]
    assert len(waited) + len(ready) == len(logs) - 1, shown
    assert waited, shown  # they did start together: at least one waited on the installer's lock
    assert "broke a stale lock" not in shown  # nobody took a live installer for a dead one
    # No installer, SDK or library met the read-only root or a full /tmp, even in a warning.
    for text in logs.values():
        assert "Read-only file system" not in text, shown
        assert "No space left" not in text, shown
    (env_dir,) = {output["env_dir"] for output in outputs}
    for output in outputs:
        assert output["problem"] is None, output  # every file the manifest lists, at its size
        assert output["runpod"].startswith(f"{env_dir}/site/"), output
        assert output["work"] == {"envs": [Path(env_dir).name], "staging": [], "locks": []}, output
        # More than 150 MB installed (with pip), none of it outside the work disk.
        assert output["env_bytes"] > INSTALL_FLOOR[installer], output
        assert output["tmpdir"] == "/runpod-volume/rpdeploy/tmp", output
        assert output["tmp_used"] + output["shm_used"] <= OUTSIDE_BOUND, output
        assert output["root"] == "EROFS", output  # the image itself took no write
