"""`rpdeploy validate` at the CLI edge: exit codes 0/1/2, the JSON envelope, warnings on
stderr, JUnit and step-summary files, secrets masked. The Docker tests run the real command
against the session emulator (`--target runpod` with its URL and key in the environment: the
same path `--target local` takes after reading them from the emulator's state)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from tests.conftest import BASE_CONFIG, MakeProject, envelope, json_data
from tests.emulator.helpers import Api
from tests.validate.conftest import make_endpoint

RunCli = Callable[..., Result]
CONFIG = BASE_CONFIG.replace("project: demo", "project: vcli").replace(
    "environments:\n", "environments:\n  production:\n    endpoint:\n      workers: {max: 1}\n"
)
LENIENT = """{
  "tests": [
    {"name": "echo", "input": {"mock_return": {"sum": 6}}, "timeout": 60000,
     "expect": {"output": {"echo": {"sum": 6}}}},
    {"name": "raises-as-expected", "input": {"mock_error": "bad width"},
     "expect": {"status": "FAILED", "error": "bad width"},},
  ],
}
"""
INLINE = """
tests:
  path: cases.json
  cases:
    - name: wrong
      input: '{"mock_return": 7}'
      expect: {output: '{"echo": 6}'}
"""
TEST_FIELDS = {"name", "status", "passed", "delay_ms", "execution_ms", "latency_ms", "cold", "error"}


def no_traceback(result: Result) -> None:
    assert "Traceback" not in result.stdout + result.stderr


def test_a_bad_case_file_is_exit_2_naming_file_and_case(make_project: MakeProject, run_cli: RunCli) -> None:
    root = make_project(
        CONFIG + "tests:\n  path: cases.json\n",
        files={"cases.json": '{"tests": [{"name": "a", "input": {}, "timeout": -5}]}'},
    )
    result = run_cli("validate", "--env", "staging", cwd=root, env={"RUNPOD_API_KEY": "k"})
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines()[0] == (
        "error: cases.json: tests[0] ('a'): timeout must be a positive number of milliseconds"
        " up to 86400000 (24 h), not -5"
    )
    no_traceback(result)
    as_json = run_cli("validate", "--env", "staging", "-o", "json", cwd=root, env={"RUNPOD_API_KEY": "k"})
    assert as_json.exit_code == 2
    payload = envelope(as_json.stdout, "validate", "error")
    assert payload["error"]["message"].startswith("cases.json: tests[0] ('a'): timeout")


def test_an_unreadable_json_file_is_exit_2_with_its_position(
    make_project: MakeProject, run_cli: RunCli
) -> None:
    root = make_project(
        CONFIG + "tests:\n  path: cases.json\n", files={"cases.json": '{"tests": [\n  {"name": }\n]}'}
    )
    result = run_cli("validate", cwd=root, env={"RUNPOD_API_KEY": "k"})
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == "error: cases.json:2:12: not JSON: Expecting value"
    no_traceback(result)


@pytest.mark.parametrize(
    ("args", "config", "hint"),
    [
        (("--endpoint", "abc", "--cases", "gone.json"), None, "hint: check the path given with --cases"),
        (("--env", "staging"), "tests:\n  path: gone.json\n", "hint: check tests.path in rpdeploy.yaml"),
    ],
)
def test_a_missing_cases_file_names_where_its_path_came_from(
    run_cli: RunCli, make_project: MakeProject, args: tuple[str, ...], config: str | None, hint: str
) -> None:
    root = make_project(CONFIG + (config or ""))
    result = run_cli("validate", *args, cwd=root, env={"RUNPOD_API_KEY": "k"})
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == "error: gone.json: no such file"
    assert hint in result.stderr
    no_traceback(result)


@pytest.mark.parametrize(
    "command",
    [
        ("validate", "--endpoint", "abc", "--cases", "tests.json"),
        # release shares the option and its check: refused before any build or deploy.
        ("release", "--image", "127.0.0.1:5000/a/b@sha256:" + "1" * 64),
    ],
)
def test_a_junit_path_in_a_missing_folder_is_refused_before_any_job(
    run_cli: RunCli, tmp_path: Path, command: tuple[str, ...]
) -> None:
    (tmp_path / "tests.json").write_text('{"tests": [{"name": "a", "input": {}}]}')
    # RUNPOD_API_URL points nowhere: reaching the API would be exit 3, not this exit 2.
    env = {"RUNPOD_API_KEY": "k", "RUNPOD_API_URL": "http://127.0.0.1:9/v2"}
    result = run_cli(*command, "--junit", "nope/x.xml", cwd=tmp_path, env=env)
    assert result.exit_code == 2
    assert (
        result.stderr.splitlines()[0]
        == f"error: --junit nope/x.xml: no such directory {tmp_path.resolve()}/nope"
    )
    no_traceback(result)


def test_a_cases_file_without_cases_is_exit_2(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "tests.json").write_text('{"config": {"gpuCount": 1}}')
    result = run_cli(
        "validate", "--endpoint", "abc", "--cases", "tests.json", cwd=tmp_path, env={"RUNPOD_API_KEY": "k"}
    )
    assert result.exit_code == 2
    assert (
        result.stderr.splitlines()[:2]
        == [
            "warning: tests.json: no 'tests' key: the file defines no cases",
            "error: tests.json: no validation cases",
        ]
        or result.stderr.splitlines()[0] == "error: tests.json: no validation cases"
    )
    no_traceback(result)


def test_a_missing_key_is_exit_2_before_any_request(make_project: MakeProject, run_cli: RunCli) -> None:
    root = make_project(CONFIG + INLINE, files={"cases.json": LENIENT})
    result = run_cli("validate", cwd=root, env={"RUNPOD_API_KEY": "", "RUNPOD_API_URL": "http://127.0.0.1:9"})
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-2].startswith("error: RUNPOD_API_KEY is not set")


@pytest.fixture(scope="module")
def cli_endpoint(api: Api, sdk_image: str) -> str:
    """The endpoint the CLI finds by the config's name for --env staging (vcli-staging)."""
    return make_endpoint(api, sdk_image, "vcli-staging", {"HANDLER_MODE": "plain"})


