"""Pure parts of the bootstrap: the handler command's shapes, archive safety, the key, settings."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import platform
import re
import socket
import subprocess
import sys
import sysconfig
import tarfile
import time
from pathlib import Path

import pytest

from deploy.config.schema import DiskThresholds
from deploy.runtime import archive, bootstrap, bytecode, envstore, install, lock, settings, start, workdisk
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


def _compiled_env(env: Path) -> Path:
    """A sealed environment at ``env`` whose site's bytecode was compiled where it stands."""
    (env / "site" / "pkg").mkdir(parents=True)
    (env / "site" / "pkg" / "__init__.py").write_text("x = 1\n")
    bytecode.compile_tree(str(env / "bytecode"), str(env / "site"), dict(os.environ), stdlib=False)
    envstore.seal(str(env), "k")
    return bytecode_file(env, env / "site" / "pkg" / "__init__.py")


def bytecode_file(env: Path, source: Path) -> Path:
    """Where ``source``'s pyc is in <env>/bytecode when it was compiled in place."""
    return pyc_in(env / "bytecode", source)


def pyc_in(prefix: Path, source: Path) -> Path:
    """Where Python looks for ``source``'s pyc with PYTHONPYCACHEPREFIX=``prefix``."""
    return prefix / str(source.parent).lstrip("/") / f"{source.stem}.{sys.implementation.cache_tag}.pyc"


def _python(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, check=True)


def test_the_view_serves_an_archives_bytecode_wherever_it_was_built(tmp_path: Path) -> None:
    # Compiled in one place (another machine's work disk), published in another: Python looks a
    # pyc up by its source's absolute path, and the per-container view names the site's mirror
    # after where the site is now.
    built = tmp_path / "builder" / "envs" / "k"
    assert _compiled_env(built).is_file()
    packed = tmp_path / "env.tar.gz"
    archive.pack(str(built), str(packed))
    final = tmp_path / "worker" / "envs" / "k"
    final.mkdir(parents=True)
    archive.unpack(str(packed), str(final))
    assert envstore.check(str(final)) is None
    assert envstore.compiled_for(str(final)) == str(built / "site")
    views = tmp_path / "container-tmp"
    views.mkdir()
    tree = envstore.bytecode_of(str(final))
    view = bytecode.view(tree, str(built / "site"), str(final / "site"), str(views))
    linked = Path(view) / str(final / "site").lstrip("/")
    assert linked.is_symlink()
    assert os.readlink(linked) == str(final / "bytecode" / str(built / "site").lstrip("/"))
    env = {"PYTHONPATH": str(final / "site"), "PYTHONPYCACHEPREFIX": view, "PYTHONDONTWRITEBYTECODE": "1",
           "PATH": os.defpath}  # fmt: skip
    shown = _python(env, "-v", "-c", "import pkg; print(pkg.__cached__)")
    cached = pyc_in(Path(view), final / "site" / "pkg" / "__init__.py")
    assert shown.stdout.strip() == str(cached)
    assert f"code object from '{cached}'" in shown.stderr  # read, not compiled


def test_nothing_but_the_site_and_stdlib_reaches_the_shared_tree(tmp_path: Path) -> None:
    # A handler that writes bytecode for its own modules (compileall, py_compile, pip) writes into
    # its container's view, never into the environment other workers and later images read.
    env_dir = tmp_path / "envs" / "k"
    _compiled_env(env_dir)
    app = tmp_path / "app"
    app.mkdir()
    (app / "helper.py").write_text("X = 'v1'\n")
    os.utime(app / "helper.py", (0, 0))  # as `rpdeploy build` normalises mtimes
    before = sorted(str(p) for p in (env_dir / "bytecode").rglob("*"))
    views = tmp_path / "views"
    views.mkdir()

    def run_app(writes: bool) -> str:
        site = str(env_dir / "site")
        view = bytecode.view(envstore.bytecode_of(str(env_dir)), site, site, str(views))
        env = {"PYTHONPYCACHEPREFIX": view, "PYTHONDONTWRITEBYTECODE": "1", "PATH": os.defpath,
               "PYTHONPATH": f"{site}:{app}"}  # fmt: skip
        if writes:
            _python(env, "-m", "compileall", "-q", str(app))
        return _python(env, "-c", "import helper; print(helper.X)").stdout.strip()

    assert run_app(writes=True) == "v1"
    (app / "helper.py").write_text("X = 'v2'\n")  # same size, same mtime: only a fresh view tells
    os.utime(app / "helper.py", (0, 0))
    assert run_app(writes=False) == "v2"
    assert sorted(str(p) for p in (env_dir / "bytecode").rglob("*")) == before


