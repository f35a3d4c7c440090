"""Config behaviour that mutation testing (`make mutation`, docs/quality.md) showed no test pinned.

Each test states one promise of deploy/config whose removal used to go unnoticed.
"""

from __future__ import annotations

import json

import pytest

from deploy.config import MASK, load_config
from deploy.config.interpolate import MAX_NESTING, Interpolator, UnsetVariable, interpolate
from deploy.config.view import resolved_view
from deploy.errors import ConfigError
from tests.conftest import BASE_CONFIG, MakeProject


def edit(old: str, new: str) -> str:
    assert old in BASE_CONFIG, old
    return BASE_CONFIG.replace(old, new, 1)


# --- interpolation: the success paths -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "environ", "expected"),
    [
        ("$$", {}, "$"),
        ("a$$b", {}, "a$b"),
        ("$${X}", {"X": "1"}, "${X}"),
        ("${X}", {"X": "value"}, "value"),
        ("pre-${X}-post", {"X": "v"}, "pre-v-post"),
        ("${X}${Y}", {"X": "1", "Y": "2"}, "12"),
        ("${X_1}", {"X_1": "ok"}, "ok"),
        ("${_X}", {"_X": "ok"}, "ok"),
        ("${X:-d}", {}, "d"),
        ("${X:-d}", {"X": ""}, "d"),
        ("${X:-d}", {"X": "set"}, "set"),
        ("${X:-}", {}, ""),
        ("${X:-${Y}}", {"Y": "y"}, "y"),
        ("${X:-${Y:-z}}", {}, "z"),
        ("${X:-a}b", {}, "ab"),
        ("$X", {"X": "1"}, "$X"),
        ("cost $5", {}, "cost $5"),
        ("end$", {}, "end$"),
    ],
)
def test_interpolation_results(text: str, environ: dict[str, str], expected: str) -> None:
    assert interpolate(text, environ) == expected


def test_interpolation_walks_lists_and_mappings_and_keeps_other_values() -> None:
    data = {"a": ["${X}", 3, None, True], "b": {"c": "${X}"}}
    assert interpolate(data, {"X": "v"}) == {"a": ["v", 3, None, True], "b": {"c": "v"}}


def test_an_unset_variable_names_its_path() -> None:
    with pytest.raises(UnsetVariable) as caught:
        interpolate({"a": ["x", "${NOPE}"]}, {})
    assert caught.value.path == ("a", 1)
    assert caught.value.message == "environment variable NOPE is not set (use ${NOPE:-default})"


def test_a_set_default_is_not_evaluated() -> None:
    # The default of a set variable is never read, so an unset variable inside it is fine.
    assert interpolate("${X:-${UNSET}}", {"X": "v"}) == "v"


@pytest.mark.parametrize("text", ["${1X}", "${A:?e}", "${A", "${A:-x", "${}", "${-}", "x${A:-${B}"])
def test_malformed_references_are_errors_even_after_an_unset_one(text: str) -> None:
    with pytest.raises(UnsetVariable, match="malformed variable reference"):
        interpolate("${UNSET} " + text, {})


def test_malformed_reference_shows_the_reference_only() -> None:
    with pytest.raises(UnsetVariable) as caught:
        interpolate("abc ${1X} def", {})
    assert caught.value.message.startswith("malformed variable reference '${1X}' ")
    with pytest.raises(UnsetVariable) as unclosed:
        interpolate("abc ${AB", {})
    assert "'${AB'" in unclosed.value.message


def test_defaults_nest_up_to_the_limit_and_no_deeper() -> None:
    def nested(depth: int) -> str:
        return "${V:-" * depth + "x" + "}" * depth

    assert interpolate(nested(MAX_NESTING), {}) == "x"
    with pytest.raises(UnsetVariable, match=f"nest deeper than {MAX_NESTING} levels"):
        interpolate(nested(MAX_NESTING + 1), {})


def test_secret_values_read_are_recorded_by_value() -> None:
    interpolator = Interpolator({"S": "hunter2", "P": "plain", "E": ""}, frozenset({"S", "E"}))
    assert interpolator.apply("${S} ${P} ${E:-d}") == "hunter2 plain d"
    assert interpolator.secrets == {"hunter2": "S"}


# --- cross-field rules --------------------------------------------------------------------


def problems(make_project: MakeProject, text: str, env: str | None = None) -> str:
    root = make_project(text, name=f"project-{abs(hash(text))}")
    with pytest.raises(ConfigError) as caught:
        load_config(root / "rpdeploy.yaml", env, {})
    return "\n".join(caught.value.problems)