@pytest.fixture
def platform(api: Api, tmp_path: Path) -> dict[str, str]:
    return {
        "RUNPOD_API_URL": f"{api.base}/v2",
        "RUNPOD_API_KEY": api.key,
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }


@pytest.mark.docker
def test_validate_by_name_with_junit_and_summary(
    make_project: MakeProject, run_cli: RunCli, cli_endpoint: str, platform: dict[str, str]
) -> None:
    root = make_project(CONFIG + INLINE, files={"cases.json": LENIENT})
    junit = root / "junit.xml"
    result = run_cli(
        "validate", "--env", "staging", "--junit", str(junit), "-o", "json", cwd=root, env=platform
    )
    assert result.exit_code == 1, result.stderr
    no_traceback(result)
    data = json_data(result.stdout, "validate", "failed")
    assert (data["endpoint_id"], data["endpoint_name"]) == (cli_endpoint, "vcli-staging")
    assert (data["passed"], data["failed"]) == (2, 1)
    assert [t["name"] for t in data["tests"]] == ["echo", "raises-as-expected", "wrong"]
    assert all(set(test) >= TEST_FIELDS for test in data["tests"])
    assert data["tests"][2]["error"] == "output.echo: expected 6, got 7"
    assert "p50_ms" in data
    assert "p95_ms" in data
    assert "warning: cases.json:6:" in result.stderr  # the trailing comma, file and line
    assert f"validating {cli_endpoint}: 3 case(s), 4 at once" in result.stderr
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("3", "1")
    summary = Path(platform["GITHUB_STEP_SUMMARY"]).read_text()
    assert summary.startswith("### ❌ validation FAILED: 2 passed, 1 failed on ")
    assert "- **wrong**: output.echo: expected 6, got 7" in summary


@pytest.mark.docker
def test_validate_any_endpoint_by_id_without_a_config(
    run_cli: RunCli, cli_endpoint: str, platform: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "tests.json").write_text(
        json.dumps({"tests": [{"name": "hello", "input": {"mock_return": "hi"}}]})
    )
    result = run_cli(
        "validate", "--endpoint", cli_endpoint, "--cases", "tests.json", cwd=tmp_path, env=platform
    )
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("PASS hello: COMPLETED delay ")
    assert lines[1].startswith(f"validation passed: 1 passed, 0 failed on {cli_endpoint} ")


@pytest.mark.docker
def test_a_secret_in_an_answer_is_masked(
    run_cli: RunCli, cli_endpoint: str, platform: dict[str, str], tmp_path: Path
) -> None:
    key = platform["RUNPOD_API_KEY"]
    case: dict[str, Any] = {
        "name": "leak",
        "input": {"mock_return": key},
        "expect": {"output": {"echo": "other"}},
    }
    (tmp_path / "tests.json").write_text(json.dumps({"tests": [case]}))
    result = run_cli(
        "validate", "--endpoint", cli_endpoint, "--cases", "tests.json", cwd=tmp_path, env=platform
    )
    assert result.exit_code == 1
    assert key not in result.stdout + result.stderr
    assert '  - output.echo: expected "other", got "***"' in result.stdout.splitlines()


@pytest.mark.docker
def test_no_endpoint_of_that_name_is_exit_2(
    make_project: MakeProject, run_cli: RunCli, platform: dict[str, str]
) -> None:
    root = make_project(CONFIG + INLINE, files={"cases.json": LENIENT})
    result = run_cli("validate", "--env", "production", cwd=root, env=platform)
    assert result.exit_code == 2
    assert "error: no endpoint named 'vcli-production' to validate" in result.stderr.splitlines()
    no_traceback(result)
