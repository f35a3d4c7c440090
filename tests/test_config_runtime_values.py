"""`runtime:` values and the bootstrap's endpoint.env numbers: each bad one is one config error line.

Everything under ``runtime:`` becomes an image ``ENV``, an endpoint env value, a path the build
copies or an S3 key; a value the worker would refuse at cold start (or that no process, file
system or S3 server could take) fails here, exit 2, naming the key and its line.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import Result
from pydantic import BaseModel, ValidationError

from deploy.config.patterns import NAME_MAX, PATH_MAX
from deploy.config.schema import MAX_S3_PREFIX, MAX_URL, RuntimeConfig, S3Archive
from tests.conftest import BASE_CONFIG, MakeProject

REQUIREMENTS = "  requirements: worker/requirements.txt\n"
GPU = "    pools: [ADA_24]\n"


def runtime(lines: str) -> str:
    return BASE_CONFIG.replace(REQUIREMENTS, REQUIREMENTS + lines, 1)


def endpoint_env(lines: str, text: str = BASE_CONFIG) -> str:
    return text.replace(GPU, GPU + "  env:\n" + lines, 1)


S3 = "  s3: {bucket: envs, endpoint_url: 'http://s3:8333'"

BAD = [
    ("  disk: {min_free_os_mb: -1}\n", "10: runtime.disk.min_free_os_mb: must be greater than or equal to 0"),
    (
        "  disk: {min_free_volume_mb: 1000000001}\n",
        "10: runtime.disk.min_free_volume_mb: must be less than or equal to 1000000000",
    ),
    ("  disk: {min_free_volume_mb: 1.5}\n", "10: runtime.disk.min_free_volume_mb: must be a valid integer"),
    ("  disk: {min_free_os_mb: .inf}\n", "10: runtime.disk.min_free_os_mb: must be a valid integer"),
    ("  disk: {min_free_os_mb: lots}\n", "10: runtime.disk.min_free_os_mb: must be a valid integer"),
    ("  index_url: 'not a url'\n", "10: runtime.index_url: 'not a url' is not an http(s) or file URL"),
    ("  index_url: 'http://x/" + "a" * 9000 + "'\n", "10: runtime.index_url: 'http://x/aaa"),
    ('  index_url: "http://x/\\x1b[31m"\n', "contains a newline, control or invisible character (U+001B)"),
    ("  volume_path: /" + "v" * 5000 + "\n", "is too long: a path has fewer than 4096 characters"),
    ("  volume_path: /" + "v" * 300 + "\n", "holds a name of over 255 characters: no file has one"),
    (S3 + ", region: 'us east/1'}\n", "10: runtime.s3.region: 'us east/1' is not a region name"),
    (S3 + ", region: " + "r" * 64 + "}\n", "is too long: at most 63 characters"),
    (S3 + ", prefix: " + "p/" * 477 + "}\n", "10: runtime.s3.prefix: 'p/p/p/p"),
    ("  s3: {bucket: envs, endpoint_url: 'http://s3/" + "a" * 9000 + "'}\n", "runtime.s3.endpoint_url:"),
]


@pytest.mark.parametrize(("lines", "expected"), BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_a_bad_runtime_value_is_one_line_naming_key_and_line(
    make_project: MakeProject, run_cli: Callable[..., Result], lines: str, expected: str
) -> None:
    result = run_cli("config", "validate", cwd=make_project(runtime(lines)))
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: rpdeploy.yaml:"), line
    assert expected in line, line
    assert len(line) < 400  # long values are cut, never dumped


def test_a_requirements_name_too_long_for_any_file_is_a_config_error(
    make_project: MakeProject, run_cli: Callable[..., Result]
) -> None:
    # Was an internal error (exit 70): the rules stat the file, and the OS refuses the name.
    config = BASE_CONFIG.replace(REQUIREMENTS, f"  requirements: worker/{'r' * 300}.txt\n")
    result = run_cli("config", "validate", cwd=make_project(config))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: rpdeploy.yaml:9: runtime.requirements: 'worker/rrr")
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "lines",
    [
        "  disk: {min_free_os_mb: 0, min_free_volume_mb: 1000000000}\n",
        "  index_url: file:///wheels/simple\n",
        "  index_url: /opt/wheels\n",
        "  index_url: ''\n",
        S3 + ", region: us-west-004, prefix: " + "p" * 200 + "/}\n",
        S3 + ", region: auto}\n",
    ],
)
def test_good_runtime_values_pass(
    make_project: MakeProject, run_cli: Callable[..., Result], lines: str
) -> None:
    result = run_cli("config", "validate", cwd=make_project(runtime(lines)))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "nan",
            "endpoint.env.RPDEPLOY_LOCK_WAIT_S: 'nan' is not a finite number (read by the slim bootstrap)",
        ),
        (
            "'-5'",
            "endpoint.env.RPDEPLOY_LOCK_WAIT_S: '-5' is out of range: use 0 to 604800"
            " (read by the slim bootstrap)",
        ),
        ("soon", "endpoint.env.RPDEPLOY_LOCK_WAIT_S: 'soon' is not a number (read by the slim bootstrap)"),
    ],
)
def test_a_bootstrap_number_in_endpoint_env_is_checked_as_the_bootstrap_checks_it(
    make_project: MakeProject, run_cli: Callable[..., Result], value: str, expected: str
) -> None:
    config = endpoint_env(f"    RPDEPLOY_LOCK_WAIT_S: {value}\n")
    result = run_cli("config", "validate", cwd=make_project(config))
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line == f"error: rpdeploy.yaml:18: {expected}"


def test_an_installer_in_endpoint_env_conflicts_with_runtime_installer_even_its_default(
    make_project: MakeProject, run_cli: Callable[..., Result]
) -> None:
    """runtime.installer is RPDEPLOY_INSTALLER's one source (render puts it into the endpoint
    env): another value in endpoint.env, even one the bootstrap would refuse, is that conflict."""
    result = run_cli("config", "validate", cwd=make_project(endpoint_env("    RPDEPLOY_INSTALLER: conda\n")))
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        "error: rpdeploy.yaml:18: endpoint.env.RPDEPLOY_INSTALLER: conflicts with runtime.installer"
        " (its default, 'pip'), which render puts into the endpoint env as RPDEPLOY_INSTALLER:"
        " set it in one place"
    ]


def test_a_fractional_attempt_count_and_a_percent_over_100_are_refused(
    make_project: MakeProject, run_cli: Callable[..., Result]
) -> None:
    config = endpoint_env("    RPDEPLOY_INSTALL_ATTEMPTS: '2.5'\n    RUNPOD_MIN_DISK_PERCENT: '150'\n")
    result = run_cli("config", "validate", cwd=make_project(config))
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        "error: rpdeploy.yaml:18: endpoint.env.RPDEPLOY_INSTALL_ATTEMPTS: '2.5' is not a whole number"
        " (read by the slim bootstrap)",
        "error: rpdeploy.yaml:19: endpoint.env.RUNPOD_MIN_DISK_PERCENT: '150' is out of range: use 0 to 100"
        " (read by the slim bootstrap)",
    ]


@pytest.mark.parametrize(
    "config",
    [
        # Good values, a RunPod secret (known only when RunPod fills it in), and a baked image,
        # which has no bootstrap to read them.
        endpoint_env("    RPDEPLOY_LOCK_WAIT_S: '600'\n    RPDEPLOY_INSTALL_ATTEMPTS: ' 5 '\n"),
        endpoint_env("    RPDEPLOY_LOCK_WAIT_S: '{{ RUNPOD_SECRET_wait }}'\n"),
        endpoint_env(
            "    RPDEPLOY_LOCK_WAIT_S: nan\n", BASE_CONFIG.replace("strategy: slim", "strategy: baked")
        ),
    ],
    ids=["good", "runpod-secret", "baked"],
)
def test_bootstrap_numbers_that_pass(
    make_project: MakeProject, run_cli: Callable[..., Result], config: str
) -> None:
    result = run_cli("config", "validate", cwd=make_project(config))
    assert result.exit_code == 0, result.output


def _accepted(model: type[BaseModel], **values: str) -> bool:
    try:
        model.model_validate(values)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize(
    ("model", "field", "make", "most"),
    [
        (RuntimeConfig, "volume_path", lambda n: "/" + "/".join(["v" * 200] * 30)[: n - 1], PATH_MAX - 1),
        (RuntimeConfig, "volume_path", lambda n: "/" + "v" * n, NAME_MAX),
        (RuntimeConfig, "index_url", lambda n: "http://x/" + "a" * (n - 9), MAX_URL),
        (S3Archive, "endpoint_url", lambda n: "http://x/" + "a" * (n - 9), MAX_URL),
        (S3Archive, "region", lambda n: "r" * n, 63),
        (S3Archive, "prefix", lambda n: "p" * n, MAX_S3_PREFIX),
    ],
    ids=["path", "name", "index-url", "endpoint-url", "region", "prefix"],
)
def test_each_length_bound_takes_its_limit_and_refuses_one_more(
    model: type[BaseModel], field: str, make: Callable[[int], str], most: int
) -> None:
    required = {"requirements": "r.txt"} if model is RuntimeConfig else {"bucket": "envs"}
    assert len(make(most).rsplit("/", 1)[-1] if most == NAME_MAX else make(most)) == most
    assert _accepted(model, **required, **{field: make(most)})
    assert not _accepted(model, **required, **{field: make(most + 1)})


def test_every_bootstrap_number_in_endpoint_env_is_checked_not_only_up_to_the_first_other_key(
    make_project: MakeProject, run_cli: Callable[..., Result]
) -> None:
    config = endpoint_env("    LOG_LEVEL: INFO\n    RPDEPLOY_LOCK_WAIT_S: soon\n")
    result = run_cli("config", "validate", cwd=make_project(config))
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        "error: rpdeploy.yaml:19: endpoint.env.RPDEPLOY_LOCK_WAIT_S: 'soon' is not a number"
        " (read by the slim bootstrap)"
    ]