def test_an_inline_secret_cannot_name_a_runpod_secret(make_project: MakeProject) -> None:
    text = edit(
        "  - name: AWS_SECRET_ACCESS_KEY", "  - name: AWS_SECRET_ACCESS_KEY\n    mode: inline\n    secret: x"
    )
    assert "secrets[1].secret: only valid with mode runpod-secret" in problems(make_project, text)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("  strategy: slim", "  strategy: slim\n  strategyy: x", "image.strategyy: unknown key"),
        (
            "  requirements: worker/requirements.txt",
            "  requirements: worker/requirements.txt\n  pyton: x",
            "runtime.pyton: unknown key",
        ),
        ("  file: handler.py", "  file: handler.py\n  fiel: x", "handler.fiel: unknown key"),
        (
            "  - name: AWS_ACCESS_KEY_ID",
            "  - name: AWS_ACCESS_KEY_ID\n    moed: inline",
            "secrets[0].moed: unknown key",
        ),
    ],
)
def test_unknown_keys_are_refused_in_every_section(
    make_project: MakeProject, old: str, new: str, expected: str
) -> None:
    assert expected in problems(make_project, edit(old, new))


def test_gpu_and_cpu_together_are_refused(make_project: MakeProject) -> None:
    text = edit("    pools: [ADA_24]", "    pools: [ADA_24]\n  cpu:\n    - {id: cpu3c, vcpuCount: 2}")
    assert "endpoint.cpu: set either gpu or cpu, not both" in problems(make_project, text)


def test_neither_gpu_nor_cpu_is_refused(make_project: MakeProject) -> None:
    text = edit("  gpu:\n    pools: [ADA_24]\n", "")
    assert "endpoint: set either gpu (pools) or cpu (flavors): RunPod needs exactly one" in problems(
        make_project, text
    )


def test_workers_max_equal_to_min_is_fine(make_project: MakeProject) -> None:
    root = make_project(edit("{min: 0, max: 2,", "{min: 2, max: 2,"))
    assert load_config(root / "rpdeploy.yaml", None, {}).config.endpoint.workers.max == 2


def test_unset_variable_is_its_message() -> None:
    assert str(UnsetVariable(("a",), "the message")) == "the message"


def test_typos_deep_in_environments_and_lists_get_suggestions(make_project: MakeProject) -> None:
    text = edit("      workers: {max: 1}", "      workers: {mx: 1}")
    assert "environments.staging.endpoint.workers.mx: unknown key (did you mean 'max'?)" in problems(
        make_project, text, "staging"
    )
    text = edit("  - name: AWS_ACCESS_KEY_ID", "  - name: AWS_ACCESS_KEY_ID\n    moed: inline")
    assert "secrets[0].moed: unknown key (did you mean 'mode'?)" in problems(make_project, text)


def test_a_control_character_in_a_single_line_field_is_named(make_project: MakeProject) -> None:
    text = edit("  file: handler.py", '  file: handler.py\n  command: "python\\nx"')
    assert "handler.command: 'python\\\\nx' contains a newline or control character" in problems(
        make_project, text
    )


def test_a_pattern_field_shows_the_rejected_value(make_project: MakeProject) -> None:
    text = edit("  registry: 127.0.0.1:5000", "  registry: 'bad host!'")
    assert "image.registry: 'bad host!' is not a valid registry host (expected host[:port])" in problems(
        make_project, text
    )


# --- the resolved view (`rpdeploy config show`) -------------------------------------------


def test_resolved_view_shape(make_project: MakeProject) -> None:
    text = BASE_CONFIG.replace("project: demo", "project: my-demo", 1).replace(
        "  - name: AWS_SECRET_ACCESS_KEY",
        "  - name: AWS_SECRET_ACCESS_KEY\n    from_env: LOCAL_KEY\n  - name: TOKEN\n    mode: inline",
        1,
    )
    text = text.replace("  scaling:", "  env: {PLAIN: 'p', TOKEN_X: 't'}\n  scaling:", 1)
    root = make_project(text)
    loaded = load_config(root / "rpdeploy.yaml", "staging", {"LOCAL_KEY": "k", "TOKEN": "tok"})
    view = resolved_view(loaded)
    assert view["environments"] == ["staging"]
    assert view["endpoint"]["name"] == "my-demo-staging"
    assert view["endpoint"]["workers"]["max"] == 1
    assert view["endpoint"]["workers"]["idleTimeout"] == 5
    assert view["endpoint"]["env"] == {"PLAIN": "p", "TOKEN_X": "t"}
    assert view["secrets"] == [
        {
            "name": "AWS_ACCESS_KEY_ID",
            "mode": "runpod-secret",
            "secret": "my_demo_aws_access_key_id",
            "from_env": "AWS_ACCESS_KEY_ID",
            "value": MASK,
        },
        {
            "name": "AWS_SECRET_ACCESS_KEY",
            "mode": "runpod-secret",
            "secret": "my_demo_aws_secret_access_key",
            "from_env": "LOCAL_KEY",
            "value": MASK,
        },
        {"name": "TOKEN", "mode": "inline", "secret": None, "from_env": "TOKEN", "value": MASK},
    ]
    assert isinstance(view["image"], dict)
    json.dumps(view)  # JSON-ready: nothing but plain data