def test_a_site_below_the_stdlib_folder_gets_no_link_inside_another(tmp_path: Path) -> None:
    # Making the site link's parents inside the stdlib link would write into the shared tree.
    stdlib = bytecode.stdlib_dirs()[0]
    tree = tmp_path / "tree"
    (tree / stdlib.lstrip("/")).mkdir(parents=True)
    (tree / "compiled" / "site").mkdir(parents=True)
    view = Path(bytecode.view(str(tree), "/compiled/site", f"{stdlib}/nested/site", str(tmp_path)))
    assert (view / stdlib.lstrip("/")).is_symlink()
    assert not (tree / stdlib.lstrip("/") / "nested").exists()


def test_a_disk_error_while_compiling_is_one_line_naming_the_disk_never_a_warning(tmp_path: Path) -> None:
    # A file where the bytecode tree's folder must go: compileall fails with ENOTDIR on every
    # write. That is the disk's fault (exit 73, nothing published), not the sources'.
    (tmp_path / "site" / "pkg").mkdir(parents=True)
    (tmp_path / "site" / "pkg" / "__init__.py").write_text("x = 1\n")
    (tmp_path / "blocked").write_text("a file")
    with pytest.raises(Failure) as caught:
        bytecode.compile_tree(str(tmp_path / "blocked" / "tree"), str(tmp_path / "site"), dict(os.environ),
                              stdlib=False)  # fmt: skip
    assert caught.value.code == 73
    assert "(ENOTDIR)" in caught.value.message
    assert "while compiling the environment's bytecode" in caught.value.message


def test_the_stdlib_compile_leaves_out_tests_and_third_party_folders_below_it() -> None:
    pattern = re.compile(bytecode._skip_pattern(["/usr/lib/python3.11"]))
    for skipped in ("test/test_os.py", "lib2to3/tests/data/bom.py", "idlelib/idle_test/x.py",
                    "site-packages/pkg/__init__.py", "dist-packages/a.py"):  # fmt: skip
        assert pattern.search(f"/usr/lib/python3.11/{skipped}"), skipped
    for kept in ("os.py", "unittest/case.py", "json/decoder.py", "testing.py", "email/test_x.py"):
        assert not pattern.search(f"/usr/lib/python3.11/{kept}"), kept
    # Only below the stdlib folder: a stdlib that itself lives under a "test" folder is compiled.
    assert not re.search(bytecode._skip_pattern(["/home/test/py/lib"]), "/home/test/py/lib/os.py")


def test_missing_or_misplaced_bytecode_makes_an_environment_unusable(tmp_path: Path) -> None:
    env = tmp_path / "env"
    pyc = _compiled_env(env)
    assert envstore.check(str(env)) is None
    pyc.unlink()
    assert envstore.check(str(env), files=False) is None  # the quick check trusts the marker
    assert envstore.check(str(env)) == f"pkg/{pyc.name} is missing"
    manifest = json.loads((env / "manifest.json").read_text())
    for bad in ("../../etc", "relative/site", "/a/../b", "/a//b", None):
        manifest["bytecode_site"] = bad
        data = json.dumps(manifest).encode()
        (env / "manifest.json").write_bytes(data)
        (env / "COMPLETE").write_text(hashlib.sha256(data).hexdigest())
        assert envstore.check(str(env), files=False) == "its manifest is unreadable", bad


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


