"""Config behaviour that mutation testing (`make mutation`, docs/quality.md) showed no test pinned.

Each test states one promise of deploy/config whose removal used to go unnoticed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from deploy.config import MASK, load_config
from deploy.config.interpolate import MAX_NESTING, Interpolator, UnsetVariable, interpolate
from deploy.config.load import validate_all
from deploy.config.patterns import describe
from deploy.config.rules import _runpod_body
from deploy.config.schema import CaseExpect, HandlerConfig, ImageConfig, OutputCheck, shell_syntax
from deploy.config.view import resolved_view
from deploy.config.yaml_source import YamlDocument, YamlProblem, parse_yaml
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


def test_a_fresh_interpolator_looks_up_and_remembers_a_secret() -> None:
    interpolator = Interpolator({"S": "value", "P": "plain"}, frozenset({"S"}))
    assert interpolator.lookup("S") == "value"
    assert interpolator.lookup("P") == "plain"
    assert interpolator.secrets == {"value": "S"}


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


def test_a_default_not_taken_reads_no_secret() -> None:
    interpolator = Interpolator({"B": "plain", "S": "hunter2"}, frozenset({"S"}))
    assert interpolator.apply({"k": "${B:-${S:-x}}"}) == {"k": "plain"}
    assert (interpolator.secrets, interpolator.reads) == ({}, {})


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
    expected = "handler.command: 'python\\x0ax' contains a newline, control or invisible character (U+000A)"
    assert expected in problems(make_project, text)


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
    assert "environments" not in view["endpoint"]
    assert sorted(k for k in view["endpoint"] if k.lower() == "env" or "env" in k.lower()) == ["env"]
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


# --- messages: masking, lines, paths ------------------------------------------------------


def test_a_model_used_without_a_loader_still_checks_and_shows_values() -> None:
    # No validation context (no masker): the checks run and show the value itself.
    hidden = r"'a\\x0ab' contains a newline, control or invisible character \(U\+000A\)"
    with pytest.raises(ValidationError, match=hidden):
        HandlerConfig(path="worker", file="handler.py", command="a\nb")
    with pytest.raises(ValidationError, match=r"'bad host!' is not a valid registry host"):
        ImageConfig(registry="bad host!", repository="acme/x", base="python:3.11")


def test_a_secret_value_in_a_rejected_field_is_shown_as_its_reference(make_project: MakeProject) -> None:
    root = make_project(edit("  registry: 127.0.0.1:5000", "  registry: ${AWS_SECRET_ACCESS_KEY}"))
    with pytest.raises(ConfigError) as caught:
        load_config(root / "rpdeploy.yaml", None, {"AWS_SECRET_ACCESS_KEY": "s3cr3t value!"})
    message = "\n".join(caught.value.problems)
    assert "image.registry: '${AWS_SECRET_ACCESS_KEY}' is not a valid registry host" in message
    assert "s3cr3t" not in message


def test_interpolation_errors_carry_the_given_path() -> None:
    with pytest.raises(UnsetVariable) as caught:
        interpolate({"a": "${NOPE}"}, {}, ("root",))
    assert caught.value.path == ("root", "a")


@pytest.mark.parametrize(
    ("text", "shown"),
    [("a} ${1X} b", "'${1X}'"), ("${1X} } }", "'${1X}'"), ("x}${A:?e}", "'${A:?e}'")],
)
def test_a_malformed_reference_is_shown_from_its_start_to_its_own_brace(text: str, shown: str) -> None:
    with pytest.raises(UnsetVariable) as caught:
        interpolate(text, {})
    assert caught.value.message.startswith(f"malformed variable reference {shown} ")


def test_the_base_config_deploys_the_project_name(make_project: MakeProject) -> None:
    loaded = load_config(make_project() / "rpdeploy.yaml", None, {})
    assert loaded.config.endpoint_name(None) == "demo"
    assert loaded.config.endpoint_name("staging") == "demo-staging"


def test_yaml_problem_is_its_message() -> None:
    assert str(YamlProblem(3, ("a",), "the message")) == "the message"


def test_a_bad_merge_source_points_at_its_line(make_project: MakeProject) -> None:
    text = BASE_CONFIG + "x-m:\n  <<:\n    - {a: 1}\n    - 7\n"
    assert "rpdeploy.yaml:27: x-m.<<: a merge key (<<) takes a mapping or a list of mappings" in problems(
        make_project, text
    )


# --- scaling rules (RunPod's 400 answers) -------------------------------------------------

SCALING = "{type: QUEUE_DELAY, queueDelay: 4}"


@pytest.mark.parametrize(
    ("scaling", "expected"),
    [
        (
            "{type: REQUEST_COUNT}",
            "rpdeploy.yaml:18: endpoint.scaling: REQUEST_COUNT scaling needs requestCount (>= 1)",
        ),
        (
            "{type: REQUEST_COUNT, requestCount: 2, queueDelay: 4}",
            "rpdeploy.yaml:18: endpoint.scaling.queueDelay: only valid with type QUEUE_DELAY",
        ),
        (
            "{type: QUEUE_DELAY, queueDelay: 4, requestCount: 2}",
            "rpdeploy.yaml:18: endpoint.scaling.requestCount: only valid with type REQUEST_COUNT",
        ),
    ],
)
def test_scaling_fields_belong_to_their_type(make_project: MakeProject, scaling: str, expected: str) -> None:
    assert expected in problems(make_project, edit(SCALING, scaling)).splitlines()


@pytest.mark.parametrize(
    "text",
    [
        # REQUEST_COUNT with no idleTimeout written: fine for QUEUE endpoints.
        edit("{min: 0, max: 2, idleTimeout: 5}", "{min: 0, max: 2}").replace(
            SCALING, "{type: REQUEST_COUNT, requestCount: 2}"
        ),
        # idleTimeout with REQUEST_COUNT: fine for LOAD_BALANCER endpoints.
        edit("  type: QUEUE", "  type: LOAD_BALANCER").replace(
            SCALING, "{type: REQUEST_COUNT, requestCount: 2}"
        ),
    ],
)
def test_valid_request_count_scaling(make_project: MakeProject, text: str) -> None:
    loaded = load_config(make_project(text) / "rpdeploy.yaml", None, {})
    assert loaded.config.endpoint.scaling.request_count == 2


@pytest.mark.parametrize(
    ("text", "shown"), [("ab ${A:-x", "'${A:-x'"), ("x${", "'${'"), ("x$${A:-${", "'${'")]
)
def test_unclosed_references_are_shown_from_their_start(text: str, shown: str) -> None:
    with pytest.raises(UnsetVariable) as caught:
        interpolate(text, {})
    assert caught.value.message.startswith(f"malformed variable reference {shown} ")


def test_a_secret_listed_three_times_names_its_first_entry(make_project: MakeProject) -> None:
    text = edit("  - name: AWS_SECRET_ACCESS_KEY", "  - name: AWS_ACCESS_KEY_ID\n  - name: AWS_ACCESS_KEY_ID")
    lines = problems(make_project, text)
    assert "secrets[1].name: AWS_ACCESS_KEY_ID is listed twice (also secrets[0])" in lines
    assert "secrets[2].name: AWS_ACCESS_KEY_ID is listed twice (also secrets[0])" in lines


def test_a_missing_handler_directory_is_named(make_project: MakeProject) -> None:
    text = edit("  path: worker", "  path: nowhere")
    assert "rpdeploy.yaml:11: handler.path: directory 'nowhere' does not exist" in problems(
        make_project, text
    )


@pytest.mark.parametrize(
    ("value", "kind"),
    [("[a, b]", "a list"), ("null", "null"), ("text", "a text value"), ("!!int 5", "int")],
)
def test_a_mapping_field_names_what_yaml_wrote_instead(
    make_project: MakeProject, value: str, kind: str
) -> None:
    text = edit("endpoint:\n  type: QUEUE", f"endpoint:\n  env: {value}\n  type: QUEUE")
    assert f"endpoint.env: must be a mapping of keys to values, got {kind}" in problems(make_project, text)


# --- handler.command: what a shell would act on (POSIX quoting) --------------------------


@pytest.mark.parametrize(
    ("command", "found"),
    [
        ("  A=1 python3 x.py", "the variable assignment 'A'="),
        ("A=1=2 python3 x.py", "the variable assignment 'A'="),
        ("~/bin/run", "'~'"),
        ("#x", "'#'"),
        ("echo a#b a~b", None),
        ("echo a\t#b", "'#'"),
        ("echo \\a; b", "';'"),
        ("echo \\a#b", None),
        ("echo \\&\\& b \\$HOME", None),
        ("sh -c 'a && b'", None),
        ("sh -c 'a' && b", "'&'"),
        ("echo 'a\\' && b", "'&'"),
        ("echo 'a\"b' && c", "'&'"),
        ("echo '$HOME `x`'", None),
        ("echo 'a'#b", None),
        ('sh -c "a && b"', None),
        ('sh -c "a" && b', "'&'"),
        ('echo "a\\"b" && c', "'&'"),
        ('echo "it\'s" && c', "'&'"),
        ('echo "# ~ | ;"', None),
        ('echo "$HOME"', "'$'"),
        ('echo "`x`"', "'`'"),
        ('echo "a\\$b"', None),
        ("echo X Xa#b", None),
        ("echo aX#b aX~b", None),  # only a blank starts a word, not any other character
        ("echo X && b", "'&'"),
    ],
)
def test_shell_syntax_follows_posix_quoting(command: str, found: str | None) -> None:
    assert shell_syntax(command) == found


# --- where a value of an environment's config was written --------------------------------


def test_an_environments_override_is_located_and_read_where_it_was_written(make_project: MakeProject) -> None:
    text = BASE_CONFIG.replace(
        "      workers: {max: 1}\n",
        '      workers: {max: 1}\n      env:\n        TOKEN: "${AWS_ACCESS_KEY_ID}"\n',
    )
    root = make_project(text)
    environ = {"AWS_ACCESS_KEY_ID": "abc", "AWS_SECRET_ACCESS_KEY": "x"}
    staging = load_config(root / "rpdeploy.yaml", "staging", environ)
    lines = text.splitlines()
    assert (
        staging.where(("endpoint", "workers", "max"))
        == f"rpdeploy.yaml:{lines.index('      workers: {max: 1}') + 1}"
    )
    assert staging.where(("endpoint", "type")) == f"rpdeploy.yaml:{lines.index('  type: QUEUE') + 1}"
    reads = staging.secret_reads(("endpoint", "env", "TOKEN"))
    assert (reads.variables, reads.exact) == (("AWS_ACCESS_KEY_ID",), "AWS_ACCESS_KEY_ID")
    assert staging.secret_reads(("endpoint", "type")).variables == ()


def test_a_default_under_a_mapping_an_environment_added_is_located_there(make_project: MakeProject) -> None:
    text = edit("  workers: {min: 0, max: 2, idleTimeout: 5}\n", "")
    root = make_project(text)
    staging = load_config(root / "rpdeploy.yaml", "staging", {})
    line = text.splitlines().index("      workers: {max: 1}") + 1
    assert staging.where(("endpoint", "workers", "min")) == f"rpdeploy.yaml:{line}"


# --- typos under a union (a volume id or a volume; a CPU list or none) get suggestions ----


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "  type: QUEUE\n",
            "  type: QUEUE\n  networkVolumes:\n    - name: data\n      size: 20\n      dataCentr: US\n",
            "endpoint.networkVolumes[0].dataCentr: unknown key (did you mean 'dataCenter'?)",
        ),
        (
            "  gpu:\n    pools: [ADA_24]\n",
            "  cpu:\n    - id: cpu3c\n      vcpuCont: 2\n",
            "endpoint.cpu[0].vcpuCont: unknown key (did you mean 'vcpuCount'?)",
        ),
    ],
)
def test_a_typo_under_a_union_field_gets_a_suggestion(
    make_project: MakeProject, old: str, new: str, expected: str
) -> None:
    assert expected in problems(make_project, edit(old, new))


def test_network_volumes_are_ids_or_volumes_by_name(make_project: MakeProject) -> None:
    volumes = "  networkVolumes:\n    - abc123\n    - name: data\n      size: 20\n      dataCenter: EU-RO-1\n"
    root = make_project(edit("  type: QUEUE\n", "  type: QUEUE\n" + volumes))
    endpoint = load_config(root / "rpdeploy.yaml", None, {}).config.endpoint
    assert endpoint.volume_ids() == ["abc123"]
    assert [(v.name, v.size, v.data_center) for v in endpoint.named_volumes()] == [("data", 20, "EU-RO-1")]


# --- validation cases: regular expressions are checked when the config loads -------------


@pytest.mark.parametrize("field", ["error", "regex"])
def test_a_case_regex_must_compile(field: str) -> None:
    make = (lambda v: CaseExpect(error=v)) if field == "error" else (lambda v: OutputCheck(regex=v))
    assert getattr(make("a+(b|c)"), field) == "a+(b|c)"
    with pytest.raises(
        ValidationError, match=r"not a regular expression: missing \), unterminated subpattern"
    ):
        make("(a")


def test_a_case_without_an_error_pattern_is_fine() -> None:
    assert CaseExpect().error is None
    assert CaseExpect(error=None).error is None


def test_a_long_endpoint_name_is_refused_by_the_schema(make_project: MakeProject) -> None:
    # Not left to the REST v2 body check, which also reads the name but is skipped while the
    # scaling block is incomplete (and the schema's problems come before the rules').
    text = edit("endpoint:\n  type: QUEUE\n", "endpoint:\n  name: " + "n" * 200 + "\n  type: QUEUE\n")
    found = problems(make_project, text.replace("{type: QUEUE_DELAY, queueDelay: 4}", "{type: QUEUE_DELAY}"))
    assert found == "rpdeploy.yaml:14: endpoint.name: must be at most 191 characters"


# --- warnings: unknown catalog ids, located where they were written -----------------------


def test_an_unknown_gpu_pool_is_a_warning_at_its_line(make_project: MakeProject) -> None:
    override = "      workers: {max: 1}\n"
    text = edit(override, override + "      gpu: {pools: [ADA_98]}\n").replace("[ADA_24]", "[ADA_99]")
    root = make_project(text)
    lines = text.splitlines()
    base = load_config(root / "rpdeploy.yaml", None, {})
    staging = load_config(root / "rpdeploy.yaml", "staging", {})
    (warning,) = base.warnings
    assert warning.startswith(
        f"rpdeploy.yaml:{lines.index('    pools: [ADA_99]') + 1}: "
        "endpoint.gpu.pools[0]: unknown GPU pool ADA_99 (known pools: "
    )
    (warning,) = staging.warnings
    assert warning.startswith(
        f"rpdeploy.yaml:{lines.index('      gpu: {pools: [ADA_98]}') + 1}: "
        "environments.staging.endpoint.gpu.pools[0]: unknown GPU pool ADA_98"
    )


def test_a_complete_scaling_block_gives_no_warning(make_project: MakeProject) -> None:
    root = make_project(BASE_CONFIG)
    assert load_config(root / "rpdeploy.yaml", None, {}).warnings == ()


# --- the REST v2 body the endpoint section is checked as ----------------------------------


@pytest.mark.parametrize(
    ("scaling", "idle_timeout"),
    [("{type: QUEUE_DELAY, queueDelay: 4}", 5), ("{type: REQUEST_COUNT, requestCount: 4}", None)],
)
def test_the_checked_body_spells_what_runpod_would_get(
    make_project: MakeProject, scaling: str, idle_timeout: int | None
) -> None:
    text = edit("workers: {min: 0, max: 2, idleTimeout: 5}", "workers: {min: 0, max: 2}").replace(
        "{type: QUEUE_DELAY, queueDelay: 4}", scaling
    )
    config = load_config(make_project(text) / "rpdeploy.yaml", None, {}).config
    body = _runpod_body(config)
    # RunPod rejects idleTimeout on a QUEUE endpoint scaling on REQUEST_COUNT (spec, EndpointWorkers).
    assert body["workers"].get("idleTimeout") == idle_timeout
    # The slim bootstrap's settings from runtime: (defaults here), then the secrets.
    assert body["env"] == {
        "RPDEPLOY_VOLUME_PATH": "/runpod-volume",
        "RPDEPLOY_INSTALLER": "pip",
        "RPDEPLOY_MIN_FREE_VOLUME_MB": "2048",
        "RPDEPLOY_MIN_FREE_OS_MB": "512",
        "AWS_ACCESS_KEY_ID": "***",
        "AWS_SECRET_ACCESS_KEY": "***",
    }
    assert (body["name"], body["image"]) == ("demo", "127.0.0.1:5000/acme/demo-worker")


# --- a secret's default RunPod name (<project>_<name>) must be one RunPod takes -------------


@pytest.mark.parametrize(
    ("secrets", "expected"),
    [
        (
            "  - name: AWS_ACCESS_KEY_ID\n",
            "rpdeploy.yaml:20: secrets[0].name: the default RunPod secret name fails: secret names must "
            "not start with RUNPOD (got 'runpod_aws_access_key_id'); set secret:",
        ),
        ("  - name: AWS_ACCESS_KEY_ID\n    secret: demo_key\n", None),
        ("  - name: AWS_ACCESS_KEY_ID\n    mode: inline\n", None),
    ],
)
def test_a_default_secret_name_runpod_refuses_is_named(
    make_project: MakeProject, secrets: str, expected: str | None
) -> None:
    text = edit("project: demo\n", "project: runpod\n").replace(
        "secrets:\n  - name: AWS_ACCESS_KEY_ID\n  - name: AWS_SECRET_ACCESS_KEY\n", "secrets:\n" + secrets
    )
    root = make_project(text)
    if expected is None:
        assert load_config(root / "rpdeploy.yaml", None, {}).config.project == "runpod"
    else:
        assert problems(make_project, text) == expected


# --- resources created at deploy time: registry credentials, named volumes -----------------

AUTH = "  registry_auth: {username_env: REG_USER, password_env: REG_PASSWORD}\n"
VOLUME = "    - name: data\n      size: 20\n      dataCenter: EU-RO-1\n"


@pytest.mark.parametrize(
    ("image", "endpoint", "expected"),
    [
        (
            AUTH,
            "  registry: cred-1\n",
            "endpoint.registry: set either endpoint.registry (an existing credential id) or "
            "image.registry_auth, not both",
        ),
        (AUTH, "", None),
        ("", "  registry: cred-1\n", None),
        (
            "",
            "  networkVolumes:\n" + VOLUME + VOLUME,
            "endpoint.networkVolumes[1].name: volume 'data' is listed twice",
        ),
        (
            "",
            "  networkVolumes:\n    - vol123\n" + VOLUME + VOLUME,
            "endpoint.networkVolumes[2].name: volume 'data' is listed twice",
        ),
        (
            "",
            "  dataCenterIds: [US-TX-3, EU-SE-1]\n  networkVolumes:\n" + VOLUME,
            "endpoint.networkVolumes[0].dataCenter: EU-RO-1 is not in endpoint.dataCenterIds "
            "(US-TX-3, EU-SE-1): workers could run nowhere that mounts the volume",
        ),
        ("", "  dataCenterIds: [EU-RO-1]\n  networkVolumes:\n    - vol123\n" + VOLUME, None),
        ("", "  networkVolumes:\n" + VOLUME, None),
    ],
)
def test_deploy_time_resources_are_checked(
    make_project: MakeProject, image: str, endpoint: str, expected: str | None
) -> None:
    text = edit("  strategy: slim\n", "  strategy: slim\n" + image).replace(
        "endpoint:\n  type: QUEUE\n", "endpoint:\n  type: QUEUE\n" + endpoint
    )
    if expected is None:
        assert load_config(make_project(text) / "rpdeploy.yaml", None, {}).config.project == "demo"
    else:
        (line,) = problems(make_project, text).splitlines()
        assert line.split(": ", 1)[1] == expected


# --- how a rejected value is named ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "must be a string (write '' for an empty value)"),
        ("!!int 5", "must be a string: quote the value, and drop any !! tag"),
        ("A" * 61, f"'{'A' * 57}...' is not a valid repository (expected lowercase name[/name...])"),
        ("B" * 60, f"'{'B' * 60}' is not a valid repository (expected lowercase name[/name...])"),
    ],
)
def test_a_rejected_string_is_named_in_yaml_terms(
    make_project: MakeProject, value: str, message: str
) -> None:
    text = edit("  repository: acme/demo-worker\n", f"  repository: {value}\n")
    assert problems(make_project, text) == f"rpdeploy.yaml:5: image.repository: {message}"


def test_describe_cuts_long_values_and_escapes_hidden_characters() -> None:
    assert describe("a" * 60) == "a" * 60
    assert describe("a" * 61) == "a" * 57 + "..."
    assert describe("\x1b[31m" + "b" * 70) == "\\x1b[31m" + "b" * 52 + "..."


def test_an_environment_may_deploy_the_base_configs_endpoint_name(make_project: MakeProject) -> None:
    # With environments the base config is no deploy target, so its name clashes with nothing.
    text = BASE_CONFIG + "  production:\n    endpoint:\n      name: demo\n"
    root = make_project(text)
    assert [item.environment for item in validate_all(root / "rpdeploy.yaml", {})] == [
        None,
        "staging",
        "production",
    ]


def test_validate_all_reads_the_environment_it_is_given(
    make_project: MakeProject, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The variables passed in, not the process's: a CI step validates for other settings.
    monkeypatch.delenv("MC_GIVEN_PROJECT", raising=False)
    root = make_project(edit("project: demo\n", "project: ${MC_GIVEN_PROJECT}\n"))
    loaded = validate_all(root / "rpdeploy.yaml", {"MC_GIVEN_PROJECT": "given"})
    assert [(item.environment, item.config.project) for item in loaded] == [
        (None, "given"),
        ("staging", "given"),
    ]


@pytest.mark.parametrize("value", ["!!int 5", "!!bool true", "[staging]"])
def test_validate_all_names_environments_that_are_no_mapping_once(
    make_project: MakeProject, value: str
) -> None:
    root = make_project(BASE_CONFIG[: BASE_CONFIG.index("environments:")] + f"environments: {value}\n")
    with pytest.raises(ConfigError) as caught:
        validate_all(root / "rpdeploy.yaml", {})
    assert caught.value.problems == [
        "rpdeploy.yaml:22: environments: must be a mapping of environment names to overrides"
    ]


def test_a_duplicate_key_in_a_merged_mapping_has_no_first_line() -> None:
    # The merge source is read without recording lines, so there is no "first defined" to give.
    with pytest.raises(ConfigError) as caught:
        parse_yaml("x:\n  <<: {a: 1, a: 2}\n", Path("x.yaml"))
    assert caught.value.problems == ["x.yaml:2: duplicate key 'x.<<.a'"]


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("!!set k", "tag !!set is not allowed (rpdeploy.yaml is plain data; quote the value instead)"),
        ("!!int x", "'x' is not a valid !!int value (ValueError)"),
    ],
)
def test_a_bad_key_is_named_by_its_mapping(key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_yaml(f"a:\n  b: 1\n  {key}: 1\n", Path("x.yaml"))
    assert caught.value.problems == [f"x.yaml:1: a: {problem}"]


def test_values_nested_exactly_max_depth_levels_load() -> None:
    # The root mapping, 62 nested mappings and the scalar: 64 levels, the most allowed.
    def nested(levels: int) -> str:
        return "x: " + "{a: " * levels + "1" + "}" * levels + "\n"

    value = parse_yaml(nested(62), Path("x.yaml")).data["x"]
    for _ in range(62):
        value = value["a"]
    assert value == "1"
    with pytest.raises(ConfigError) as caught:
        parse_yaml(nested(63), Path("x.yaml"))
    assert "deeper than 64 levels" in caught.value.problems[0]


def test_an_alias_bomb_of_long_keys_is_refused() -> None:
    # Keys count towards the expanded characters too: 10,500 aliases of a 1,000-character key.
    text = f"a: &a {{{'k' * 1000}: ''}}\nb: [" + ", ".join(["*a"] * 10_500) + "]\n"
    with pytest.raises(ConfigError) as caught:
        parse_yaml(text, Path("x.yaml"))
    assert caught.value.problems == [
        "x.yaml:2: b: aliases expand to more than 10,000,000 characters beyond the file's own"
        " (an alias bomb?)"
    ]


def test_the_alias_character_budget_is_exact_and_a_merge_list_adds_none() -> None:
    # Expanded characters: 10,002 copies of a 1,004-character key, 3 one-letter keys and `<<`;
    # the list after `<<` is no value and adds 0. A 972-character comment makes the file long
    # enough for that to be exactly its length + MAX_ALIAS_CHARS (allowed); one less is over.
    def text(pad: int) -> str:
        aliases = ", ".join(["*a"] * 10_001)
        return f"#{'x' * pad}\na: &a {{{'k' * 1004}: ''}}\nb: [{aliases}]\nc:\n  <<: [*a]\n"

    assert parse_yaml(text(972), Path("x.yaml")).data["c"] == {"k" * 1004: ""}
    with pytest.raises(ConfigError) as caught:
        parse_yaml(text(971), Path("x.yaml"))
    assert "aliases expand to more than 10,000,000 characters" in caught.value.problems[0]


def test_line_of_is_the_nearest_ancestors_line() -> None:
    lines = {(): 1, ("a",): 2, ("a", "b"): 3}
    document = YamlDocument(file=Path("x.yaml"), data=None, lines=lines)
    assert document.line_of(("a", "b")) == 3
    assert document.line_of(("a", "b", "c", "d")) == 3
    assert document.line_of(("a", "x", "y")) == 2
    assert document.line_of(("z", "b")) == 1
    assert document.line_of(()) == 1
    assert YamlDocument(file=Path("x.yaml"), data=None, lines={("a",): 2}).line_of(("a", "b", "c", "d")) == 2
    assert YamlDocument(file=Path("x.yaml"), data=None, lines={("a", "b"): 3}).line_of(("a",)) is None


def test_a_document_without_lines_is_named_by_its_file() -> None:
    assert YamlDocument(file=Path("conf/x.yaml"), data=None).where(("a", "b")) == "x.yaml"


# --- text rules in lists and environments; another environment's variables -----------------


def test_a_control_character_in_a_list_item_is_named_by_its_index(make_project: MakeProject) -> None:
    # A 3-deep path (endpoint.gpu.pools[0]) that is no endpoint env value: no newline allowed.
    text = edit("    pools: [ADA_24]", '    pools: ["ADA_24\\n"]')
    assert problems(make_project, text) == (
        "rpdeploy.yaml:16: endpoint.gpu.pools[0]: 'ADA_24\\x0a' contains a newline, control or"
        " invisible character (U+000A)"
    )
    # secrets[0].name is 3 deep too: the text rule, not the name pattern, names the newline.
    text = edit("  - name: AWS_ACCESS_KEY_ID", '  - name: "AWS_ACCESS\\nKEY_ID"')
    assert problems(make_project, text) == (
        "rpdeploy.yaml:20: secrets[0].name: 'AWS_ACCESS\\x0aKEY_ID' contains a newline, control or"
        " invisible character (U+000A)"
    )


def test_an_environments_endpoint_env_value_may_span_lines(make_project: MakeProject) -> None:
    root = make_project(edit("      workers: {max: 1}", '      workers: {max: 1}\n      env: {PEM: "a\\nb"}'))
    loaded = load_config(root / "rpdeploy.yaml", "staging", {})
    assert loaded.config.endpoint.env == {"PEM": "a\nb"}


def test_another_environments_variables_are_not_read(make_project: MakeProject) -> None:
    # Only the chosen environment's override is interpolated: production's unset variable
    # stops neither the base config nor staging.
    root = make_project(BASE_CONFIG + "  production:\n    endpoint:\n      env: {X: '${PROD_ONLY}'}\n")
    for env in (None, "staging"):
        assert load_config(root / "rpdeploy.yaml", env, {}).config.endpoint.env == {}


def test_a_rule_broken_by_an_override_points_at_the_override(make_project: MakeProject) -> None:
    volume = "{name: v, size: 10, dataCenter: EU-RO-1}"
    text = edit(
        "      workers: {max: 1}",
        "      workers: {max: 1}\n      dataCenterIds: [EU-RO-1]\n"
        f"      networkVolumes: [{volume}, {volume}]",
    )
    assert problems(make_project, text, "staging") == (
        "rpdeploy.yaml:27: environments.staging.endpoint.networkVolumes[1].name: volume 'v' is listed twice"
    )


# --- runtime: is the one source of the bootstrap's run-time settings -----------------------

RUNTIME = "runtime:\n  requirements: worker/requirements.txt\n"
RUNTIME_SET = (
    RUNTIME + "  index_url: http://idx/simple/\n  s3: {bucket: envs, endpoint_url: 'http://s3:8333'}\n"
)


def runtime_config(env: str, strategy: str = "slim", secret: str = "") -> str:
    text = BASE_CONFIG.replace(RUNTIME, RUNTIME_SET, 1).replace("strategy: slim", f"strategy: {strategy}", 1)
    text = text.replace("  scaling:", f"  env: {env}\n  scaling:", 1)
    return text.replace("  - name: AWS_SECRET_ACCESS_KEY", "  - name: AWS_SECRET_ACCESS_KEY" + secret, 1)


def test_runtime_settings_that_endpoint_env_repeats_must_agree(make_project: MakeProject) -> None:
    same = "{RPDEPLOY_INDEX_URL: 'http://idx/simple/', AWS_ENDPOINT_URL: 'http://s3:8333'}"
    root = make_project(runtime_config(same))
    assert load_config(root / "rpdeploy.yaml", None, {}).config.runtime_env() == {
        "RPDEPLOY_VOLUME_PATH": ("/runpod-volume", ("runtime", "volume_path")),
        "RPDEPLOY_INSTALLER": ("pip", ("runtime", "installer")),
        "RPDEPLOY_MIN_FREE_VOLUME_MB": ("2048", ("runtime", "disk", "min_free_volume_mb")),
        "RPDEPLOY_MIN_FREE_OS_MB": ("512", ("runtime", "disk", "min_free_os_mb")),
        "RPDEPLOY_INDEX_URL": ("http://idx/simple/", ("runtime", "index_url")),
        "RPDEPLOY_S3_BUCKET": ("envs", ("runtime", "s3", "bucket")),
        "RPDEPLOY_S3_PREFIX": ("rpdeploy/envs/", ("runtime", "s3", "prefix")),
        "AWS_ENDPOINT_URL": ("http://s3:8333", ("runtime", "s3", "endpoint_url")),
    }
    other = "{RPDEPLOY_INDEX_URL: 'http://other/', AWS_ENDPOINT_URL: 'http://s3:8333', KEEP: 'x'}"
    assert problems(make_project, runtime_config(other)) == (
        "rpdeploy.yaml:20: endpoint.env.RPDEPLOY_INDEX_URL: conflicts with runtime.index_url, which"
        " render puts into the endpoint env as RPDEPLOY_INDEX_URL: set it in one place"
        " (runtime.index_url is at rpdeploy.yaml:10)"
    )
    # A baked image has no bootstrap, so nothing of runtime: reaches its endpoint env.
    root = make_project(runtime_config(other, strategy="baked"), name="baked")
    assert load_config(root / "rpdeploy.yaml", None, {}).config.runtime_env() == {}


def test_a_conflict_points_at_the_environments_runtime_setting(make_project: MakeProject) -> None:
    # The other place named in the message is the environment's override that set it, not the base.
    text = runtime_config("{RPDEPLOY_INDEX_URL: 'http://idx/simple/'}")
    text += "    runtime:\n      index_url: http://stage/simple/\n"
    lines = text.splitlines()
    assert problems(make_project, text, "staging") == (
        f"rpdeploy.yaml:{lines.index('  env: {RPDEPLOY_INDEX_URL: ' + repr('http://idx/simple/') + '}') + 1}:"
        " endpoint.env.RPDEPLOY_INDEX_URL: conflicts with runtime.index_url, which render puts into the"
        " endpoint env as RPDEPLOY_INDEX_URL: set it in one place (environments.staging.runtime.index_url"
        f" is at rpdeploy.yaml:{lines.index('      index_url: http://stage/simple/') + 1})"
    )


def test_a_secret_cannot_set_a_runtime_setting(make_project: MakeProject) -> None:
    secret = "\n  - name: AWS_ENDPOINT_URL\n    mode: inline"
    assert problems(make_project, runtime_config("{KEEP: 'x'}", secret=secret)) == (
        "rpdeploy.yaml:25: secrets[2].name: AWS_ENDPOINT_URL is also set by runtime.s3.endpoint_url"
        " (render puts it into the endpoint env): set it in one place"
        " (runtime.s3.endpoint_url is at rpdeploy.yaml:11)"
    )


# --- choosing an environment ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("tail", "env", "expected"),
    [
        (
            "environments: [staging]\n",
            None,
            "rpdeploy.yaml:22: environments: must be a mapping of environment names to overrides",
        ),
        (
            "environments:\n  b: {}\n  a: {}\n",
            "prod",
            "rpdeploy.yaml:22: environments: no environment 'prod' (known: a, b)",
        ),
        ("", "prod", "rpdeploy.yaml:1: environments: no environment 'prod' (known: none defined)"),
        (
            "environments:\n  staging: [x]\n",
            "staging",
            "rpdeploy.yaml:23: environments.staging: must be a mapping of sections to override",
        ),
        (
            "environments:\n  staging:\n    endpont: {}\n    project: x\n",
            "staging",
            "rpdeploy.yaml:24: environments.staging.endpont: cannot be overridden per environment"
            " (did you mean 'endpoint'?)\n"
            "rpdeploy.yaml:25: environments.staging.project: cannot be overridden per environment",
        ),
    ],
)
def test_a_missing_or_unknown_environment_is_one_line(
    make_project: MakeProject, tail: str, env: str | None, expected: str
) -> None:
    text = BASE_CONFIG[: BASE_CONFIG.index("environments:")] + tail
    assert problems(make_project, text, env) == expected


# --- which variables are secrets (masked wherever their value shows) ------------------------


def test_the_registry_password_variable_is_a_secret(make_project: MakeProject) -> None:
    text = edit("  registry: 127.0.0.1:5000\n", "  registry: ${REG_PASSWORD}\n" + AUTH)
    root = make_project(text)
    environ = {"REG_PASSWORD": "pass word!", "REG_USER": "u"}
    with pytest.raises(ConfigError) as caught:
        load_config(root / "rpdeploy.yaml", None, environ)
    message = "\n".join(caught.value.problems)
    assert "image.registry: '${REG_PASSWORD}' is not a valid registry host" in message
    assert "pass word" not in message


def test_only_a_secrets_name_and_from_env_are_secret_variables(make_project: MakeProject) -> None:
    # A secret's other strings (its RunPod name here) name no variable to mask.
    text = edit("  - name: AWS_ACCESS_KEY_ID", "  - name: AWS_ACCESS_KEY_ID\n    secret: shown_var")
    root = make_project(text.replace("  registry: 127.0.0.1:5000", "  registry: ${shown_var}", 1))
    with pytest.raises(ConfigError) as caught:
        load_config(root / "rpdeploy.yaml", None, {"shown_var": "bad host!"})
    assert "image.registry: 'bad host!' is not a valid registry host" in "\n".join(caught.value.problems)


def test_a_config_without_environments_is_its_own_deploy_target(make_project: MakeProject) -> None:
    root = make_project(BASE_CONFIG[: BASE_CONFIG.index("environments:")])
    loaded = load_config(root / "rpdeploy.yaml", None, {})
    assert (loaded.environment, loaded.config.endpoint_name(None)) == (None, "demo")


def test_a_config_path_that_is_a_folder_is_named_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert str(caught.value) == f"{tmp_path}: not a file"


def test_a_config_file_that_cannot_be_read_names_the_reason() -> None:
    # /proc/self/mem is a regular file whose offset 0 is unmapped: reading it fails with EIO
    # (a permission error cannot be made here: the tests run as root).
    with pytest.raises(ConfigError) as caught:
        load_config(Path("/proc/self/mem"))
    assert str(caught.value) == "/proc/self/mem: cannot read (Input/output error)"


def test_a_non_utf8_byte_is_named_at_its_line_counting_a_leading_empty_line(tmp_path: Path) -> None:
    config = tmp_path / "rpdeploy.yaml"
    config.write_bytes(b"\nversion: 1\nproject: \xff\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert str(caught.value) == "rpdeploy.yaml:3: not UTF-8 text (byte 0xff)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: [1\n", "rpdeploy.yaml:2: YAML syntax error: expected ',' or ']', but got '<stream end>'"),
        ("a: *nope\n", "rpdeploy.yaml:1: YAML syntax error: found undefined alias 'nope'"),
        # A character YAML forbids: PyYAML gives an offset, counted into lines from the start.
        (
            "\n\na: b\x00\n",
            "rpdeploy.yaml:3: YAML syntax error: character U+0000 is not allowed in a YAML file",
        ),
    ],
    ids=["unclosed-flow", "undefined-alias", "nul-on-line-3"],
)
def test_a_yaml_syntax_error_is_its_exact_line(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_yaml(text, Path("rpdeploy.yaml"))
    assert str(caught.value) == expected


DEEP = "[" * 70 + "]" * 70


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A complex key is composed with no index: its step is "?".
        ("? " + DEEP + "\n: v\n", "rpdeploy.yaml:1: ?[0][0]: values nested deeper than 64 levels"),
        ("a:\n  - " + DEEP + "\n", "rpdeploy.yaml:2: a[0][0]: values nested deeper than 64 levels"),
    ],
    ids=["in-a-key", "in-a-list"],
)
def test_a_too_deep_value_names_the_start_of_its_path(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_yaml(text, Path("rpdeploy.yaml"))
    assert str(caught.value) == expected


def test_an_alias_bomb_of_long_values_is_refused() -> None:
    # Values count towards the expanded characters as keys do: 202 aliases of a 50,000-character value.
    text = "a: &x " + "y" * 50_000 + "\nb: [" + ", ".join(["*x"] * 202) + "]\n"
    with pytest.raises(ConfigError) as caught:
        parse_yaml(text, Path("x.yaml"))
    assert caught.value.problems == [
        "x.yaml:2: b: aliases expand to more than 10,000,000 characters beyond the file's own"
        " (an alias bomb?)"
    ]
