"""`rpdeploy emulator start|status|env|stop|logs|serve` as a user runs them."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from deploy.emulator import settings_from_env
from tests.conftest import envelope, json_data
from tests.emulator.helpers import FAST_ENV, ROOT, free_port

CURL_LIST = '\ncurl -s -H "Authorization: Bearer $RUNPOD_API_KEY" "$RUNPOD_API_URL/serverless"'


def rpdeploy(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "RUNPOD_API_KEY"}
    return subprocess.run(
        [sys.executable, "-m", "deploy", "emulator", *args],
        cwd=ROOT,
        env={**base, **FAST_ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_start_status_env_stop(tmp_path: Path) -> None:
    state, port = tmp_path / "state", free_port()
    started = rpdeploy("start", "--port", str(port), "--state", str(state), "--output", "json")
    try:
        assert started.returncode == 0, started.stderr
        result = json_data(started.stdout, "emulator start")
        assert result["running"] is True
        assert result["urls"] == {
            "RUNPOD_API_URL": f"http://127.0.0.1:{port}/v2",
            "RUNPOD_ENDPOINT_BASE_URL": f"http://127.0.0.1:{port}/v2",
            "RUNPOD_GRAPHQL_URL": f"http://127.0.0.1:{port}/graphql",
            "RUNPOD_API_BASE_URL": f"http://127.0.0.1:{port}",
        }
        key = (state / "api-key").read_text().strip()
        assert oct((state / "api-key").stat().st_mode & 0o777) == "0o600"

        status = rpdeploy("status", "--state", str(state))
        assert status.returncode == 0
        assert f"RUNPOD_API_URL=http://127.0.0.1:{port}/v2" in status.stdout
        assert "api-key" in status.stdout

        exported_json = json_data(rpdeploy("env", "--state", str(state), "-o", "json").stdout, "emulator env")
        assert exported_json["env"]["RUNPOD_API_URL"] == f"http://127.0.0.1:{port}/v2"
        assert exported_json["api_key_file"] == str(state / "api-key")
        exported = rpdeploy("env", "--state", str(state))
        assert exported.returncode == 0
        assert f"export RUNPOD_ENDPOINT_BASE_URL=http://127.0.0.1:{port}/v2" in exported.stdout
        assert 'export RUNPOD_API_KEY="$(cat ' in exported.stdout
        shell = subprocess.run(
            [
                "bash",
                "-c",
                exported.stdout
                + '\ncurl -s -H "Authorization: Bearer $RUNPOD_API_KEY" "$RUNPOD_API_URL/serverless"',
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(shell.stdout) == {"endpoints": []}
        # The state folder is exported too, so later commands in that shell find this emulator
        # without --state (from any directory).
        assert exported_json["env"]["RPDEPLOY_EMULATOR_STATE"] == str(state.resolve())
        found = subprocess.run(
            ["bash", "-c", exported.stdout + f"\n{shlex.quote(sys.executable)} -m deploy emulator status"],
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,  # not the checkout: its default state folder is not this one
        )
        assert found.returncode == 0, found.stdout + found.stderr
        for output in (started, status, exported):
            assert key not in output.stdout + output.stderr
        again = rpdeploy("start", "--port", str(port), "--state", str(state))
        assert again.returncode == 3
        assert "already runs" in again.stderr
    finally:
        stopped = rpdeploy("stop", "--state", str(state), "-o", "json")
    assert stopped.returncode == 0, stopped.stderr
    assert json_data(stopped.stdout, "emulator stop")["running"] is False
    assert "stopped" in rpdeploy("stop", "--state", str(state)).stdout
    after = rpdeploy("status", "--state", str(state), "--output", "json")
    assert after.returncode == 1
    assert json_data(after.stdout, "emulator status", status="failed")["running"] is False
    assert rpdeploy("env", "--state", str(state)).returncode == 3
    try:
        httpx.get(f"http://127.0.0.1:{port}/_emulator/health", timeout=1)
        raise AssertionError("the emulator still answers after stop")
    except httpx.HTTPError:
        pass


def test_non_loopback_bind_needs_allow_remote(tmp_path: Path) -> None:
    refused = rpdeploy("serve", "--host", "0.0.0.0", "--state", str(tmp_path))
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert lines[0] == "error: --host 0.0.0.0 is not a loopback address"
    assert "--allow-remote" in lines[1]
    assert "Traceback" not in refused.stderr
    as_json = rpdeploy("serve", "--host", "0.0.0.0", "--state", str(tmp_path), "-o", "json")
    assert as_json.returncode == 2
    error = envelope(as_json.stdout, "emulator serve", status="error")["error"]
    assert error["type"] == "UsageError"
    assert error["message"] == "--host 0.0.0.0 is not a loopback address"


RANGE = "error: Invalid value for '--tiny-os-disk': {} is not in the range x>=1."


@pytest.mark.parametrize(
    ("command", "args", "env", "message"),
    [
        ("serve", ["--tiny-os-disk", "0"], {}, RANGE.format(0)),
        ("start", ["--tiny-os-disk", "-4"], {}, RANGE.format(-4)),
        # A tmpfs of size 0 has no limit at all: refused, not passed on to Docker.
        (
            "serve",
            [],
            {"RPDEPLOY_EMULATOR_TMP_SIZE_MB": "0"},
            "error: RPDEPLOY_EMULATOR_TMP_SIZE_MB=0 is not a size: give 1 (MB) or more",
        ),
    ],
)
def test_a_tiny_os_disk_needs_a_size_of_one_mb_or_more(
    tmp_path: Path, command: str, args: list[str], env: dict[str, str], message: str
) -> None:
    state = tmp_path / "state"
    refused = rpdeploy(command, "--state", str(state), "--port", str(free_port()), *args, env=env)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.splitlines()[0] == message
    assert "Traceback" not in refused.stderr
    assert not (state / "emulator.pid").exists()  # nothing started


def test_the_tiny_os_disk_flag_sets_both_worker_knobs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RPDEPLOY_EMULATOR_READ_ONLY_ROOTFS", "false")
    monkeypatch.setenv("RPDEPLOY_EMULATOR_TMP_SIZE_MB", "512")
    plain = settings_from_env("127.0.0.1", 8787, tmp_path, "k", False)
    assert (plain.workers.read_only_rootfs, plain.workers.tmp_size_mb) == (False, 512)
    tiny = settings_from_env("127.0.0.1", 8787, tmp_path, "k", False, tiny_os_disk_mb=16)
    assert (tiny.workers.read_only_rootfs, tiny.workers.tmp_size_mb) == (True, 16)


def test_logs_reports_missing_logs_as_usage_errors(tmp_path: Path) -> None:
    missing = rpdeploy("logs", "ep123", "--state", str(tmp_path))
    assert missing.returncode == 2
    assert "no worker logs for endpoint ep123" in missing.stderr
    (tmp_path / "logs" / "ep123").mkdir(parents=True)
    (tmp_path / "logs" / "ep123" / "w1.log").write_text("hello from w1\n")
    shown = rpdeploy("logs", "ep123", "--worker", "w1", "--state", str(tmp_path))
    assert shown.returncode == 0
    assert "hello from w1" in shown.stdout
    assert rpdeploy("logs", "ep123", "--worker", "w2", "--state", str(tmp_path)).returncode == 2
    as_json = json_data(
        rpdeploy("logs", "ep123", "--state", str(tmp_path), "--output", "json").stdout, "emulator logs"
    )
    assert as_json["workers"] == {"w1": "hello from w1\n"}


def test_help_has_an_example() -> None:
    shown = rpdeploy("--help")
    assert shown.returncode == 0
    assert "Examples:" in shown.stdout


HOSTILE = 'open({marker!r}, "w").write("ran")\nraise SystemExit("hostile deploy module ran")\n'


@pytest.mark.parametrize("layout", ["deploy.py", "deploy/__init__.py"])
def test_start_never_runs_a_deploy_module_from_the_callers_folder(tmp_path: Path, layout: str) -> None:
    """Worker repositories often hold a deploy.py or deploy/: the server must still be rpdeploy's."""
    repo, state, port = tmp_path / "worker-repo", tmp_path / "state", free_port()
    marker = tmp_path / "hostile-ran"
    (repo / layout).parent.mkdir(parents=True, exist_ok=True)
    (repo / layout).write_text(HOSTILE.format(marker=str(marker)))
    console_script = Path(sys.executable).parent / "rpdeploy"
    env = {**{k: v for k, v in os.environ.items() if k != "RUNPOD_API_KEY"}, **FAST_ENV}
    started = subprocess.run(
        [str(console_script), "emulator", "start", "--port", str(port), "--state", str(state)],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    try:
        assert started.returncode == 0, started.stderr + (state / "emulator.log").read_text()
        assert not marker.exists()
        assert httpx.get(f"http://127.0.0.1:{port}/_emulator/health", timeout=5).status_code == 200
        private = [
            "emulator.sqlite3",
            "emulator.log",
            "emulator.pid",
            "emulator.json",
            "api-key",
            "worker-key",
        ]
        assert {name: oct((state / name).stat().st_mode & 0o777) for name in private} == dict.fromkeys(
            private, "0o600"
        )
    finally:
        rpdeploy("stop", "--state", str(state))


def test_serve_without_the_emulator_extra_names_the_extra(tmp_path: Path) -> None:
    blocked = "import sys; sys.modules['fastapi'] = None; from deploy.cli.main import main; main()"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            blocked,
            "emulator",
            "serve",
            "--state",
            str(tmp_path),
            "--port",
            str(free_port()),
        ],
        cwd=ROOT,
        env={**os.environ, **FAST_ENV},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 3, result.stderr
    assert "fastapi" in result.stderr
    assert "rpdeploy[emulator]" in result.stderr
    assert "Traceback" not in result.stderr