def test_the_interpreter_tag_names_implementation_version_abi_platform_and_libc() -> None:
    # docs/runtime.md, "Environment key": an image with another interpreter never reuses an environment.
    tag = envstore.interpreter_tag()
    libc, libc_version = platform.libc_ver()
    parts = (
        sys.implementation.name,
        platform.python_version(),
        sysconfig.get_config_var("SOABI"),
        sysconfig.get_platform(),
        f"{libc}-{libc_version}",
    )
    assert tag == "-".join(parts)
    assert envstore.env_key(b"six==1.17.0\n") == envstore.env_key(b"six==1.17.0\n", tag)
    assert len(envstore.env_key(b"")) == 32  # the first 128 bits of the sha256, in hex


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RPDEPLOY_INSTALLER": "conda"}, "RPDEPLOY_INSTALLER='conda': use pip or uv"),
        ({"RPDEPLOY_MIN_FREE_VOLUME_MB": "lots"}, "RPDEPLOY_MIN_FREE_VOLUME_MB='lots' is not a number"),
        ({"RPDEPLOY_LOCK_STALE_S": "-1"}, "RPDEPLOY_LOCK_STALE_S='-1' is out of range: use 1 to 604800"),
        # float() reads these; each used to end in a traceback or a silent forever.
        ({"RPDEPLOY_INSTALL_ATTEMPTS": "inf"}, "RPDEPLOY_INSTALL_ATTEMPTS='inf' is not a finite number"),
        ({"RPDEPLOY_INSTALL_ATTEMPTS": "1e400"}, "RPDEPLOY_INSTALL_ATTEMPTS='1e400' is not a finite number"),
        ({"RPDEPLOY_INSTALL_ATTEMPTS": "2.5"}, "RPDEPLOY_INSTALL_ATTEMPTS='2.5' is not a whole number"),
        ({"RPDEPLOY_INSTALL_ATTEMPTS": "0"}, "RPDEPLOY_INSTALL_ATTEMPTS='0' is out of range: use 1 to 100"),
        ({"RPDEPLOY_MIN_FREE_VOLUME_MB": "nan"}, "RPDEPLOY_MIN_FREE_VOLUME_MB='nan' is not a finite number"),
        ({"RPDEPLOY_MIN_FREE_OS_MB": "-inf"}, "RPDEPLOY_MIN_FREE_OS_MB='-inf' is not a finite number"),
        ({"RPDEPLOY_LOCK_WAIT_S": "nan"}, "RPDEPLOY_LOCK_WAIT_S='nan' is not a finite number"),
        ({"RPDEPLOY_LOCK_WAIT_S": "1e9"}, "RPDEPLOY_LOCK_WAIT_S='1e9' is out of range: use 0 to 604800"),
        ({"RUNPOD_MIN_DISK_PERCENT": "150"}, "RUNPOD_MIN_DISK_PERCENT='150' is out of range: use 0 to 100"),
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


def test_the_defaults_are_the_documented_ones() -> None:
    # docs/runtime.md, "Settings": the Default column, and the config's runtime.disk defaults.
    found = settings.load({})
    mb = 1024 * 1024
    assert (found.volume_path, found.work_dir, found.requirements) == (
        "/runpod-volume",
        None,
        "/opt/rpdeploy/requirements.txt",
    )
    assert (found.installer, found.index_url, found.s3) == ("pip", None, None)
    assert (found.min_free_volume, found.min_free_os) == (2048 * mb, 512 * mb)
    assert (found.min_os_percent, found.install_attempts, found.verify_files) == (10.0, 3, False)
    assert (found.lock_stale_s, found.lock_wait_s) == (60.0, 1800.0)
    assert (found.skip_os_check, found.allow_os_disk) == (False, False)
    disk = DiskThresholds()
    assert (disk.min_free_volume_mb, disk.min_free_os_mb) == (2048, 512)


def test_the_index_is_rpdeploy_index_url_then_pip_index_url_then_pips_default() -> None:
    both = {"RPDEPLOY_INDEX_URL": "http://a/simple/", "PIP_INDEX_URL": "http://b/simple/"}
    assert settings.load(both).index_url == "http://a/simple/"
    assert settings.load({**both, "RPDEPLOY_INDEX_URL": " "}).index_url == "http://b/simple/"
    assert settings.load({}).index_url is None


