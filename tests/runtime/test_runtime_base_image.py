"""The bootstrap as PID 1 of a container, end to end: filesystem errors at cold start (a read-only
work disk, a read-only root, a quota) and the init's duty of reaping orphans.

The bootstrap runs as the slim image runs it (`python3 /opt/rpdeploy/rpdeploy_runtime`, the
stack's base image, read-only root, a 16 MB tmpfs /tmp), copied in read-only, no image built.
Each filesystem case asserts the one line and the exit status docs/runtime.md gives (73
read-only or permission, 28 full or over quota, 74 any other error of the filesystem).

EROFS is real: a read-only tmpfs at /runpod-volume, the read-only root. A quota (EDQUOT) cannot be
made on this kernel: tmpfs quotas (``usrquota``, Linux >= 6.6) need CONFIG_TMPFS_QUOTA (mount
says EINVAL; Docker 20.10 also refuses the option), ext4 quotas need CONFIG_QUOTA and
CONFIG_QFMT_V2 (dmesg: "The kernel was not built with CONFIG_QUOTA and CONFIG_QFMT_V2"), and
there is no xfs or btrfs tooling. So the kernel returns EDQUOT (and EIO) from a seccomp rule on
chosen system calls of an unprivileged container: the one part mocked, and only the errno; the
bootstrap, pip and the paths are real.
"""

from __future__ import annotations

import errno
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.runtime.conftest import INDEX_URL, SMALL_REQUIREMENT, copy_bootstrap

pytestmark = pytest.mark.docker

BASE = os.environ.get("RPDEPLOY_BASE_IMAGE", "127.0.0.1:5000/python:3.11-slim-local")
#: Where the slim image holds the bootstrap and the locked requirements (deploy/render/project.py).
BOOTSTRAP = "/opt/rpdeploy/rpdeploy_runtime"
REQUIREMENTS = "/opt/rpdeploy/requirements.txt"
HANDLER = ["python3", "-c", "print('HANDLER RAN')"]


@pytest.fixture(scope="module")
def engine() -> Iterator[Any]:
    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(scope="module")
def image_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("slim")
    copy_bootstrap(root)
    (root / "requirements.txt").write_text(SMALL_REQUIREMENT)
    return root


@pytest.fixture(scope="module")
def shared_volume(engine: Any) -> Iterator[str]:
    """One network volume for the cases that start a handler: the first installs, the others reuse."""
    created = engine.volumes.create(name=f"rpdeploy-test-{uuid.uuid4().hex[:10]}")
    yield created.name
    created.remove(force=True)


def seccomp(calls: list[str], number: int) -> str:
    """A profile that fails ``calls`` with ``number`` and allows everything else (the errno is the
    mock: this kernel cannot make a quota, see the module's docstring)."""
    rule = {"names": calls, "action": "SCMP_ACT_ERRNO", "errnoRet": number}
    return json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]})


def cold_start(
    engine: Any,
    files: Path,
    *,
    volume: str | None = "size=64m",
    env: dict[str, str] | None = None,
    failing: str | None = None,
    handler: list[str] = HANDLER,
    named: str | None = None,
    **options: Any,
) -> tuple[int, list[str], str]:
    """(exit status, the bootstrap's lines) of one cold start; ``volume``: the tmpfs options of
    /runpod-volume (None: not mounted); ``named``: a Docker volume there instead; ``failing``: a
    seccomp profile; ``handler``: the command; ``options``: more of `containers.run`'s."""
    tmpfs = {"/tmp": "size=16m"}
    mounts = {
        str(files / "rpdeploy_runtime"): {"bind": BOOTSTRAP, "mode": "ro"},
        str(files / "requirements.txt"): {"bind": REQUIREMENTS, "mode": "ro"},
    }
    if named is not None:
        mounts[named] = {"bind": "/runpod-volume", "mode": "rw"}
    elif volume is not None:
        tmpfs["/runpod-volume"] = volume
    container = engine.containers.run(
        BASE,
        [BOOTSTRAP, *handler],
        entrypoint=["python3"],
        detach=True,
        read_only=True,
        tmpfs=tmpfs,
        volumes=mounts,
        network_mode="host",  # the package index listens on the host's loopback
        environment={
            "RPDEPLOY_INDEX_URL": INDEX_URL,
            "RPDEPLOY_MIN_FREE_VOLUME_MB": "1",
            "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
            "PYTHONDONTWRITEBYTECODE": "1",
            **(env or {}),
        },
        security_opt=[f"seccomp={failing}"] if failing else None,
        **options,
    )
    try:
        status: int = container.wait(timeout=300)["StatusCode"]
        logs = container.logs().decode("utf-8", "replace")
    finally:
        container.remove(force=True)
    assert "Traceback" not in logs, logs
    return status, [line for line in logs.splitlines() if line.startswith("rpdeploy-bootstrap:")], logs


def test_a_read_only_volume_is_exit_73_naming_the_work_disk(engine: Any, image_files: Path) -> None:
    status, lines, _ = cold_start(engine, image_files, volume="ro,size=1m")
    assert status == 73, lines
    assert lines == [
        "rpdeploy-bootstrap: cannot use /runpod-volume/rpdeploy: Read-only file system (EROFS); the work disk"
        " /runpod-volume is mounted read-only: mount it read-write (the network volume, or the disk at"
        " RPDEPLOY_WORK_DIR)"
    ]


