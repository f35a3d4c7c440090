"""The stdlib S3 client against the stack's seaweedfs (which checks signatures), and the bootstrap's
archive path: upload after an install, download on an empty work disk, failures that fall back."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import socket
import subprocess
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from deploy.runtime import envstore, s3
from deploy.runtime.failure import Failure
from deploy.runtime.settings import S3Settings, s3_settings
from tests.runtime.conftest import Run, Setup, bootstrap_lines, env_dirs, s3_env

#: Needs the stack's S3 server and package index (scripts/stack.sh): a stack test, not `make unit`.
pytestmark = pytest.mark.docker


@pytest.fixture
def settings() -> S3Settings:
    found = s3_settings({**s3_env(), "RPDEPLOY_S3_PREFIX": f"tests/{secrets.token_hex(6)}/"})
    assert found is not None
    return found


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    path = tmp_path / "payload.bin"
    path.write_bytes(os.urandom(3_000_000))
    return path


def test_upload_then_download_round_trip(settings: S3Settings, payload: Path, tmp_path: Path) -> None:
    client = s3.Client(settings)
    key = f"{settings.prefix}object.bin"
    digest = client.put_file(key, str(payload), {"unpacked-bytes": "42"})
    info = client.head(key)
    assert info is not None
    assert info.size == payload.stat().st_size
    assert info.metadata == {"sha256": digest, "unpacked-bytes": "42"}
    got = tmp_path / "got.bin"
    client.get_file(key, str(got))
    assert got.read_bytes() == payload.read_bytes()


def test_a_missing_object_is_none_on_head_and_one_line_on_get(settings: S3Settings, tmp_path: Path) -> None:
    client = s3.Client(settings)
    assert client.head(f"{settings.prefix}absent") is None
    with pytest.raises(Failure, match=r"S3 object s3://rpdeploy-envs/tests/.*absent does not exist"):
        client.get_file(f"{settings.prefix}absent", str(tmp_path / "x"))


def test_a_wrong_secret_is_refused_in_one_clear_line(
    settings: S3Settings, payload: Path, tmp_path: Path
) -> None:
    # The server checks signatures: the same key id with another secret must fail.
    client = s3.Client(replace(settings, secret_key="not-the-secret"), attempts=1)
    key = f"{settings.prefix}object.bin"
    expected = (
        r"S3 refused the credentials for (PUT|GET|HEAD) .* check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )
    with pytest.raises(Failure, match=expected):
        client.put_file(key, str(payload))
    with pytest.raises(Failure, match=expected):
        client.head(key)
    with pytest.raises(Failure, match=expected):
        client.get_file(key, str(tmp_path / "x"))


def test_an_unknown_access_key_is_refused(settings: S3Settings) -> None:
    client = s3.Client(replace(settings, access_key="AKIDUNKNOWN"), attempts=1)
    with pytest.raises(Failure, match="S3 refused the credentials"):
        client.head(f"{settings.prefix}object.bin")


def test_a_missing_bucket_is_named(settings: S3Settings, payload: Path, tmp_path: Path) -> None:
    client = s3.Client(replace(settings, bucket="rpdeploy-no-such-bucket"), attempts=1)
    expected = "S3 bucket 'rpdeploy-no-such-bucket' does not exist at http://127.0.0.1:8333"
    with pytest.raises(Failure, match=expected):
        client.head("k")
    with pytest.raises(Failure, match=expected):
        client.get_file("k", str(tmp_path / "x"))
    with pytest.raises(Failure, match=expected):
        client.put_file("k", str(payload))


def test_a_checksum_mismatch_is_refused(settings: S3Settings, payload: Path, tmp_path: Path) -> None:
    client = s3.Client(settings)
    key = f"{settings.prefix}corrupt.bin"
    client.put_file(key, str(payload), {"sha256": "0" * 64})  # metadata that lies about the bytes
    with pytest.raises(Failure, match=r"checksum mismatch .* it was not used"):
        client.get_file(key, str(tmp_path / "x"))


class CuttingProxy:
    """A TCP proxy to the S3 server that cuts the first ``cuts`` responses after ``keep`` bytes,
    as a dropped connection would (the request itself, and its signature, pass unchanged)."""

    def __init__(self, upstream: tuple[str, int], *, cuts: int, keep: int = 256 * 1024) -> None:
        self.upstream = upstream
        self.cuts = cuts
        self.keep = keep
        self.connections = 0
        self.server = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server.getsockname()[1])

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            limit = self.keep if self.connections <= self.cuts else None
            threading.Thread(target=self._relay, args=(client, limit), daemon=True).start()

    def _relay(self, client: socket.socket, limit: int | None) -> None:
        upstream = socket.create_connection(self.upstream)
        threading.Thread(target=_pipe, args=(client, upstream, None), daemon=True).start()
        _pipe(upstream, client, limit)
        client.close()
        upstream.close()

    def close(self) -> None:
        self.server.close()


def _pipe(source: socket.socket, target: socket.socket, limit: int | None) -> None:
    sent = 0
    try:
        while limit is None or sent < limit:
            data = source.recv(65536 if limit is None else min(65536, limit - sent))
            if not data:
                break
            target.sendall(data)
            sent += len(data)
    except OSError:
        pass
    if limit is not None:  # cut: RST-free close of both sides
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _through(settings: S3Settings, proxy: CuttingProxy) -> S3Settings:
    return replace(settings, endpoint_url=f"http://127.0.0.1:{proxy.port}")


def upstream_of(settings: S3Settings) -> tuple[str, int]:
    host, _, port = settings.endpoint_url.removeprefix("http://").partition(":")
    return host, int(port)


def test_an_interrupted_download_resumes_and_verifies(
    settings: S3Settings, payload: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = f"{settings.prefix}object.bin"
    s3.Client(settings).put_file(key, str(payload))
    proxy = CuttingProxy(upstream_of(settings), cuts=2)
    try:
        got = tmp_path / "got.bin"
        s3.Client(_through(settings, proxy), backoff=0.01).get_file(key, str(got))
    finally:
        proxy.close()
    assert got.read_bytes() == payload.read_bytes()
    assert proxy.connections == 3
    err = capsys.readouterr().err
    assert err.count("connection closed after") == 2, err


def test_a_download_that_keeps_breaking_fails_cleanly(
    settings: S3Settings, payload: Path, tmp_path: Path
) -> None:
    key = f"{settings.prefix}object.bin"
    s3.Client(settings).put_file(key, str(payload))
    # Each attempt gets 256 KiB more (resumed), so four attempts cannot reach 3 MB.
    proxy = CuttingProxy(upstream_of(settings), cuts=1000)
    try:
        client = s3.Client(_through(settings, proxy), attempts=4, backoff=0.01)
        with pytest.raises(
            Failure, match=r"S3 GET .* failed after 4 attempts: connection closed after \d+ of 3000000"
        ):
            client.get_file(key, str(tmp_path / "got.bin"))
    finally:
        proxy.close()
    assert proxy.connections == 4


# ---- the bootstrap's archive path


@pytest.fixture
def s3_setup(setup: Setup) -> Setup:
    setup.env.update(s3_env())
    setup.env["RPDEPLOY_S3_PREFIX"] = f"tests/{secrets.token_hex(6)}/"
    return setup


def _fresh_work(setup: Setup, name: str) -> dict[str, str]:
    work = setup.work.parent / name
    work.mkdir()
    return {"RPDEPLOY_WORK_DIR": str(work)}


def test_an_install_is_uploaded_and_the_next_empty_disk_downloads_it(s3_setup: Setup, run: Run) -> None:
    first = run("--provision-only")
    assert first.returncode == 0, first.stderr
    assert any("installing" in line for line in bootstrap_lines(first.stderr))
    assert any(
        "uploaded the environment to s3://rpdeploy-envs/tests/" in line
        for line in bootstrap_lines(first.stderr)
    )

    other = _fresh_work(s3_setup, "work-2")
    second = run("--provision-only", **other)
    assert second.returncode == 0, second.stderr
    lines = bootstrap_lines(second.stderr)
    assert any("downloading s3://rpdeploy-envs/tests/" in line for line in lines), lines
    assert not any("installing" in line for line in lines), lines
    (env_dir,) = env_dirs(Path(other["RPDEPLOY_WORK_DIR"]))
    assert (env_dir / "COMPLETE").is_file()
    assert list((env_dir / "site").glob("six-1.17.0.dist-info"))


def test_an_upload_failure_is_logged_not_fatal(s3_setup: Setup, run: Run) -> None:
    result = run("--provision-only", AWS_SECRET_ACCESS_KEY="not-the-secret")
    assert result.returncode == 0, result.stderr
    lines = bootstrap_lines(result.stderr)
    assert any(
        "S3 refused the credentials for HEAD" in line and "installing instead" in line for line in lines
    )
    assert any("warning: uploading the environment archive failed, continuing" in line for line in lines), (
        lines
    )


@pytest.mark.parametrize(
    ("bogus", "unpacked", "problem"),
    [
        # Its size and metadata look right; its bytes do not.
        (b"not a tar at all" * 20, "1000", "environment archive is damaged"),
        # The right bytes; metadata that is not the uploader's (it used to be a traceback, exit 1).
        (None, "lots", "unpacked-bytes metadata is 'lots'"),
        (None, "1.5e5", "unpacked-bytes metadata is '1.5e5'"),
    ],
    ids=["damaged", "lots", "float"],
)
def test_a_bad_archive_is_not_used_the_install_runs_and_replaces_it(
    s3_setup: Setup, run: Run, tmp_path: Path, bogus: bytes | None, unpacked: str, problem: str
) -> None:
    assert run("--provision-only").returncode == 0
    settings = s3_settings(s3_setup.env)
    assert settings is not None
    (env_dir,) = env_dirs(s3_setup.work)
    name = f"{settings.prefix}{env_dir.name}.tar.gz"
    client = s3.Client(settings)
    replaced = tmp_path / "replaced.tar.gz"
    if bogus is None:
        client.get_file(name, str(replaced))
    else:
        replaced.write_bytes(bogus)
    client.put_file(name, str(replaced), {"unpacked-bytes": unpacked})
    result = run("--provision-only", **_fresh_work(s3_setup, "work-3"))
    assert result.returncode == 0, result.stderr
    lines = bootstrap_lines(result.stderr)
    assert any(problem in line and "installing instead" in line for line in lines), lines
    assert any("uploaded the environment" in line for line in lines), lines
    info = client.head(name)
    assert info is not None
    assert info.metadata["unpacked-bytes"].isdigit()


# ---- --build-archive (`rpdeploy env build` runs it inside the base image)


def _result(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def test_build_archive_push_uploads_once_and_a_cold_start_downloads_it(
    s3_setup: Setup, run: Run, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    built = _result(run("--build-archive", str(out), "--push"))
    settings = s3_settings(s3_setup.env)
    assert settings is not None
    archive_path = out / f"{built['key']}.tar.gz"
    assert built["archive"] == str(archive_path)
    assert built["size"] == archive_path.stat().st_size
    assert built["sha256"] == hashlib.sha256(archive_path.read_bytes()).hexdigest()
    assert built["s3_url"] == f"s3://rpdeploy-envs/{settings.prefix}{built['key']}.tar.gz"
    assert (built["uploaded"], built["existed"]) == (True, False)
    info = s3.Client(settings).head(f"{settings.prefix}{built['key']}.tar.gz")
    assert info is not None
    assert info.metadata["sha256"] == built["sha256"]
    assert int(info.metadata["unpacked-bytes"]) == built["unpacked_bytes"] > 0

    # The second run finds it (one HEAD) and builds nothing.
    again = run("--build-archive", str(tmp_path / "out-2"), "--push", **_fresh_work(s3_setup, "work-b"))
    second = _result(again)
    assert (second["existed"], second["uploaded"], second["archive"]) == (True, False, None)
    assert (second["key"], second["sha256"], second["size"]) == (built["key"], built["sha256"], built["size"])
    assert not any("installing" in line for line in bootstrap_lines(again.stderr))

    # A cold start computes the same key and downloads instead of installing.
    other = _fresh_work(s3_setup, "work-c")
    cold = run("--provision-only", **other)
    assert cold.returncode == 0, cold.stderr
    lines = bootstrap_lines(cold.stderr)
    assert any("downloading s3://rpdeploy-envs/tests/" in line for line in lines), lines
    assert not any("installing" in line for line in lines), lines
    assert cold.stdout.strip().endswith(f"/envs/{built['key']}")


def test_build_archive_push_replaces_an_object_that_is_not_an_archive(
    s3_setup: Setup, run: Run, tmp_path: Path
) -> None:
    settings = s3_settings(s3_setup.env)
    assert settings is not None
    key = envstore.env_key(s3_setup.requirements.read_bytes())
    name = f"{settings.prefix}{key}.tar.gz"
    junk = tmp_path / "junk"
    junk.write_bytes(b"14 bytes junk!")
    s3.Client(settings).put_file(name, str(junk), {"unpacked-bytes": "lots"})
    done = run("--build-archive", str(tmp_path / "out"), "--push")
    built = _result(done)
    assert (built["existed"], built["uploaded"]) == (False, True)
    assert any("is not usable" in line for line in bootstrap_lines(done.stderr))
    info = s3.Client(settings).head(name)
    assert info is not None
    assert info.metadata["sha256"] == built["sha256"]

    # A good archive is kept, unless --force.
    kept = _result(run("--build-archive", str(tmp_path / "out-2"), "--push", **_fresh_work(s3_setup, "w-k")))
    assert (kept["existed"], kept["uploaded"]) == (True, False)
    forced = _result(
        run("--build-archive", str(tmp_path / "out-3"), "--push", "--force", **_fresh_work(s3_setup, "w-f"))
    )
    assert (forced["existed"], forced["uploaded"]) == (False, True)


def test_build_archive_without_push_needs_no_s3(setup: Setup, run: Run, tmp_path: Path) -> None:
    built = _result(run("--build-archive", str(tmp_path / "out")))
    assert (built["uploaded"], built["s3_url"]) == (False, None)
    assert Path(built["archive"]).is_file()
    assert built["key"] == envstore.env_key(setup.requirements.read_bytes())


def test_build_archive_push_with_a_wrong_secret_is_one_line_and_exit_69(s3_setup: Setup, run: Run) -> None:
    done = run("--build-archive", str(s3_setup.work / "out"), "--push", AWS_SECRET_ACCESS_KEY="not-it")
    assert done.returncode == 69, done.stderr
    (line,) = bootstrap_lines(done.stderr)[-1:]
    assert "S3 refused the credentials for HEAD" in line
    assert "not-it" not in done.stderr
    assert done.stdout == ""


def test_build_archive_push_without_s3_settings_is_one_line(setup: Setup, run: Run) -> None:
    done = run("--build-archive", str(setup.work / "out"), "--push")
    assert done.returncode == 1
    assert bootstrap_lines(done.stderr) == [
        "rpdeploy-bootstrap: --push needs RPDEPLOY_S3_BUCKET, AWS_ENDPOINT_URL (or RPDEPLOY_S3_ENDPOINT),"
        " AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    ]