def test_the_s3_region_comes_from_aws_region_then_aws_default_region_then_ours() -> None:
    full = {"RPDEPLOY_S3_BUCKET": "b", "AWS_ENDPOINT_URL": "http://s3", "AWS_ACCESS_KEY_ID": "k"}
    full["AWS_SECRET_ACCESS_KEY"] = "s"
    regions = {"AWS_REGION": "r1", "AWS_DEFAULT_REGION": "r2", "RPDEPLOY_S3_REGION": "r3"}
    for name, expected in (("AWS_REGION", "r1"), ("AWS_DEFAULT_REGION", "r2"), ("RPDEPLOY_S3_REGION", "r3")):
        found = settings.s3_settings({**full, **regions})
        assert found is not None
        assert found.region == expected
        del regions[name]
    found = settings.s3_settings(full)
    assert found is not None
    assert found.region == "us-east-1"


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


@pytest.mark.parametrize(
    ("size", "metadata", "problem"),
    [
        (5000, {"sha256": "a" * 64, "unpacked-bytes": "lots"}, "unpacked-bytes metadata is 'lots'"),
        (5000, {"sha256": "a" * 64, "unpacked-bytes": "1.5e5"}, "unpacked-bytes metadata is '1.5e5'"),
        (5000, {"sha256": "a" * 64, "unpacked-bytes": "-3"}, "unpacked-bytes metadata is '-3'"),
        (5000, {"sha256": "a" * 64, "unpacked-bytes": "0"}, "unpacked-bytes metadata is '0'"),
        (5000, {"sha256": "a" * 64}, "unpacked-bytes metadata is None"),
        (5000, {"unpacked-bytes": "9000"}, "sha256 metadata is None"),
        (5000, {"sha256": "xyz", "unpacked-bytes": "9000"}, "sha256 metadata is 'xyz'"),
        (14, {"sha256": "a" * 64, "unpacked-bytes": "9000"}, "it is 14 bytes"),
    ],
)
def test_archive_metadata_that_cannot_be_trusted_is_named(
    size: int, metadata: dict[str, str], problem: str
) -> None:
    found = archive.metadata_problem(size, metadata)
    assert found is not None
    assert problem in found


def test_archive_metadata_as_the_uploader_writes_it_is_trusted() -> None:
    assert (
        archive.metadata_problem(5000, {"sha256": "0123456789abcdef" * 4, "unpacked-bytes": "9000"}) is None
    )


@pytest.mark.parametrize(
    ("number", "name", "code", "advice"),
    [
        (errno.EROFS, "EROFS", 73, "read-only"),
        (errno.EDQUOT, "EDQUOT", 28, "quota"),
        (errno.EACCES, "EACCES", 73, "a user that may write there"),
        (errno.EPERM, "EPERM", 73, "a user that may write there"),
        (errno.ENOTDIR, "ENOTDIR", 73, "remove it"),
        (errno.EIO, "EIO", 74, "check that disk"),
    ],
)
def test_filesystem_errors_are_one_line_with_a_documented_status(
    number: int, name: str, code: int, advice: str
) -> None:
    # The wording, for every errno; test_runtime_base_image.py makes them happen in a container.
    message, status = bootstrap.disk_error(
        OSError(number, os.strerror(number), "/root/.cache"), "/root/.cache"
    )
    assert status == code
    assert message.startswith(f"cannot use /root/.cache: {os.strerror(number)} ({name}); ")
    assert advice in message


def test_a_read_only_path_on_the_work_disk_says_the_disk_is_read_only() -> None:
    # No variable fixes a work disk mounted read-only; a read-only model cache elsewhere is one.
    on_disk, status = bootstrap.disk_error(OSError(errno.EROFS, "Read-only file system"), "/v/rpdeploy", "/v")
    assert status == 73
    assert on_disk.endswith(
        "; the work disk /v is mounted read-only: mount it read-write (the network"
        " volume, or the disk at RPDEPLOY_WORK_DIR)"
    )
    elsewhere, _ = bootstrap.disk_error(OSError(errno.EROFS, "Read-only file system"), "/vx/cache", "/v")
    assert "point the variable naming it" in elsewhere