def test_a_work_dir_on_a_read_only_root_is_exit_73(engine: Any, image_files: Path) -> None:
    # It was exit 1 ("cannot create it"), unlike every other path that cannot be written.
    env = {"RPDEPLOY_WORK_DIR": "/work", "RPDEPLOY_ALLOW_OS_DISK": "1"}
    status, lines, _ = cold_start(engine, image_files, volume=None, env=env)
    assert status == 73, lines
    assert lines == [
        "rpdeploy-bootstrap: cannot use /work: Read-only file system (EROFS); the work disk /work is mounted"
        " read-only: mount it read-write (the network volume, or the disk at RPDEPLOY_WORK_DIR)"
    ]


def test_a_model_cache_on_the_read_only_root_is_exit_73_naming_the_variable(
    engine: Any, image_files: Path
) -> None:
    status, lines, _ = cold_start(engine, image_files, env={"HF_HOME": "/root/.cache/huggingface"})
    assert status == 73, lines
    assert lines == [
        "rpdeploy-bootstrap: cannot use /root/.cache: Read-only file system (EROFS); that filesystem is"
        " read-only: point the variable naming it (HF_HOME, TORCH_HOME, ...) at the work disk, or leave it"
        " unset so the bootstrap puts it there"
    ]


@pytest.mark.parametrize(
    ("number", "status", "text"),
    [
        (errno.EDQUOT, 28, "Disk quota exceeded (EDQUOT); free space on it or raise the quota"),
        (errno.EIO, 74, "Input/output error (EIO); check that disk (dmesg, the volume's health)"),
    ],
    ids=["EDQUOT", "EIO"],
)
def test_an_error_of_the_work_disk_is_one_line_with_its_status(
    engine: Any, image_files: Path, number: int, status: int, text: str
) -> None:
    found, lines, _ = cold_start(engine, image_files, failing=seccomp(["mkdir", "mkdirat"], number))
    assert found == status, lines
    assert lines == [f"rpdeploy-bootstrap: cannot use /runpod-volume/rpdeploy: {text}"]


def test_a_quota_hit_while_pip_installs_is_exit_28(engine: Any, image_files: Path) -> None:
    # pip moves each installed file into place with os.replace (rename): there the kernel says
    # EDQUOT, after the bootstrap laid out the work disk and took the lock. pip exits 1 with
    # "[Errno 122] Disk quota exceeded"; it was explained as a failed install (exit 1).
    calls = ["rename", "renameat", "renameat2"]
    status, lines, _ = cold_start(engine, image_files, failing=seccomp(calls, errno.EDQUOT))
    assert status == 28, lines
    assert lines[-2] == f"rpdeploy-bootstrap: installing {REQUIREMENTS} with pip from {INDEX_URL}"
    assert lines[-1].startswith("rpdeploy-bootstrap: cannot use /runpod-volume ("), lines
    assert lines[-1].endswith(
        ": Disk quota exceeded (EDQUOT); free space on it or raise the quota"
        f" (while installing {REQUIREMENTS})"
    ), lines


#: Starts an orphan (a `sleep` whose shell has exited, so the kernel hands it to PID 1) and watches
#: its /proc entry: an init that reaps makes it vanish; one that does not leaves a zombie ("Z").
ORPHAN = """\
import os, subprocess, time
print("PARENT", os.getppid(), flush=True)
orphan = int(subprocess.run(["sh", "-c", "sleep 0.2 >/dev/null 2>&1 & echo $!"],
                            capture_output=True, text=True, check=True).stdout)
state = "?"
for _ in range(1200):  # up to 2 minutes on a loaded machine; a reaped orphan ends it at once
    try:
        with open(f"/proc/{orphan}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        print("REAPED", flush=True)
        break
    time.sleep(0.1)
else:
    print("NOT REAPED", state, flush=True)
"""


def test_as_pid_1_the_bootstrap_reaps_orphans(engine: Any, image_files: Path, shared_volume: str) -> None:
    status, _, logs = cold_start(engine, image_files, handler=["python3", "-c", ORPHAN], named=shared_volume)
    assert status == 0, logs
    assert "PARENT 1\n" in logs  # the handler is the bootstrap's child, the bootstrap is PID 1
    assert "REAPED" in logs.splitlines(), logs


#: How many processes run the bootstrap beside this handler (docker-init's arguments name it too).
COUNT_BOOTSTRAPS = f"""\
import os
found = 0
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open(f"/proc/{{pid}}/cmdline", "rb") as handle:
            found += handle.read().split(bytes(1))[:2] == [b"python3", b"{BOOTSTRAP}"]
    except OSError:
        pass
print("BOOTSTRAPS", found, "PARENT", os.getppid(), flush=True)
"""


@pytest.mark.parametrize(
    ("init", "expected"),
    [(True, "BOOTSTRAPS 0 PARENT 1"), (False, "BOOTSTRAPS 1 PARENT 1")],
    ids=["docker-init", "bootstrap-as-pid-1"],
)
def test_under_another_init_the_bootstrap_execs_the_handler(
    engine: Any, image_files: Path, shared_volume: str, init: bool, expected: str
) -> None:
    # docker run --init: tini is PID 1, the bootstrap becomes the handler (signals reach it directly);
    # without it the bootstrap stays beside the handler as its init.
    handler = ["python3", "-c", COUNT_BOOTSTRAPS]
    status, lines, logs = cold_start(engine, image_files, handler=handler, named=shared_volume, init=init)
    assert status == 0, logs
    assert expected in logs.splitlines(), logs
    assert not any("installing" in line for line in lines), lines  # the volume's environment reused
