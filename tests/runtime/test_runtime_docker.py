"""A slim image built by `rpdeploy build` provisions its handler's dependencies at cold start.

Real parts only: the image is built from a project by the CLI on the stack's base image, its
handler needs a real wheel from the stack's package index, and it runs as a container with a
read-only root, a small tmpfs /tmp and a Docker volume as /runpod-volume. The figures the
tests print (sizes, seconds) are observations for the report, never asserted on.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.config import load_config
from tests.runtime.conftest import INDEX_URL, s3_env
from tests.test_image_docker import CREATED, Run, as_json, config_text, engine, git, invoke

pytestmark = pytest.mark.docker
__all__ = ["engine"]  # the module-scoped engine fixture, shared with the image tests

#: The handler reports what the tests measure: where its dependency came from and how much
#: landed in /tmp (a 16 MB tmpfs here, the OS disk on RunPod) and on the volume.
HANDLER = """\
import json, os, sys
import six

if os.environ.get("ALLOCATE_MB"):  # the out-of-memory case: touch more than the container may have
    hog = b"x" * (int(os.environ["ALLOCATE_MB"]) << 20)

def usage(top):
    total = 0
    for folder, _, names in os.walk(top):
        for name in names:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                pass
    return total

print("REPORT " + json.dumps({
    "six": six.__file__,
    "tmp_bytes": usage("/tmp"),
    "volume_bytes": usage("/runpod-volume"),
    "tmpdir": os.environ.get("TMPDIR"),
    "pid": os.getpid(),
}), flush=True)
"""


@pytest.fixture
def slim_image(tmp_path: Path, run_cli: Run, engine: Any) -> str:
    return _project_image(tmp_path / "project", run_cli, "")


@contextlib.contextmanager
def _volume(engine: Any) -> Iterator[str]:
    created = engine.volumes.create(name=f"rpdeploy-test-{uuid.uuid4().hex[:10]}")
    try:
        yield created.name
    finally:
        created.remove(force=True)


@pytest.fixture
def volume(engine: Any) -> Iterator[str]:
    with _volume(engine) as name:
        yield name


def run_container(
    engine: Any, image: str, *, volume: str | None = None, volume_tmpfs: str | None = None, **options: Any
) -> tuple[int, str, int]:
    """(exit status, logs, bytes written to the container's own layer) of one container run:
    read-only root, a 16 MB tmpfs /tmp, /runpod-volume a Docker volume or a tmpfs of the given size."""
    tmpfs = {"/tmp": "size=16m"}
    if volume_tmpfs:
        tmpfs["/runpod-volume"] = f"size={volume_tmpfs}"
    volumes = {volume: {"bind": "/runpod-volume", "mode": "rw"}} if volume else {}
    env = options.pop("environment", {})
    container = engine.containers.run(
        image,
        detach=True,
        read_only=True,
        tmpfs=tmpfs,
        volumes=volumes,
        network_mode="host",  # the package index listens on the host's loopback
        environment={"RPDEPLOY_INDEX_URL": INDEX_URL, "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true", **env},
        **options,
    )
    try:
        status = container.wait(timeout=600)["StatusCode"]
        logs = container.logs().decode("utf-8", "replace")
        (listed,) = engine.api.containers(all=True, size=True, filters={"id": container.id})
        size_rw = listed.get("SizeRw") or 0
    finally:
        container.remove(force=True)
    return status, logs, size_rw


def report(logs: str) -> dict[str, Any]:
    line = next(line for line in logs.splitlines() if line.startswith("REPORT "))
    found: dict[str, Any] = json.loads(line.removeprefix("REPORT "))
    return found


def test_slim_image_provisions_on_the_volume_and_reuses_it(engine: Any, slim_image: str, volume: str) -> None:
    started = time.monotonic()
    status, logs, size_rw = run_container(engine, slim_image, volume=volume)
    first_s = time.monotonic() - started
    assert status == 0, logs
    assert "rpdeploy-bootstrap: installing /opt/rpdeploy/requirements.txt with pip" in logs
    first = report(logs)
    assert first["six"].startswith("/runpod-volume/rpdeploy/envs/")
    assert first["tmpdir"] == "/runpod-volume/rpdeploy/tmp"
    assert first["pid"] != 1  # as PID 1 the bootstrap stays the init and supervises the handler

    started = time.monotonic()
    status, logs, size_rw_2 = run_container(engine, slim_image, volume=volume)
    second_s = time.monotonic() - started
    assert status == 0, logs
    assert "installing" not in logs
    assert "is ready on /runpod-volume" in logs
    second = report(logs)
    print(
        f"\nslim cold start: first (install) {first_s:.1f} s, second (reuse) {second_s:.1f} s;"
        f" /tmp {first['tmp_bytes']} B, container layer {size_rw} / {size_rw_2} B,"
        f" volume {second['volume_bytes'] / 1e6:.2f} MB"
    )
    # Nothing of the install outside the volume: /tmp (the OS disk on RunPod) holds nothing,
    # and the read-only root took nothing.
    assert first["tmp_bytes"] == 0
    assert size_rw == 0

    # The handler killed for memory (a real OOM kill in a 96 MB container) is explained in one line.
    status, logs, _ = run_container(
        engine,
        slim_image,
        volume=volume,
        mem_limit="96m",
        memswap_limit="96m",
        environment={"ALLOCATE_MB": "512"},
    )
    assert status == 137, logs
    assert "was killed by SIGKILL (exit 137): most likely out of memory (memory limit 101 MB)" in logs


def test_a_tiny_volume_fails_the_preflight_in_one_line(engine: Any, slim_image: str) -> None:
    status, logs, _ = run_container(engine, slim_image, volume_tmpfs="1m")
    assert status == 28, logs
    lines = [line for line in logs.splitlines() if line.startswith("rpdeploy-bootstrap:")]
    assert lines[-1].startswith(
        "rpdeploy-bootstrap: needs 2.1 GB on /runpod-volume for the install, 0.0 GB free (attach a larger"
    ), logs
    assert "Traceback" not in logs


def test_a_full_volume_during_the_install_names_the_disk(engine: Any, slim_image: str) -> None:
    status, logs, _ = run_container(
        engine, slim_image, volume_tmpfs="8k", environment={"RPDEPLOY_MIN_FREE_VOLUME_MB": "0"}
    )
    assert status == 28, logs
    lines = [line for line in logs.splitlines() if line.startswith("rpdeploy-bootstrap:")]
    assert "no space left on /runpod-volume (" in lines[-1], logs
    assert "% )" not in lines[-1]
    assert "while installing /opt/rpdeploy/requirements.txt" in lines[-1], logs


def _project_image(root: Path, run_cli: Run, runtime: str, *, strategy: str = "slim") -> str:
    """A committed project whose config adds ``runtime`` lines; the image `rpdeploy build` built."""
    (root / "worker").mkdir(parents=True)
    repository = f"rpdeploy-test/{uuid.uuid4().hex[:10]}"
    CREATED.add(repository)
    (root / "worker" / "handler.py").write_text(f"# {repository}\n{HANDLER}")
    (root / "worker" / "requirements.txt").write_text("six==1.17.0\n")
    (root / ".gitignore").write_text("build/\n")
    text = config_text(repository, strategy=strategy).replace(
        "  requirements: worker/requirements.txt\n", f"  requirements: worker/requirements.txt\n{runtime}"
    )
    (root / "rpdeploy.yaml").write_text(text)
    git(root, "init", "-q", "-b", "main")
    git(root, "-c", "user.email=t@example.com", "-c", "user.name=t", "add", "-A")
    git(root, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "-m", "init")
    built = invoke(run_cli, root, "build", "-o", "json")
    assert built.exit_code == 0, built.stderr
    image: str = as_json(built)["image"]
    return image


def worker_env(root: Path) -> dict[str, str]:
    """The bootstrap's settings render puts into the project's endpoint env (`Config.runtime_env`;
    the secrets, which RunPod fills in, are each test's to give)."""
    config = load_config(root / "rpdeploy.yaml").config
    return {name: value for name, (value, _) in config.runtime_env().items()}


def test_uv_at_cold_start_then_env_build_push_makes_the_next_empty_volume_download(
    engine: Any, tmp_path: Path, run_cli: Run
) -> None:
    """installer: uv in a slim image (uv itself installed onto the work disk), then the archive
    `rpdeploy env build --push` builds in the base image is what a worker on an empty volume
    downloads: same key, same format, no install."""
    prefix = f"tests/{uuid.uuid4().hex[:12]}/"
    s3 = s3_env()
    endpoint = s3["AWS_ENDPOINT_URL"]
    bucket = s3["RPDEPLOY_S3_BUCKET"]
    runtime = f"  installer: uv\n  s3: {{bucket: {bucket}, prefix: {prefix}, endpoint_url: '{endpoint}'}}\n"
    root = tmp_path / "project"
    image = _project_image(root, run_cli, runtime)
    # The installer and the S3 archive's place reach the worker through the endpoint env, as on RunPod.
    env = worker_env(root)
    assert (env["RPDEPLOY_INSTALLER"], env["RPDEPLOY_S3_PREFIX"]) == ("uv", prefix)
    with _volume(engine) as first_volume:
        # No credentials: no archive step, uv installs from the index.
        status, logs, _ = run_container(engine, image, volume=first_volume, environment=env)
    assert status == 0, logs
    assert "rpdeploy-bootstrap: installing uv onto the work disk" in logs
    assert "installing /opt/rpdeploy/requirements.txt with uv from http://127.0.0.1:8099/simple/" in logs
    assert report(logs)["six"].startswith("/runpod-volume/rpdeploy/envs/")

    credentials = {name: s3[name] for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    started = time.monotonic()
    pushed = invoke(run_cli, root, "env", "build", "--push", "-o", "json", **credentials)
    build_s = time.monotonic() - started
    assert pushed.exit_code == 0, pushed.stderr
    built = as_json(pushed, "env build")
    assert built["s3_url"] == f"s3://{s3['RPDEPLOY_S3_BUCKET']}/{prefix}{built['key']}.tar.gz"
    assert (built["uploaded"], built["existed"]) == (True, False)
    archive = root / "build" / "rpdeploy" / "envs" / f"{built['key']}.tar.gz"
    assert built["archive"] == str(archive)
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == built["sha256"]
    assert credentials["AWS_SECRET_ACCESS_KEY"] not in pushed.stdout + pushed.stderr

    again = invoke(run_cli, root, "env", "build", "--push", "-o", "json", **credentials)
    assert again.exit_code == 0, again.stderr
    assert as_json(again, "env build")["existed"] is True

    with _volume(engine) as empty:
        status, logs, _ = run_container(engine, image, volume=empty, environment={**env, **credentials})
    assert status == 0, logs
    assert f"rpdeploy-bootstrap: downloading {built['s3_url']}" in logs
    assert "installing" not in logs
    assert report(logs)["six"].startswith(f"/runpod-volume/rpdeploy/envs/{built['key']}/")
    print(f"\nenv build --push (uv, in the base image): {build_s:.1f} s, archive {built['size']} B")


def test_a_baked_image_with_uv_builds_and_runs(engine: Any, tmp_path: Path, run_cli: Run) -> None:
    image = _project_image(tmp_path / "project", run_cli, "  installer: uv\n", strategy="baked")
    status, logs, _ = run_container(engine, image)
    assert status == 0, logs
    assert report(logs)["six"].startswith("/opt/venv/lib/python3.11/site-packages/")
    # uv was only a build tool: it is not in the image.
    found = engine.containers.run(
        image, ["python3", "-c", "import shutil; print(shutil.which('uv'))"], remove=True, entrypoint=[]
    )
    assert found.decode().strip() == "None"