@pytest.mark.parametrize(
    ("tail", "number"),
    [
        (
            ["ERROR: Could not install packages due to an OSError: [Errno 122] Disk quota exceeded: '/v/x'"],
            122,
        ),
        (["error: Failed to write to `/v/x`", "  Caused by: Disk quota exceeded (os error 122)"], 122),
        (["OSError: [Errno 30] Read-only file system: '/root/.cache'"], 30),
        (["OSError: [Errno 5] Input/output error"], 5),
        # Not the filesystem's: the installer's own story (network errors are retried).
        (["  NewConnectionError: [Errno 111] Connection refused"], None),
        (["ERROR: No matching distribution found for torch==9.9"], None),
    ],
)
def test_installer_output_naming_a_filesystem_errno_is_found(tail: list[str], number: int | None) -> None:
    assert workdisk.filesystem_errno(tail) == number


@pytest.mark.parametrize(("value", "skips"), [("true", True), ("TRUE", True), ("1", False), ("yes", False)])
def test_the_os_check_is_skipped_exactly_when_the_sdk_skips_its_own(value: str, skips: bool) -> None:
    # runpod 1.12.0 (serverless/modules/rp_fitness.py) skips only for "true", in any case.
    assert settings.load({"RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": value}).skip_os_check is skips


def test_a_disk_that_fills_while_tar_unpacks_is_exit_28_naming_it(tmp_path: Path) -> None:
    # GNU tar's own words (tar 1.34); filling a real disk needs a mount root cannot make here.
    stderr = (
        "/usr/bin/tar: site/x.so: Cannot write: No space left on device\n"
        "/usr/bin/tar: Exiting with failure status due to previous errors\n"
    )
    failure = archive.tar_failure(stderr, 2, str(tmp_path))
    assert failure.code == 28
    assert failure.message.startswith("no space left on ")
    assert failure.message.endswith("while unpacking the environment archive")


def test_a_damaged_archive_shows_tars_first_error_not_its_last_line(tmp_path: Path) -> None:
    bad = tmp_path / "cut.tar.gz"
    good = tmp_path / "good.tar.gz"
    env = tmp_path / "env"
    (env / "site").mkdir(parents=True)
    (env / "site" / "big.bin").write_bytes(os.urandom(200_000))
    archive.pack(str(env), str(good))
    bad.write_bytes(good.read_bytes()[:-5000])
    command = ["tar", "-xzf", str(bad), "-C", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    failure = archive.tar_failure(done.stderr, done.returncode, str(tmp_path))
    assert failure.code == 1
    assert "Exiting with failure status" not in failure.message
    assert failure.message.startswith("environment archive is damaged (")


def test_a_lock_whose_heartbeat_is_in_the_future_is_stale_once_it_stops_moving(tmp_path: Path) -> None:
    # Clock skew on a network filesystem: the dead holder's last heartbeat is an hour ahead of us.
    held = lock.Lock(str(tmp_path / "k.lock"), stale_s=0.2)
    assert held.try_acquire()
    held._stop.set()  # the holder dies: its heartbeat stops (the folder stays)
    assert held._beat is not None
    held._beat.join()
    ahead = time.time() + 3600
    os.utime(tmp_path / "k.lock" / lock.OWNER, (ahead, ahead))
    waiter = lock.Lock(str(tmp_path / "k.lock"), stale_s=0.2)
    assert waiter.stale_reason() is None  # first sight: it may still move
    time.sleep(0.3)
    reason = waiter.stale_reason()
    assert reason is not None
    assert "has not moved for" in reason


def test_the_uv_the_bootstrap_installs_is_pinned_to_the_one_the_stack_serves() -> None:
    # An unpinned uv would differ between workers started a day apart on one volume.

    stack = (Path(__file__).resolve().parents[2] / "scripts" / "stack.sh").read_text()
    assert f"UV_PIN={install.UV_REQUIREMENT}\n" in stack
