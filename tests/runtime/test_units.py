"""Pure parts of the bootstrap: the handler command's shapes, archive safety, the key, settings."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from deploy.runtime import archive, envstore, lock, settings, start
from deploy.runtime.failure import Failure

LAUNCH = start.LAUNCH


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["python3", "-u", "/app/h.py", "--x"], ["python3", "-u", LAUNCH, "file", "/app/h.py", "--x"]),
        (["python3", "/app/h.py"], ["python3", LAUNCH, "file", "/app/h.py"]),
        (
            ["/usr/bin/python3.11", "-W", "ignore", "h.py"],
            ["/usr/bin/python3.11", "-W", "ignore", LAUNCH, "file", "h.py"],
        ),
        (["python3", "-u", "-m", "pkg.main", "a"], ["python3", "-u", LAUNCH, "module", "pkg.main", "a"]),
        (["python3", "-c", "print(1)"], ["python3", "-c", "print(1)"]),
        (["python3"], ["python3"]),
        (["python3", "-u", "serve"], ["python3", "-u", "serve"]),
        (["/start.sh", "x.py"], ["/start.sh", "x.py"]),
        (["uvicorn", "app:app"], ["uvicorn", "app:app"]),
    ],
)
def test_python_handlers_run_through_the_launcher(argv: list[str], expected: list[str]) -> None:
    assert start.wrap_python(argv) == expected


def _tar_with(tmp_path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    path = tmp_path / "bad.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data) if data else None)
    return path


@pytest.mark.parametrize(
    ("name", "kind", "link"),
    [
        ("../escape.py", tarfile.REGTYPE, ""),
        ("/etc/evil", tarfile.REGTYPE, ""),
        ("site/link", tarfile.SYMTYPE, "/etc/passwd"),
        ("site/link", tarfile.SYMTYPE, "../../outside"),
        ("site/dev", tarfile.CHRTYPE, ""),
        # A hard link names another member from the archive's root, not from its own folder.
        ("site/hard", tarfile.LNKTYPE, "../outside"),
    ],
)
def test_archive_members_that_leave_the_folder_are_refused(
    tmp_path: Path, name: str, kind: bytes, link: str
) -> None:
    member = tarfile.TarInfo(name)
    member.type, member.linkname = kind, link
    bad = _tar_with(tmp_path, member, b"x" if kind == tarfile.REGTYPE else b"")
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(Failure, match="refused"):
        archive.unpack(str(bad), str(dest))
    assert not list(dest.iterdir())


def test_a_damaged_archive_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(Failure, match="environment archive is damaged"):
        archive.unpack(str(bad), str(tmp_path))


def test_pack_then_unpack_keeps_a_sealed_environment(tmp_path: Path) -> None:
    env = tmp_path / "env"
    (env / "site" / "pkg").mkdir(parents=True)
    (env / "site" / "pkg" / "__init__.py").write_text("x = 1\n")
    envstore.seal(str(env), "k")
    packed = tmp_path / "env.tar.gz"
    archive.pack(str(env), str(packed))
    with tarfile.open(packed) as tar:
        assert tar.getnames()[-1] == "COMPLETE"  # the marker travels last
    out = tmp_path / "out"
    out.mkdir()
    archive.unpack(str(packed), str(out))
    assert envstore.check(str(out)) is None


@pytest.mark.parametrize("with_tar", [True, False], ids=["gnu-tar", "tarfile"])
def test_both_extractors_unpack_the_same_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_tar: bool
) -> None:
    # GNU tar writes the files where the system has it; without it (PATH emptied here, as on an
    # image without tar) tarfile does. Both must give the same tree: modes, in-tree links, marker.
    env = tmp_path / "env"
    (env / "site" / "pkg").mkdir(parents=True)
    (env / "site" / "pkg" / "__init__.py").write_text("x = 1\n")
    tool = env / "site" / "bin" / "tool"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    (env / "site" / "pkg" / "alias.py").symlink_to("__init__.py")
    envstore.seal(str(env), "k")
    packed = tmp_path / "env.tar.gz"
    archive.pack(str(env), str(packed))
    if not with_tar:
        monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    assert (archive._gnu_tar() is not None) is with_tar
    out = tmp_path / "out"
    out.mkdir()
    archive.unpack(str(packed), str(out))
    assert envstore.check(str(out)) is None
    assert os.access(out / "site" / "bin" / "tool", os.X_OK)
    assert os.readlink(out / "site" / "pkg" / "alias.py") == "__init__.py"
    assert (out / "site" / "pkg" / "alias.py").read_text() == "x = 1\n"


def test_a_truncated_archive_is_one_line_with_either_extractor(tmp_path: Path) -> None:
    env = tmp_path / "env"
    (env / "site").mkdir(parents=True)
    (env / "site" / "big.bin").write_bytes(os.urandom(256 * 1024))
    envstore.seal(str(env), "k")
    packed = tmp_path / "env.tar.gz"
    archive.pack(str(env), str(packed))
    packed.write_bytes(packed.read_bytes()[: packed.stat().st_size // 2])
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(Failure, match="environment archive is damaged"):
        archive.unpack(str(packed), str(out))


def test_the_key_follows_requirements_and_interpreter() -> None:
    base = envstore.env_key(b"six==1.17.0\n", "cpython-3.11.2-x86_64")
    assert base == envstore.env_key(b"six==1.17.0\n", "cpython-3.11.2-x86_64")
    assert base != envstore.env_key(b"six==1.16.0\n", "cpython-3.11.2-x86_64")
    assert base != envstore.env_key(b"six==1.17.0\n", "cpython-3.12.1-x86_64")
    # Length-prefixed parts: moving bytes between them changes the key.
    assert envstore.env_key(b"ab", "x") != envstore.env_key(b"b", "xa")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RPDEPLOY_INSTALLER": "conda"}, "RPDEPLOY_INSTALLER='conda': use pip or uv"),
        ({"RPDEPLOY_MIN_FREE_VOLUME_MB": "lots"}, "RPDEPLOY_MIN_FREE_VOLUME_MB='lots' is not a number"),
        ({"RPDEPLOY_LOCK_STALE_S": "-1"}, "RPDEPLOY_LOCK_STALE_S='-1' must not be negative"),
    ],
)
def test_bad_settings_are_one_line(env: dict[str, str], message: str) -> None:
    with pytest.raises(Failure) as caught:
        settings.load(env)
    assert caught.value.message == message


def test_s3_is_off_unless_every_part_is_there() -> None:
    full = {
        "RPDEPLOY_S3_BUCKET": "b",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:8333/",
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
    }
    found = settings.s3_settings(full)
    assert found is not None
    assert (found.endpoint_url, found.region, found.prefix) == (
        "http://127.0.0.1:8333",
        "us-east-1",
        "rpdeploy/envs/",
    )
    for name in full:
        assert settings.s3_settings({k: v for k, v in full.items() if k != name}) is None
    assert (
        settings.s3_settings({**full, "AWS_ENDPOINT_URL": "", "RPDEPLOY_S3_ENDPOINT": "https://x"})
        is not None
    )


def test_a_dead_pid_breaks_a_lock_only_from_the_holders_pid_namespace(tmp_path: Path) -> None:
    # Workers with host networking (the emulator's) share the host's name, each with its own pids:
    # a pid of another container's install is not ours to look up, only its heartbeat tells.
    gone = subprocess.Popen(["true"])
    gone.wait()
    path = tmp_path / "key.lock"
    path.mkdir()
    held = lock.Lock(str(path), stale_s=600)

    def owner(pidns: str | None) -> None:
        record = {"host": socket.gethostname(), "pidns": pidns, "pid": gone.pid, "since": time.time()}
        (path / lock.OWNER).write_text(json.dumps(record))

    owner("pid:[4026500000]")  # another container on this host
    assert held.stale_reason() is None
    owner(None)  # a lock an older bootstrap wrote: no namespace, so the heartbeat decides
    assert held.stale_reason() is None
    owner(os.readlink("/proc/self/ns/pid"))  # our namespace: a killed installer
    assert held.stale_reason() == f"its holder (pid {gone.pid} on this host) is gone"
