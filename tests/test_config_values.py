"""What loading keeps: values exactly as typed, merge keys, `x-` anchors, interpolation, masking."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from deploy.config import load_config
from deploy.config.view import resolved_view
from deploy.errors import ConfigError
from deploy.render import render_project
from tests.conftest import BASE_CONFIG, MakeProject

IMAGE = "127.0.0.1:5000/acme/demo-worker:sha-0123456789ab"
ENV = "  type: QUEUE"


def edit(old: str, new: str, text: str = BASE_CONFIG) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def spec_env(root: Path, environ: dict[str, str] | None = None, env: str | None = None) -> dict[str, str]:
    files = render_project(load_config(root / "rpdeploy.yaml", env, environ or {}), IMAGE).files
    spec = json.loads(next(v for k, v in files.items() if k.endswith("endpoint.create.json")))
    result: dict[str, str] = spec["env"]
    return result


# --- plain scalars arrive exactly as typed ----------------------------------------------

#: Plain scalars that YAML 1.1 (PyYAML's default) would silently turn into something else.
AS_TYPED = [
    "3.10",  # float 3.1
    "12:30",  # sexagesimal 750
    "yes",  # True
    "no",
    "on",
    "off",
    "OFF",
    "y",
    "True",
    "0o17",
    "017",  # octal 15
    "0x1F",
    "1_000",  # 1000
    "1e3",
    ".inf",
    "-.inf",
    ".nan",
    "2024-01-01",  # a date
    "2001-12-14t21:59:43.10-05:00",
    "+12",
    "007",
    "1.0",
]


def test_env_values_arrive_exactly_as_typed(make_project: MakeProject) -> None:
    entries = "".join(f"    V{i}: {text}\n" for i, text in enumerate(AS_TYPED))
    root = make_project(edit(ENV, f"{ENV}\n  env:\n{entries.rstrip()}"))
    expected = {f"V{i}": text for i, text in enumerate(AS_TYPED)}
    loaded = load_config(root / "rpdeploy.yaml", environ={})
    assert dict(loaded.config.endpoint.env) == expected
    shown = resolved_view(loaded)["endpoint"]["env"]
    assert {k: v for k, v in shown.items() if k.startswith("V")} == expected
    env = spec_env(root)
    assert {k: env[k] for k in expected} == expected


@pytest.mark.parametrize("text", ["3.10", "2024-01-01", "12:30", "017", "yes"])
def test_other_string_fields_keep_the_text(make_project: MakeProject, text: str) -> None:
    config = edit(ENV, f"{ENV}\n  name: {text}")
    config = edit("  path: worker\n", f"  path: worker\n  command: python3 -u x.py {text}\n", config)
    root = make_project(config)
    loaded = load_config(root / "rpdeploy.yaml", environ={})
    assert loaded.config.endpoint.name == text
    assert loaded.config.handler.command == f"python3 -u x.py {text}"


def test_numbers_and_booleans_still_read_where_the_schema_wants_them(make_project: MakeProject) -> None:
    config = edit("{min: 0, max: 2,", "{min: 1, max: 0x2,")  # hex is not a number here
    with pytest.raises(ConfigError, match=r"endpoint\.workers\.max: must be a valid integer"):
        load_config(make_project(config, name="hex") / "rpdeploy.yaml", environ={})
    config = edit("queueDelay: 4}", "queueDelay: 4.5}")
    config = edit("strategy: slim", "strategy: slim\n  latest: yes\n  max_compressed_mb: 1_000", config)
    loaded = load_config(make_project(config) / "rpdeploy.yaml", environ={})
    assert loaded.config.endpoint.scaling.queue_delay == 4.5
    assert loaded.config.image.latest is True
    assert loaded.config.image.max_compressed_mb == 1000
    view = resolved_view(loaded)
    assert view["endpoint"]["workers"] == {"min": 0, "max": 2, "idleTimeout": 5}
    assert view["version"] == 1


def test_flashboot_off_is_the_word_off(make_project: MakeProject) -> None:
    root = make_project(edit(ENV, f"{ENV}\n  flashboot: OFF"))
    assert load_config(root / "rpdeploy.yaml", environ={}).config.endpoint.flashboot == "OFF"


def test_env_values_may_span_lines(make_project: MakeProject) -> None:
    root = make_project(edit(ENV, f"{ENV}\n  env:\n    PEM: |\n      line one\n      line\ttwo"))
    assert spec_env(root)["PEM"] == "line one\nline\ttwo\n"


def test_json_style_surrogate_pairs_are_one_character(make_project: MakeProject) -> None:
    root = make_project(edit(ENV, f'{ENV}\n  env:\n    EMOJI: "\\ud83d\\ude00"'))
    assert spec_env(root)["EMOJI"] == "\U0001f600"


def test_explicit_str_tag_keeps_text(make_project: MakeProject) -> None:
    root = make_project(edit(ENV, f"{ENV}\n  env:\n    V: !!str 3.10"))
    assert spec_env(root)["V"] == "3.10"


# --- anchors, aliases, merge keys and x- extension keys ---------------------------------


def test_merge_key_shares_settings_between_environments(make_project: MakeProject) -> None:
    config = BASE_CONFIG.replace("environments:\n  staging:\n    endpoint:\n      workers: {max: 1}\n", "")
    config += (
        "x-small: &small {endpoint: {workers: {max: 1}, env: {SIZE: small}}}\n"
        "environments:\n"
        "  staging: {<<: *small}\n"
        "  production:\n"
        "    <<: *small\n"
        "    endpoint: {name: demo-prod, workers: {max: 5}}\n"
    )
    root = make_project(config)
    staging = load_config(root / "rpdeploy.yaml", "staging", environ={}).config
    assert staging.endpoint.workers.max == 1
    assert staging.endpoint.env == {"SIZE": "small"}
    production = load_config(root / "rpdeploy.yaml", "production", environ={}).config
    assert production.endpoint.workers.max == 5  # the key written in the mapping wins over the merge
    assert production.endpoint.name == "demo-prod"


def test_merge_key_list_earlier_source_wins(make_project: MakeProject) -> None:
    config = edit(
        "  workers: {min: 0, max: 2, idleTimeout: 5}",
        "  workers: {<<: [*first, *second], min: 0}",
        "x-a: &first {max: 2}\nx-b: &second {max: 9, idleTimeout: 7}\n" + BASE_CONFIG,
    )
    workers = load_config(make_project(config) / "rpdeploy.yaml", environ={}).config.endpoint.workers
    assert (workers.min, workers.max, workers.idle_timeout) == (0, 2, 7)


def test_aliases_share_one_value(make_project: MakeProject) -> None:
    config = edit("pools: [ADA_24]", "pools: &pools [ADA_24, AMPERE_16]", BASE_CONFIG)
    config += "  production:\n    endpoint:\n      name: demo-prod\n      gpu: {pools: *pools, count: 2}\n"
    loaded = load_config(make_project(config) / "rpdeploy.yaml", "production", environ={})
    assert loaded.config.endpoint.gpu is not None
    assert loaded.config.endpoint.gpu.pools == ["ADA_24", "AMPERE_16"]


def test_error_inside_a_merged_block_points_at_the_merge(make_project: MakeProject) -> None:
    config = BASE_CONFIG.replace("      workers: {max: 1}\n", "      <<: *bad\n")
    config = "x-bad: &bad {workers: {max: -1}}\n" + config
    with pytest.raises(ConfigError) as caught:
        load_config(make_project(config) / "rpdeploy.yaml", "staging", environ={})
    assert caught.value.problems == [
        "rpdeploy.yaml:26: environments.staging.endpoint.workers.max: "
        "must be greater than or equal to 0 (got '-1')"
    ]


def test_x_keys_only_at_the_top_level(make_project: MakeProject) -> None:
    root = make_project("x-anything: {whatever: [1, 2]}\n" + BASE_CONFIG)
    assert load_config(root / "rpdeploy.yaml", environ={}).config.project == "demo"
    nested = make_project(edit(ENV, f"{ENV}\n  x-note: hi"), name="nested")
    with pytest.raises(ConfigError, match=r"rpdeploy.yaml:15: endpoint.x-note: unknown key"):
        load_config(nested / "rpdeploy.yaml", environ={})


# --- interpolation success paths --------------------------------------------------------

INTERPOLATION = [
    ("$$", {}, "$"),
    ("$${NOT_A_VAR}", {}, "${NOT_A_VAR}"),
    ("a$$$$b", {}, "a$$b"),
    ("${SET}", {"SET": "value"}, "value"),
    ("pre-${SET}-post", {"SET": "v"}, "pre-v-post"),
    ("${SET:-fallback}", {"SET": "v"}, "v"),
    ("${UNSET:-fallback}", {}, "fallback"),
    ("${EMPTY:-fallback}", {"EMPTY": ""}, "fallback"),
    ("${EMPTY}", {"EMPTY": ""}, ""),
    ("${UNSET:-}", {}, ""),
    ("${UNSET:-${OTHER}}", {"OTHER": "o"}, "o"),
    ("${SET:-${OTHER}}", {"SET": "s"}, "s"),  # the default is not read when not needed
    ("${A:-${B:-${C:-deep}}}", {}, "deep"),
    ("${A:-x$$y}", {}, "x$y"),
    ("$HOME stays", {"HOME": "/root"}, "$HOME stays"),
    ("cost: 5$", {}, "cost: 5$"),
    ("${SET}${SET}", {"SET": "ab"}, "abab"),
]


@pytest.mark.parametrize(("text", "environ", "expected"), INTERPOLATION)
def test_interpolation(make_project: MakeProject, text: str, environ: dict[str, str], expected: str) -> None:
    root = make_project(edit(ENV, f"{ENV}\n  env:\n    VALUE: {json.dumps(text)}"))
    assert load_config(root / "rpdeploy.yaml", environ=environ).config.endpoint.env["VALUE"] == expected


def test_interpolation_reaches_every_section(make_project: MakeProject) -> None:
    config = edit("acme/demo-worker", "acme/${REPO_NAME}")
    config = edit("{min: 0, max: 2,", '{min: 0, max: "${MAX_WORKERS:-2}",', config)
    loaded = load_config(
        make_project(config) / "rpdeploy.yaml", environ={"REPO_NAME": "other", "MAX_WORKERS": "7"}
    )
    assert loaded.config.image.repository == "acme/other"
    assert loaded.config.endpoint.workers.max == 7


def test_unset_variable_in_a_default_that_is_not_needed_is_fine(make_project: MakeProject) -> None:
    root = make_project(edit(ENV, f"{ENV}\n  env:\n    VALUE: ${{SET:-${{UNSET}}}}"))
    assert load_config(root / "rpdeploy.yaml", environ={"SET": "s"}).config.endpoint.env["VALUE"] == "s"
    with pytest.raises(ConfigError, match="environment variable UNSET is not set"):
        load_config(root / "rpdeploy.yaml", environ={})


# --- rules --------------------------------------------------------------------------------


def test_inline_secret_that_also_names_a_runpod_secret_is_rejected(
    make_project: MakeProject, run_cli: Callable[..., Result]
) -> None:
    config = edit(
        "  - name: AWS_SECRET_ACCESS_KEY",
        "  - name: AWS_SECRET_ACCESS_KEY\n    mode: inline\n    secret: aws_key",
    )
    result = run_cli("config", "validate", cwd=make_project(config))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: rpdeploy.yaml:23: secrets[1].secret: only valid with mode runpod-secret"
    ]


#: (section, where the typo goes, expected path) — unknown keys are refused in every section.
UNKNOWN_KEYS = [
    ("image", "  strategy: slim", "image.tpyo"),
    ("runtime", "  requirements: worker/requirements.txt", "runtime.tpyo"),
    ("handler", "  file: handler.py", "handler.tpyo"),
    ("endpoint", "  type: QUEUE", "endpoint.tpyo"),
    ("endpoint.gpu", "    pools: [ADA_24]", "endpoint.gpu.tpyo"),
    ("secrets[0]", "  - name: AWS_ACCESS_KEY_ID", "secrets[0].tpyo"),
    ("environments.staging.endpoint", "      workers: {max: 1}", "environments.staging.endpoint.tpyo"),
]


@pytest.mark.parametrize(("section", "anchor", "path"), UNKNOWN_KEYS, ids=[u[0] for u in UNKNOWN_KEYS])
def test_unknown_key_in_every_section(
    make_project: MakeProject, run_cli: Callable[..., Result], section: str, anchor: str, path: str
) -> None:
    indent = anchor[: len(anchor) - len(anchor.lstrip(" -"))].replace("-", " ")
    config = edit(anchor, f"{anchor}\n{indent}tpyo: 1")
    line = config.splitlines().index(f"{indent}tpyo: 1") + 1
    result = run_cli("config", "validate", cwd=make_project(config))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"error: rpdeploy.yaml:{line}: {path}: unknown key"]


@pytest.mark.parametrize(
    ("block", "path"),
    [
        (
            "  tests: {path: t.json, timout_ms: 5}",
            "tests.timout_ms: unknown key (did you mean 'timeout_ms'?)",
        ),
        (
            "  s3block: {s3: {bucket: my-bucket, regoin: x}}",
            "runtime.s3.regoin: unknown key (did you mean 'region'?)",
        ),
        (
            "  diskblock: {disk: {min_free_os: 1}}",
            "runtime.disk.min_free_os: unknown key (did you mean 'min_free_os_mb'?)",
        ),
        ("  cpublock", "endpoint.cpu[0].vcpus: unknown key"),
        ("  workersblock", "endpoint.workers.maxx: unknown key (did you mean 'max'?)"),
        ("  scalingblock", "endpoint.scaling.delay: unknown key"),
    ],
)
def test_unknown_key_in_nested_sections(
    make_project: MakeProject, run_cli: Callable[..., Result], block: str, path: str
) -> None:
    configs = {
        "  tests": BASE_CONFIG.replace("secrets:", "tests: {path: t.json, timout_ms: 5}\nsecrets:"),
        "  s3block": edit(
            "  requirements: worker/requirements.txt",
            "  requirements: worker/requirements.txt\n  s3: {bucket: my-bucket, regoin: x}",
        ),
        "  diskblock": edit(
            "  requirements: worker/requirements.txt",
            "  requirements: worker/requirements.txt\n  disk: {min_free_os: 1}",
        ),
        "  cpublock": edit("  gpu:\n    pools: [ADA_24]\n", "  cpu: [{id: cpu3c, vcpuCount: 2, vcpus: 2}]\n"),
        "  workersblock": edit("{min: 0, max: 2, idleTimeout: 5}", "{min: 0, maxx: 2, idleTimeout: 5}"),
        "  scalingblock": edit(
            "{type: QUEUE_DELAY, queueDelay: 4}", "{type: QUEUE_DELAY, queueDelay: 4, delay: 1}"
        ),
    }
    key = block.split(":", 1)[0]
    result = run_cli("config", "validate", cwd=make_project(configs[key]))
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].endswith(path), lines
