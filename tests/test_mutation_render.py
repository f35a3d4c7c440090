"""Render behaviour that mutation testing (`make mutation`, docs/quality.md) showed no test pinned.

The security promises of rendering (strict filters, the sandbox, strict undefined, env values
never evaluated as templates) each get a test that fails when the protection is removed.
"""

from __future__ import annotations

import contextvars
import json
import re
from pathlib import Path
from typing import Any

import pytest
from jinja2.exceptions import SecurityError, UndefinedError

from deploy.config import load_config
from deploy.errors import OutsideProject, RenderError
from deploy.render import endpoint_spec, growth, render_project
from deploy.render.environment import (
    MAX_RANGE,
    MAX_STEPS,
    MAX_TEXT,
    BoundedSandbox,
    _check_format,
    _estimate,
    _passes_context,
    _signature,
    _templates_dir,
    bounded_iter,
    bounded_range,
    builtin_templates_dir,
    check_arguments,
    check_binop,
    check_method_growth,
    make_environment,
    reset_budget,
)
from deploy.render.filters import canonical_json, checked, dockerfile_env, exec_form, shell_quote
from deploy.render.project import (
    _dockerfile_context,
    _dockerignore_context,
    _failure,
    _where,
    bootstrap_files,
    check_drift,
    start_command,
    write_files,
)
from tests.conftest import BASE_CONFIG, MakeProject

IMAGE = "127.0.0.1:5000/acme/demo-worker:sha-0123456789ab"


def render(root: Path) -> dict[str, str]:
    return render_project(load_config(root / "rpdeploy.yaml", None, {}), IMAGE).files


def render_error(make_project: MakeProject, template: str, name: str = "project") -> str:
    root = make_project(BASE_CONFIG, name=name, files={"templates/Dockerfile.slim.j2": template})
    with pytest.raises(RenderError) as caught:
        render(root)
    return str(caught.value)


# --- filters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        ("image", "127.0.0.1:5000/python:3.11-slim", "python:3.11 && rm -rf /"),
        ("apt_package", "libgl1", "libgl1; curl x"),
        ("relative_path", "worker/handler.py", "../etc/passwd"),
        ("ignore_pattern", "build/*.tmp", "../up"),
        ("container_path", "/app", "app; rm"),
        ("env_name", "MODEL_ID", "1BAD"),
        ("tag", "sha-0123abc", "bad tag"),
    ],
)
def test_checked_passes_only_what_its_pattern_allows(kind: str, good: str, bad: str) -> None:
    assert checked(good, kind) == good
    with pytest.raises(RenderError, match=f"not a valid {kind.replace('_', ' ')}"):
        checked(bad, kind)


def test_checked_refuses_an_unknown_check() -> None:
    with pytest.raises(RenderError, match=r"unknown check 'nope' in template \(known: apt_package, "):
        checked("x", "nope")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", '"plain"'),
        ("$HOME", '"\\$HOME"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("C:\\dir", '"C:\\\\dir"'),
        ('\\"$', '"\\\\\\"\\$"'),
        (3, '"3"'),
    ],
)
def test_dockerfile_env_escapes_backslash_quote_and_dollar(value: object, expected: str) -> None:
    assert dockerfile_env(value) == expected


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "a\x00b"])
def test_newlines_and_control_characters_are_refused(value: str) -> None:
    with pytest.raises(RenderError, match="an ENV value contains a newline or control character"):
        dockerfile_env(value)
    with pytest.raises(RenderError, match="a shell word contains a newline"):
        shell_quote(value)
    with pytest.raises(RenderError, match="an exec-form argument contains a newline"):
        exec_form(["ok", value])


def test_shell_quote_and_exec_form_results() -> None:
    assert shell_quote("a b'c") == "'a b'\"'\"'c'"
    assert shell_quote("plain") == "plain"
    assert exec_form("python") == '["python"]'
    assert exec_form(["python", "-u", 3]) == '["python", "-u", "3"]'


def test_canonical_json_keeps_text_as_is_and_indents_by_two() -> None:
    assert canonical_json({"a": "<é&'>"}) == '{\n  "a": "<é&\'>"\n}'


# --- the sandbox and strict undefined -----------------------------------------------------


def test_a_template_cannot_reach_python_internals(make_project: MakeProject) -> None:
    message = render_error(make_project, "{{ ''.__class__.__mro__[1].__subclasses__() }}\n")
    assert "unsafe template operation" in message or "has no attribute" in message


def test_a_template_cannot_mutate_values(make_project: MakeProject) -> None:
    message = render_error(make_project, "{% set l = [1] %}{{ l.append(2) }}\n")
    assert "unsafe template operation" in message


def test_an_undefined_name_is_an_error_not_empty_text(make_project: MakeProject) -> None:
    message = render_error(make_project, "FROM x\n{{ no_such_value }}\n")
    assert message == "templates/Dockerfile.slim.j2:2: 'no_such_value' is undefined"


def test_output_is_not_html_escaped(make_project: MakeProject) -> None:
    root = make_project(files={"templates/Dockerfile.slim.j2": "{{ '<a & b>' }}\n"})
    assert render(root)["Dockerfile.slim"] == "<a & b>\n"


def test_endpoint_env_values_are_never_evaluated_as_templates(make_project: MakeProject) -> None:
    config = BASE_CONFIG.replace(
        "  scaling:", "  env: {GREETING: '{{ 7 * 7 }}', RAW: '{% raw %}'}\n  scaling:", 1
    )
    files = render(make_project(config))
    spec = json.loads(next(v for k, v in files.items() if k.endswith("endpoint.create.json")))
    assert spec["env"]["GREETING"] == "{{ 7 * 7 }}"
    assert spec["env"]["RAW"] == "{% raw %}"


def test_str_format_goes_through_the_sandbox(make_project: MakeProject) -> None:
    message = render_error(make_project, "{{ '{0.__class__}'.format(1) }}\n")
    assert "unsafe template operation" in message


def test_a_very_wide_format_is_refused_with_its_reason(make_project: MakeProject) -> None:
    message = render_error(make_project, "{{ '%10000000d' % 1 }}\n")
    assert message.endswith("a format width or precision of 7+ digits is over the template limit")


def test_range_allows_exactly_its_limit(make_project: MakeProject) -> None:
    ok = f"{{% for i in range({MAX_RANGE}) %}}{{% endfor %}}done\n"
    assert render(make_project(files={"templates/Dockerfile.slim.j2": ok}))["Dockerfile.slim"] == "done\n"
    over = f"{{% for i in range({MAX_RANGE + 1}) %}}{{% endfor %}}\n"
    assert "is over the limit of" in render_error(make_project, over, "over")


# --- writing and drift --------------------------------------------------------------------


def test_write_files_to_the_project_and_to_out(make_project: MakeProject, tmp_path: Path) -> None:
    root = make_project()
    result = render_project(load_config(root / "rpdeploy.yaml", None, {}), IMAGE)
    written = write_files(result, root)
    assert sorted(p.relative_to(root).as_posix() for p in written) == sorted(result.files)
    for name, content in result.files.items():
        assert (root / name).read_text() == content
    before = {p: p.stat().st_ino for p in written}
    write_files(result, root)  # unchanged: nothing is replaced
    assert {p: p.stat().st_ino for p in written} == before

    out = tmp_path / "out"
    flat = write_files(result, root, out)
    expected = {name if name in result.committed else Path(name).name for name in result.files}
    assert sorted(p.relative_to(out).as_posix() for p in flat) == sorted(expected)
    assert (out / "Dockerfile.slim").read_text() == result.files["Dockerfile.slim"]


def test_check_drift_shows_a_unified_diff_per_committed_file(make_project: MakeProject) -> None:
    root = make_project()
    result = render_project(load_config(root / "rpdeploy.yaml", None, {}), IMAGE)
    write_files(result, root)
    assert check_drift(result, root) == {}
    dockerfile = root / "Dockerfile.slim"
    dockerfile.write_text(dockerfile.read_text() + "RUN extra\n")
    (root / ".dockerignore").unlink()
    drift = check_drift(result, root)
    assert sorted(drift) == [".dockerignore", "Dockerfile.slim"]
    assert drift["Dockerfile.slim"].startswith(
        "--- a/Dockerfile.slim (committed)\n+++ b/Dockerfile.slim (rendered)\n@@"
    )
    assert drift["Dockerfile.slim"].endswith("-RUN extra\n")
    ignore_lines = result.files[".dockerignore"].splitlines(keepends=True)
    assert drift[".dockerignore"].splitlines(keepends=True)[3:] == ["+" + line for line in ignore_lines]


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("\n\nA\n\n\n\nB\n\n\n", "A\n\nB\n"),
        ("A\n \nB", "A\n\nB\n"),
        ("{% set s = 'x' * 1000000 %}{{ s | length }}", "1000000\n"),  # exactly the size limit
        ("{{ 2000000 | attr('real') }}", "2000000\n"),  # the filtered value itself is not bounded
    ],
)
def test_rendered_text_is_normalised_and_bounds_are_exact(
    make_project: MakeProject, template: str, expected: str
) -> None:
    root = make_project(files={"templates/Dockerfile.slim.j2": template})
    assert render(root)["Dockerfile.slim"] == expected


# --- where a template error points: the innermost template frame, named by its origin -------


def _raised_in(*frames: tuple[Path, int]) -> BaseException:
    """An error whose traceback runs through ``frames`` (file, line; outermost first), as Jinja's
    rewritten tracebacks do: each frame's code is compiled under that file's name."""
    call: Any = None
    for path, line in reversed(frames):  # lines >= 2: line 1 holds the `def`
        body = "raise ValueError('boom')" if call is None else "call()"
        namespace: dict[str, Any] = {"call": call}
        exec(compile("def f():\n" + "\n" * (line - 2) + f"    {body}\n", str(path), "exec"), namespace)
        call = namespace["f"]
    try:
        call()
    except ValueError as exc:
        return exc
    raise AssertionError("no error raised")


def test_a_template_error_names_the_innermost_template_by_its_origin(tmp_path: Path) -> None:
    builtin = builtin_templates_dir() / "Dockerfile.slim.j2"
    project = tmp_path / "templates" / "Dockerfile.slim.j2"
    elsewhere = Path("/opt/shared/base.j2")
    assert _where(_raised_in((project, 2), (builtin, 7)), "Dockerfile.slim.j2", tmp_path) == (
        "builtin/Dockerfile.slim.j2:7"
    )
    assert _where(_raised_in((builtin, 3), (project, 4)), "x", tmp_path) == "templates/Dockerfile.slim.j2:4"
    assert _where(_raised_in((elsewhere, 5)), "x", tmp_path) == "base.j2:5"
    assert (
        _where(_raised_in((tmp_path / "helper.py", 2)), "Dockerfile.slim.j2", tmp_path)
        == "Dockerfile.slim.j2"
    )


# --- secret copies made by an environment's override ----------------------------------------

CANARY = "CANARY-env-copy-51c2"


def test_a_copy_in_an_environments_endpoint_env_is_a_reference_not_a_carried_secret(
    make_project: MakeProject,
) -> None:
    """``environments.<name>.endpoint.env`` is endpoint.env too: an exact copy there becomes the
    secret's reference, so a literal elsewhere that equals the secret is no copy (not refused)."""
    config = BASE_CONFIG.replace("  type: QUEUE", f"  type: QUEUE\n  env:\n    MODE: {CANARY}", 1)
    config += '      env: {KEYCOPY: "${AWS_SECRET_ACCESS_KEY}"}\n'
    root = make_project(config)
    loaded = load_config(root / "rpdeploy.yaml", "staging", {"AWS_SECRET_ACCESS_KEY": CANARY})
    files = render_project(loaded, IMAGE).files
    body = json.loads(files["build/rpdeploy/staging/endpoint.create.json"])
    assert (body["env"]["MODE"], body["env"]["KEYCOPY"]) == (
        CANARY,
        "{{ RUNPOD_SECRET_demo_aws_secret_access_key }}",
    )


def test_a_secret_in_an_environments_other_settings_is_refused(make_project: MakeProject) -> None:
    """Anywhere else under ``environments.<name>`` (here the endpoint's name) a secret's value
    would be carried into a deployable file: refused, naming the variable."""
    config = BASE_CONFIG + f'      name: "ep-${{AWS_ACCESS_KEY_ID}}"\n      env: {{MODE: "{CANARY}"}}\n'
    root = make_project(config)
    loaded = load_config(root / "rpdeploy.yaml", "staging", {"AWS_ACCESS_KEY_ID": "k3y"})
    with pytest.raises(RenderError) as caught:
        render_project(loaded, IMAGE)
    assert "would carry the value of ${AWS_ACCESS_KEY_ID}, a secret" in str(caught.value)
    assert "k3y" not in str(caught.value)


def test_a_secret_inside_other_env_text_is_refused_with_the_way_out(make_project: MakeProject) -> None:
    config = BASE_CONFIG.replace(
        "  type: QUEUE", '  type: QUEUE\n  env:\n    KEYCOPY: "id=${AWS_ACCESS_KEY_ID}"', 1
    )
    root = make_project(config)
    with pytest.raises(RenderError) as caught:
        render_project(load_config(root / "rpdeploy.yaml", None, {"AWS_ACCESS_KEY_ID": "k3y"}), IMAGE)
    assert str(caught.value).endswith(
        "endpoint.env.KEYCOPY: holds the secret ${AWS_ACCESS_KEY_ID} inside other text, which a"
        ' deployable file cannot carry: set it to exactly "${AWS_ACCESS_KEY_ID}" (a RunPod secret'
        " reference) or build the text in the worker"
    )


def test_a_copy_of_a_secret_that_is_no_runpod_secret_is_refused_with_the_way_out(
    make_project: MakeProject,
) -> None:
    config = BASE_CONFIG.replace(
        "  - name: AWS_ACCESS_KEY_ID\n", "  - name: AWS_ACCESS_KEY_ID\n    mode: inline\n"
    ).replace("  type: QUEUE", '  type: QUEUE\n  env:\n    KEYCOPY: "${AWS_ACCESS_KEY_ID}"', 1)
    root = make_project(config)
    with pytest.raises(RenderError) as caught:
        render_project(load_config(root / "rpdeploy.yaml", None, {"AWS_ACCESS_KEY_ID": "k3y"}), IMAGE)
    assert str(caught.value).endswith(
        "endpoint.env.KEYCOPY: copies ${AWS_ACCESS_KEY_ID}, which is not a runpod-secret: only a"
        " runpod-secret can be copied (it becomes its {{ RUNPOD_SECRET_… }} reference);"
        " read AWS_ACCESS_KEY_ID itself in the worker, or declare it with mode: runpod-secret"
    )


def test_a_nested_root_layout_handler_lists_its_packages_under_its_folder(
    make_project: MakeProject,
) -> None:
    config = BASE_CONFIG.replace(
        "handler:\n  path: worker\n  file: handler.py\n", 'handler:\n  path: "."\n  file: src/rp_handler.py\n'
    ).replace("requirements: worker/requirements.txt", "requirements: requirements.txt")
    root = make_project(
        config,
        files={
            "src/rp_handler.py": "import greeting\n",
            "src/greeting/__init__.py": "",
            "src/tests/__init__.py": "",
            "requirements.txt": "runpod\n",
        },
    )
    allowlist = render(root)[".dockerignore"].splitlines()
    assert [line for line in allowlist if line.startswith("!")] == [
        "!src/rp_handler.py",
        "!src/*.py",
        "!src/greeting",
        "!requirements.txt",
    ]


# --- growth: the exact measure every bound is computed with (deploy.render.growth) ----------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abc", 3),  # a string at the top is its own text
        (["abc"], 18),  # brackets 2 + item 8 + quoted, escaped ASCII 3 * 2 + 2
        (["é"], 24),  # non-ASCII inside a container: 12 per character
        (["a\tb"], 48),  # unprintable ASCII too
        ([["ab"]], 28),  # a nested item's overhead grows with its depth (8 + 2)
        (True, 32),
        (1.5, 32),
        (None, 32),
        (1j, 32),
        (255, 4),  # bits // 3 + 2
        (0, 2),
        (b"ab", 11),
        (bytearray(b"ab"), 11),
        ({"a": 1}, 16),
        (("a",), 14),
        ({"a"}, 14),
        (frozenset("a"), 14),
        (range(3), 32),
        (object(), 256),
    ],
)
def test_weight_is_the_documented_measure(value: object, expected: int) -> None:
    assert growth.weight(value) == expected
    assert growth.text_length(value) == (len(value) if isinstance(value, str) else expected)


def test_weight_stops_just_past_its_limit_and_refuses_deep_nesting() -> None:
    assert growth.weight("abc", limit=3) == 3
    assert growth.weight("abcd", limit=3) == 4
    assert growth.weight(["abcdef"], limit=5) == 6
    deep: list[Any] = []
    for _ in range(growth.MAX_DEPTH):
        deep = [deep]
    assert growth.weight(deep) == 2 + sum(2 + 8 + 2 * depth for depth in range(growth.MAX_DEPTH))
    with pytest.raises(SecurityError, match="a value nested over 100 levels deep is over the template limit"):
        growth.weight([deep])


def test_refuse_allows_exactly_the_limit() -> None:
    growth.refuse(growth.MAX_SIZE, "x")
    with pytest.raises(SecurityError) as caught:
        growth.refuse(growth.MAX_SIZE + 1, "'|x'")
    assert str(caught.value) == "'|x' would make 1,000,001 characters or items, over the limit of 1,000,000"


def test_materialize_lists_a_generator_within_the_limit_and_passes_the_rest() -> None:
    sized = ["a"]
    assert growth.materialize(sized, "x") is sized
    assert growth.materialize(iter(["a", "b"]), "x") == ["a", "b"]
    fits = "a" * (growth.MAX_SIZE - growth.ITEM_OVERHEAD)
    assert growth.materialize(iter([fits]), "x") == [fits]
    with pytest.raises(SecurityError, match=r"^a block would make 1,000,001 "):
        growth.materialize(iter([fits + "a"]), "a block")


@pytest.mark.parametrize(
    ("template", "args", "repeats", "expected"),
    [
        ("%5s", ["ab"], True, 3 + 5 + 1 * 2),  # text, widths, placeholders × largest argument
        ("{}{}", ["abc"], True, 4 + 2 * 3),
        ("%s-%s", ["ab", "cde"], False, 5 + 2 + 3),  # each argument once
        ("%*s", [7, "a"], False, 3 + 7 + 1),  # an int argument may be a width
        ("%s", [True], False, 2 + 32),  # a bool is no width
        ("%1234567s", [], True, 9 + 1_234_567),
        ("%12345678s", [], True, 10),  # 8+ digits are refused elsewhere, not summed here
        (7, [], True, 1 + 7),  # a non-string template is measured as its text (a width too)
    ],
)
def test_format_size(template: object, args: list[object], repeats: bool, expected: int) -> None:
    assert growth.format_size(template, args, repeats=repeats) == expected


def test_format_size_stops_adding_once_over_the_limit() -> None:
    big = "a" * (growth.MAX_SIZE - 1)
    assert growth.format_size("", [big, "b", "cc"], repeats=False) == growth.MAX_SIZE + 2
    assert growth.format_size("", [big + "a", "b", "cc"], repeats=False) == growth.MAX_SIZE + 1


def test_format_args() -> None:
    assert growth.format_args(("a", "b")) == ["a", "b"]
    assert growth.format_args({"k": "v"}) == ["v"]
    assert growth.format_args("x") == ["x"]
    assert growth.format_args(["x"]) == [["x"]]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("aaa", "a", "bb"), 6),
        (("aaa", "a", "bb", 2), 5),
        (("aaa", "a", "bb", 0), 3),
        (("aaa", "a", "bb", -1), 6),
        (("aaa", "a", "bb", None), 6),
        (("aaa", "", "bb"), 11),  # "" matches before, between and after every character
        (("aaa", "aa", ""), 3),  # shrinking never counts below the text
    ],
)
def test_replace_size(args: tuple[Any, ...], expected: int) -> None:
    assert growth.replace_size(*args) == expected
    if args[1] and args[3:] in ((), (-1,)):
        assert len(args[0].replace(args[1], args[2])) <= expected


def test_replace_size_counts_only_what_is_there() -> None:
    text = "a" * growth.MAX_SIZE
    assert growth.replace_size(text, text + "a", "b" * 2 * growth.MAX_SIZE) == growth.MAX_SIZE


def test_join_size() -> None:
    assert growth.join_size(",", ["ab", "c"]) == 4
    assert growth.join_size("--", []) == 0
    assert growth.join_size(["x"], ["a", "b"]) == 1 + 14 + 1  # a list separator is weighed
    full = "a" * growth.MAX_SIZE
    assert growth.join_size("", [full, "b", "cc"]) == growth.MAX_SIZE + 1
    assert growth.join_size("", ["a" * (growth.MAX_SIZE - 1), "b", "cc"]) == growth.MAX_SIZE + 2


def test_filter_bound_helpers() -> None:
    assert (growth._lines("a\nb"), growth._lines(["a"])) == (2, 14)
    assert (growth._int(5, 80), growth._int(True, 80), growth._int("5", 80)) == (5, 80, 80)
    assert (growth._width(-4), growth._width(True), growth._width("ab")) == (4, 32, 2)


def test_expensive_filters_take_at_most_their_input_limit() -> None:
    wordwrap = growth.FILTER_BOUNDS["wordwrap"]
    assert wordwrap({"s": "a" * growth.MAX_TEXT_INPUT, "width": 79}) == growth.MAX_TEXT_INPUT * 2
    with pytest.raises(SecurityError) as caught:
        wordwrap({"s": "a" * (growth.MAX_TEXT_INPUT + 1), "width": 79})
    assert str(caught.value) == "'wordwrap' of 20,001 characters is over its input limit of 20,000"


# --- the sandbox's bounds, each at its edge (deploy.render.environment) ---------------------


def over(message: str) -> Any:
    return pytest.raises(SecurityError, match=f"^{re.escape(message)}$")


def test_repetition_is_bounded_either_way_round() -> None:
    check_binop("*", "ab", 500_000)
    check_binop("*", "ab", -5)  # a negative count makes nothing
    check_binop("*", ["a"], True)
    for left, right in (("ab", 500_001), (500_001, "ab")):
        with over("'*' would make 1,000,002 characters or items, over the limit of 1,000,000"):
            check_binop("*", left, right)


def test_concatenation_is_bounded_by_length_and_a_lists_weight() -> None:
    check_binop("+", "a" * 600_000, "b" * 400_000)
    check_binop("+", "a" * 999_999, 1)  # not two sequences: Jinja's own error, not ours
    with over("'+' would make 1,000,001 characters or items, over the limit of 1,000,000"):
        check_binop("+", "a" * 600_000, "b" * 400_001)
    # Two short lists whose text is big: a list grown in a loop holds new text each time.
    with over("'+' would make 1,000,015 characters or items, over the limit of 1,000,000"):
        check_binop("+", ["a" * 500_000], ["b"])
    check_binop("+", "a" * 500_000, "b" * 500_000)  # strings are weighed by length only


def test_powers_are_bounded_in_bits() -> None:
    for left, right in ((2, 4096), (3, 2584), (1, 10**9), (-1, 10**9), (2, -5000), (2, 0), (2.0, 5000)):
        check_binop("**", left, right)
    for left, right in ((2, 4097), (-2, 4097), (3, 2585)):
        with over("'**' would make an integer over 4096 bits"):
            check_binop("**", left, right)


def test_percent_formatting_is_bounded() -> None:
    check_binop("%", "%s%s", ("a" * 500_000, "b" * 499_996))
    with over("'%' would make 1,000,001 characters or items, over the limit of 1,000,000"):
        check_binop("%", "%s%s", ("a" * 500_000, "b" * 499_997))
    check_binop("%", "%(a)s", {"a": "x" * 999_995})
    check_binop("%", "%(a)s%(a)s", {"a": "x" * 499_995})  # a name may repeat: each counts it
    with over("'%' would make 1,000,002 characters or items, over the limit of 1,000,000"):
        check_binop("%", "%(a)s%(a)s", {"a": "x" * 499_996})
    with over("a format width or precision of 7+ digits is over the template limit"):
        check_binop("%", "%10000000d", 1)
    check_binop("%", 10**7, 3)  # a number's remainder


def test_wide_format_needs_seven_digits_and_a_placeholder() -> None:
    _check_format("%999999d")
    _check_format("1000000 items")  # digits alone are no format
    _check_format(10**7)
    for text in ("%1000000d", "{:1000000}"):
        with over("a format width or precision of 7+ digits is over the template limit"):
            _check_format(text)


def test_integer_arguments_are_bounded() -> None:
    check_arguments([1_000_000, -1_000_000, True], {"w": 1_000_000})
    for args, kwargs in (([1_000_001], {}), ([-1_000_001], {}), ([], {"w": 1_000_001})):
        with pytest.raises(
            SecurityError, match=r"^argument [-]?1e\+06 is over the template limit of 1,000,000$"
        ):
            check_arguments(args, kwargs)


def test_method_growth_is_bounded_before_the_method_runs() -> None:
    check_method_growth("a".center, (999_992,), {})
    with over("'.center()' would make 1,000,001 characters or items, over the limit of 1,000,000"):
        check_method_growth("a".center, (999_993,), {})
    check_method_growth("ab".ljust, (), {"width": 499_996})
    with over("'.ljust()' would make 1,000,002 characters or items, over the limit of 1,000,000"):
        check_method_growth("ab".ljust, (), {"width": 499_997})
    check_method_growth("ab".strip, ("x" * 333_332,), {})  # a text argument: its length is the factor
    with over("'.strip()' would make 1,000,002 characters or items, over the limit of 1,000,000"):
        check_method_growth("ab".strip, ("x" * 333_334,), {})
    check_method_growth("ab".zfill, (True,), {})  # a bool is no count
    check_method_growth(",".join, (["a" * 500_000, "b" * 499_999],), {})
    with over("'.join()' would make 1,000,001 characters or items, over the limit of 1,000,000"):
        check_method_growth(",".join, (["a" * 500_000, "b" * 500_000],), {})
    check_method_growth("aaa".replace, ("a", "x" * 333_333), {})
    check_method_growth("aaa".replace, ("a", "x" * 333_334, 2), {})  # at most two replaced
    with over("'.replace()' would make 1,000,002 characters or items, over the limit of 1,000,000"):
        check_method_growth("aaa".replace, ("a", "x" * 333_334), {})
    # format is bounded when called (wrap_str_format); objects without a length are not ours
    check_method_growth("a".format, ("x" * 2_000_000,), {})
    check_method_growth({}.items, ("x" * 2_000_000,), {})
    with over("'.index()' would make 1,999,980 characters or items, over the limit of 1,000,000"):
        check_method_growth(["a"].index, ("a" * 999_990,), {})


def test_range_and_loops_draw_from_one_budget_per_render() -> None:
    reset_budget()
    assert bounded_range(MAX_RANGE) == range(MAX_RANGE)
    with over(f"range() of {MAX_RANGE + 1:,} items is over the limit of {MAX_RANGE:,}"):
        bounded_range(MAX_RANGE + 1)
    reset_budget()
    for _ in range(MAX_STEPS // MAX_RANGE):
        bounded_range(MAX_RANGE)
    with over(f"the template loops more than {MAX_STEPS:,} times in one render"):
        list(bounded_iter([1]))
    reset_budget()  # a new render starts afresh
    assert list(bounded_iter("ab")) == ["a", "b"]


def test_the_text_budget_is_all_of_one_renders_output() -> None:
    reset_budget()
    chunk = "a" * growth.MAX_SIZE
    for _ in range(MAX_TEXT // growth.MAX_SIZE):
        assert BoundedSandbox.bounded_finalize(chunk) is chunk
    with over(f"the template writes more than {MAX_TEXT:,} characters in one render"):
        BoundedSandbox.bounded_finalize("a")
    with over("'{{ }}' would make 1,000,001 characters or items, over the limit of 1,000,000"):
        BoundedSandbox.bounded_finalize(chunk + "a")


def test_concatenation_and_block_captures_are_weighed_first() -> None:
    assert BoundedSandbox.bounded_concat(("a", 1, ["b"])) == "a1['b']"
    with over("'~' would make 1,000,001 characters or items, over the limit of 1,000,000"):
        BoundedSandbox.bounded_concat(("a" * growth.MAX_SIZE, "b"))
    assert BoundedSandbox.concat(["a", "b"]) == "ab"
    assert BoundedSandbox.concat(iter(["a", "b"])) == "ab"
    with over("a block would make 1,000,001 characters or items, over the limit of 1,000,000"):
        BoundedSandbox.concat(["a" * growth.MAX_SIZE, "b"])


def test_guarded_filters_weigh_their_inputs_and_results(tmp_path: Path) -> None:
    env = make_environment(tmp_path)
    reset_budget()
    assert env.from_string("{{ 'ab'|replace('a', 'xy') }}").render() == "xyb"
    assert env.from_string("{{ ('a' * 999990)|replace('a', 'bb', 10)|length }}").render() == "1000000"
    assert env.from_string("{{ x|join(',') }}").render(x=iter(["a", "b"])) == "a,b"
    assert env.filters["replace"].__name__ == "do_replace"  # guarded, with the filter's own name
    for template, message in (
        ("{{ ('a' * 999990)|replace('a', 'bb', 11) }}", "'|replace' would make 1,000,001"),
        ("{{ 'a'|center(1000001) }}", "argument 1e+06 is over the template limit of 1,000,000"),
        ("{{ x|join }}", "the input of '|join' would make 1,000,"),
    ):
        with pytest.raises(SecurityError, match=re.escape(message)):
            env.from_string(template).render(x=["a" * 999_990, "b" * 20])


def test_a_filter_bound_needs_its_arguments_by_name() -> None:
    def double(value: str, times: int = 2) -> str:
        return value * times

    signature = _signature(double)
    assert signature is not None
    assert _estimate(lambda a: len(a["value"]) * a["times"], signature, 0, ("abc",), {}) == 6
    assert _estimate(lambda a: len(a["value"]) * a["times"], signature, 0, ("abc",), {"times": 5}) == 15
    assert _estimate(lambda a: 1, signature, 0, (), {"nope": 1}) == 0  # the filter says what is wrong
    assert _signature(dict.fromkeys) is not None
    assert _passes_context(len) is False


def test_a_template_link_out_of_the_project_is_refused_before_reading(tmp_path: Path) -> None:
    root = tmp_path / "project"
    (root / "templates").mkdir(parents=True)
    outside = tmp_path / "secret.j2"
    outside.write_text("secret\n")
    (root / "templates" / "Dockerfile.slim.j2").symlink_to(outside)
    (root / "templates" / "inside.j2").write_text("inside\n")
    env = make_environment(root)
    assert env.get_template("inside.j2").render() == "inside\n"
    with pytest.raises(OutsideProject):
        env.get_template("Dockerfile.slim.j2")
    # builtin/<name> always reaches rpdeploy's own template
    builtin = builtin_templates_dir() / "Dockerfile.slim.j2"
    assert env.get_template("builtin/Dockerfile.slim.j2").filename == str(builtin)


def test_an_added_or_removed_override_gives_a_fresh_environment(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    first = make_environment(tmp_path)
    assert make_environment(tmp_path) is first
    (tmp_path / "templates" / "dockerignore.j2").write_text("x\n")
    second = make_environment(tmp_path)
    assert second is not first
    assert second.get_template("dockerignore.j2").render() == "x\n"
    assert (
        make_environment(tmp_path / "none")
        .get_template("dockerignore.j2")
        .filename.startswith(  # type: ignore[union-attr]
            str(builtin_templates_dir())
        )
    )


def test_str_format_is_bounded_on_each_value_and_keeps_its_keywords(tmp_path: Path) -> None:
    env = make_environment(tmp_path)
    reset_budget()
    assert env.from_string("{{ '{a}-{0}'.format('p', a='q') }}").render() == "q-p"
    # a mapping argument's values are weighed one by one (as a whole it would weigh twice as much)
    text = env.from_string("{{ '{0[k]}{0[k]}'.format(d)|length }}").render(d={"k": "x" * 300_000})
    assert text == "600000"


def test_the_slim_image_carries_the_bootstrap_modules() -> None:
    runtime = Path(__file__).resolve().parent.parent / "deploy" / "runtime"
    names = sorted(p.name for p in runtime.glob("*.py"))
    assert names
    assert bootstrap_files() == {f".rpdeploy/runtime/{n}": (runtime / n).read_bytes() for n in names}


def named_secret(make_project: MakeProject, extra: str, access_key_id: str) -> str:
    """The refusal of a staging endpoint named after AWS_SECRET_ACCESS_KEY's value, with
    ``extra`` config text and AWS_ACCESS_KEY_ID set to ``access_key_id``."""
    config = BASE_CONFIG + '      name: "ep-${AWS_SECRET_ACCESS_KEY}"\n' + extra
    environ = {"AWS_ACCESS_KEY_ID": access_key_id, "AWS_SECRET_ACCESS_KEY": "s3cr3t"}
    with pytest.raises(RenderError) as caught:
        render_project(load_config(make_project(config) / "rpdeploy.yaml", "staging", environ), IMAGE)
    return str(caught.value)


def test_the_refusal_names_the_copied_secret_whose_value_the_file_holds(make_project: MakeProject) -> None:
    """Of the secrets whose values a file holds, the refusal names one interpolated outside
    endpoint.env; a secret whose value the file merely happens to contain (AWS_ACCESS_KEY_ID's
    value is part of the image name; endpoint.env references it, which makes it known) is not the
    one that brought it, even when it sorts first."""
    refused = named_secret(make_project, '      env: {KEY_ID: "${AWS_ACCESS_KEY_ID}"}\n', "demo-worker")
    assert "would carry the value of ${AWS_SECRET_ACCESS_KEY}, a secret" in refused


def test_the_refusal_names_a_secret_the_file_holds_not_one_copied_elsewhere(
    make_project: MakeProject,
) -> None:
    """Two secrets are interpolated outside endpoint.env, but only one value is in the refused
    file (the other names the validation cases' file, which no rendered file holds)."""
    refused = named_secret(make_project, 'tests:\n  path: "cases-${AWS_ACCESS_KEY_ID}.json"\n', "k3y-id")
    assert "would carry the value of ${AWS_SECRET_ACCESS_KEY}, a secret" in refused


def test_the_refusal_says_the_way_out_and_names_a_secret_of_the_same_value(
    make_project: MakeProject,
) -> None:
    """Two secrets share a value; the masker knows it by the first one read (the base's
    endpoint.env reference), while the copy outside endpoint.env is the other: the refusal
    still names a secret holding that value, and says what is allowed instead."""
    config = BASE_CONFIG.replace("  type: QUEUE", '  type: QUEUE\n  env: {KEY_ID: "${AWS_ACCESS_KEY_ID}"}', 1)
    config += '      name: "ep-${AWS_SECRET_ACCESS_KEY}"\n'
    environ = {"AWS_ACCESS_KEY_ID": "s3cr3t", "AWS_SECRET_ACCESS_KEY": "s3cr3t"}
    with pytest.raises(RenderError) as caught:
        render_project(load_config(make_project(config) / "rpdeploy.yaml", "staging", environ), IMAGE)
    assert str(caught.value) == (
        "build/rpdeploy/staging/endpoint.create.json: would carry the value of ${AWS_ACCESS_KEY_ID},"
        " a secret: only endpoint.env may reference a runpod-secret (a value that is exactly that"
        " variable)"
    )


def test_text_length_is_exact_for_a_string_even_far_over_the_limit() -> None:
    """A string's length is measured, not weighed (weighing stops just past the limit): the
    refusal says how much the template tried to write."""
    assert growth.text_length("a" * 2_000_000) == 2_000_000
    assert growth.text_length(["a"]) == growth.weight(["a"]) == 14
    with over("'{{ }}' would make 2,000,000 characters or items, over the limit of 1,000,000"):
        BoundedSandbox.bounded_finalize("a" * 2_000_000)


def test_the_budgets_hold_in_a_context_no_render_started() -> None:
    """Code that renders without `reset_budget` (a fresh thread or context) still gets the
    full budgets, not none."""

    def loops() -> None:
        for _ in range(MAX_STEPS // MAX_RANGE):
            bounded_range(MAX_RANGE)
        with over(f"the template loops more than {MAX_STEPS:,} times in one render"):
            bounded_range(1)

    def writes() -> None:
        chunk = "a" * growth.MAX_SIZE
        for _ in range(MAX_TEXT // growth.MAX_SIZE):
            BoundedSandbox.bounded_finalize(chunk)
        with over(f"the template writes more than {MAX_TEXT:,} characters in one render"):
            BoundedSandbox.bounded_finalize("a")

    contextvars.Context().run(loops)
    contextvars.Context().run(writes)


def test_each_loop_item_costs_exactly_one_step() -> None:
    reset_budget()
    for _ in range(MAX_STEPS // MAX_RANGE - 1):
        bounded_range(MAX_RANGE)
    bounded_range(MAX_RANGE - 2)
    assert list(bounded_iter("ab")) == ["a", "b"]  # the last two steps
    with over(f"the template loops more than {MAX_STEPS:,} times in one render"):
        list(bounded_iter("c"))


def test_repetition_checks_only_a_sequence_times_an_integer() -> None:
    """Numbers multiply freely, a sequence times a non-integer is Jinja's own error, and a
    negative count makes nothing, however long the sequence."""
    check_binop("*", 10**7, 10**7)
    check_binop("*", "ab", "cd")
    check_binop("*", ["a"], 2.5)
    check_binop("*", "a" * 1_000_001, -1)
    check_binop("*", -3, ["a"] * 1_000_001)
    env = make_environment(Path("/nonexistent-rpdeploy-project"))
    reset_budget()
    assert env.from_string("{{ 3 * 4 }} {{ ('ab' * -2)|length }}").render() == "12 0"


def test_a_generated_block_is_weighed_while_it_is_consumed() -> None:
    """A block body that is no list is consumed piece by piece under the limit (each piece
    with its item overhead), so the refusal comes before the whole body exists."""
    with over("a block would make 1,000,008 characters or items, over the limit of 1,000,000"):
        BoundedSandbox.concat(iter(["a" * growth.MAX_SIZE, "b"]))
    assert BoundedSandbox.concat(piece for piece in ("a", "b")) == "ab"


def test_a_power_of_zero_or_one_needs_no_float_of_its_exponent() -> None:
    """0, 1 and -1 stay small whatever the exponent, even one too large for a float (the bit
    estimate would fail on it, and log2(0) has no value)."""
    for left in (0, 1, -1):
        check_binop("**", left, 10**400)
        check_binop("**", left, 10**9)
    env = make_environment(Path("/nonexistent-rpdeploy-project"))
    reset_budget()
    assert env.from_string("{{ 1 ** (10 ** 400) }} {{ 0 ** 5000 }}").render() == "1 0"


class _UnnamedMethod:
    """A callable bound to a string that has no ``__name__`` (no builtin method is one, but the
    sandbox may be handed any callable): its refusal still reads as a method's."""

    __self__ = "ab"

    def __call__(self, *args: Any) -> str:
        return "ab"


def test_a_method_without_a_name_is_bounded_as_a_method() -> None:
    check_method_growth(_UnnamedMethod(), (499_995,), {})
    with over("'.method()' would make 1,000,006 characters or items, over the limit of 1,000,000"):
        check_method_growth(_UnnamedMethod(), (499_999,), {})


def test_a_calls_arguments_are_listed_and_weighed_before_the_call() -> None:
    """Generator arguments, by position or by keyword, are consumed once under the limit and
    passed on as lists; together the arguments must weigh under it too."""
    env = make_environment(Path("/nonexistent-rpdeploy-project"))
    reset_budget()
    assert env.from_string("{{ ','.join(x) }}").render(x=iter(["a", "b"])) == "a,b"
    assert env.from_string("{{ dict(k=x)['k'] }}").render(x=iter(["a", "b"])) == "['a', 'b']"
    big = ["a" * growth.MAX_SIZE, "b"]
    for template in ("{{ ','.join(x) }}", "{{ dict(k=x) }}"):
        with over("a call's arguments would make 1,000,008 characters or items, over the limit of 1,000,000"):
            env.from_string(template).render(x=iter(big))
    with over("a call's arguments would make 1,200,000 characters or items, over the limit of 1,000,000"):
        env.from_string("{{ dict(a=y, b=y) }}").render(y="a" * 600_000)


def test_only_str_replace_gets_the_replace_bound() -> None:
    """Another method with two arguments keeps the generic bound (receiver times its largest
    argument), and a replace given too many arguments is left to its own error."""
    check_method_growth("ab".ljust, (499_995, "x"), {})
    with over("'.ljust()' would make 1,000,003 characters or items, over the limit of 1,000,000"):
        check_method_growth("ab".ljust, (499_997, "x"), {})
    check_method_growth("ab".replace, ("a", "b", 1, 2), {})
    env = make_environment(Path("/nonexistent-rpdeploy-project"))
    reset_budget()
    with pytest.raises(TypeError, match="replace expected at most 3 arguments, got 4"):
        env.from_string("{{ 'ab'.replace('a', 'b', 1, 2) }}").render()


def test_a_method_without_arguments_is_bounded_by_its_receiver() -> None:
    check_method_growth(("a" * 1_000_000).upper, (), {})
    with over("'.upper()' would make 1,000,001 characters or items, over the limit of 1,000,000"):
        check_method_growth(("a" * 1_000_001).upper, (), {})


def test_weight_of_nested_mappings_and_large_integers() -> None:
    """A mapping's item overhead grows with its depth as a list's does (8 + 2 per level), and
    an integer weighs a digit per three bits (a decimal digit holds about 3.3)."""
    assert growth.weight([{"a": 1}]) == 2 + 8 + (2 + 10 + 4 + 2)
    assert growth.weight([{"a": {"b": "c"}}]) == 2 + 8 + (2 + 10 + 4 + (2 + 12 + 4 + 4))
    assert growth.weight(10**9) == 30 // 3 + 2
    assert len(str(10**9)) <= growth.weight(10**9)


def test_format_map_is_left_to_its_own_bound() -> None:
    """``format_map``, like ``format``, is bounded when called (wrap_str_format), by each value
    of its mapping: the generic bound, which would weigh the whole mapping, is not applied."""
    check_method_growth("{k}".format_map, ({"k": "x" * 2_000_000},), {})
    env = make_environment(Path("/nonexistent-rpdeploy-project"))
    reset_budget()
    text = env.from_string("{{ '{k}{k}'.format_map(d)|length }}").render(d={"k": "x" * 300_000})
    assert text == "600000"


def test_lipsum_is_not_offered() -> None:
    """``lipsum(n)`` writes n paragraphs; the sandbox removes it (checked here without calling
    it, which would take minutes if it were there)."""
    env = BoundedSandbox()
    assert "lipsum" not in env.globals
    assert env.globals["range"] is bounded_range
    with pytest.raises(UndefinedError, match="'lipsum' is undefined"):
        env.from_string("{{ lipsum(1) }}", globals={}).render()


def test_a_filters_input_and_its_arguments_are_checked_apart() -> None:
    """The filtered value is an input, weighed (a big number there is no width); the arguments
    after it are the widths and counts; the refusal of the inputs reads exactly so."""
    env = make_environment(Path("/nonexistent-rpdeploy-project"))
    reset_budget()
    assert env.from_string("{{ (10 ** 7)|string }}").render() == "10000000"
    with over("argument 1e+06 is over the template limit of 1,000,000"):
        env.from_string("{{ 'a'|indent(1000001, true) }}").render()
    with over("the input of '|join' would make 1,000,001 characters or items, over the limit of 1,000,000"):
        env.from_string("{{ x|join }}").render(x=["a" * 999_990, "b" * 20])
    with over("'|map' would make 1,000,008 characters or items, over the limit of 1,000,000"):
        env.from_string("{{ x|map('upper')|list }}").render(x=iter(["a" * growth.MAX_SIZE, "b"]))


def test_a_dangling_template_link_out_of_the_project_is_refused_not_skipped(tmp_path: Path) -> None:
    """A link out of the project whose target is missing is refused too, rather than skipped
    (which would fall back to the built-in template of that name without a word)."""
    root = tmp_path / "project"
    (root / "templates").mkdir(parents=True)
    (root / "templates" / "Dockerfile.slim.j2").symlink_to(tmp_path / "missing.j2")
    with pytest.raises(OutsideProject):
        make_environment(root).get_template("Dockerfile.slim.j2")


def test_the_built_in_templates_are_found_in_a_wheel_and_in_a_checkout(tmp_path: Path) -> None:
    """A wheel packages them as ``deploy/templates``; a checkout has them at its top."""
    package = tmp_path / "deploy"
    package.mkdir()
    assert _templates_dir(package) == tmp_path / "templates"
    (package / "templates").mkdir()
    assert _templates_dir(package) == package / "templates"
    assert builtin_templates_dir() == Path(__file__).resolve().parent.parent / "templates"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("{% include 'nope.j2' %}", "template 'nope.j2' not found in templates/ or rpdeploy's built-ins"),
        ("{{ nope }}", "templates/Dockerfile.slim.j2:2: 'nope' is undefined"),
        (
            "{{ ''.__class__ }}",
            "templates/Dockerfile.slim.j2:2: unsafe template operation: access to attribute '__class__'"
            " of 'str' object is unsafe.",
        ),
        (
            "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
            "templates/Dockerfile.slim.j2:2: template recursion is too deep",
        ),
        ("{{ 1/0 }}", "templates/Dockerfile.slim.j2:2: template error: ZeroDivisionError: division by zero"),
        (
            "{% set s = 'a' * 1000000 %}{{ s }}{{ s }}{{ s }}{{ s }}{{ s }}{{ 'b' }}",
            "Dockerfile.slim.j2: unsafe template operation: output is over 5,000,000 characters",
        ),
    ],
)
def test_each_kind_of_template_failure_is_one_exact_line(
    make_project: MakeProject, body: str, expected: str
) -> None:
    assert render_error(make_project, f"# one\n{body}") == expected


def test_a_template_syntax_error_names_its_file_and_line(make_project: MakeProject) -> None:
    message = render_error(make_project, "# one\n{% if %}")
    assert message.endswith(
        "/templates/Dockerfile.slim.j2:2: template syntax error: Expected an expression, got 'end of"
        " statement block'"
    )


def test_a_rendered_file_may_be_exactly_the_output_limit(make_project: MakeProject) -> None:
    template = "{% set s = 'a' * 1000000 %}" + "{{ s }}" * 5  # 5,000,000 characters, then a newline
    root = make_project(BASE_CONFIG, files={"templates/Dockerfile.slim.j2": template})
    assert len(render(root)["Dockerfile.slim"]) == 5_000_001


def test_a_command_that_cannot_be_split_is_one_render_error(make_project: MakeProject) -> None:
    """The config refuses such a command first; a config built without validation (here by
    `model_copy`, which does not validate) still gets one clear line, not a traceback."""
    config = load_config(make_project(BASE_CONFIG) / "rpdeploy.yaml", None, {}).config
    handler = config.handler.model_copy(update={"command": "python3 'x"})
    with pytest.raises(RenderError) as caught:
        start_command(config.model_copy(update={"handler": handler}))
    assert str(caught.value) == 'handler.command: cannot split "python3 \'x": No closing quotation'
    handler = config.handler.model_copy(update={"command": "python3 -m 'my worker'"})
    assert start_command(config.model_copy(update={"handler": handler})) == ["python3", "-m", "my worker"]


def test_a_handler_path_with_a_trailing_slash_is_the_same_folder(make_project: MakeProject) -> None:
    """``srcX/`` is ``srcX``, and ``./`` the root layout: the allowlist names each folder
    once, without the slash (a ``srcX//**`` pattern would match nothing). Only the slash is
    taken off (the folder's name ends in an X, as mutmut's string mutants do)."""
    config = BASE_CONFIG.replace("  path: worker\n", '  path: "srcX/"\n')
    root = make_project(config, name="slash", files={"srcX/handler.py": "print('hi')\n"})
    assert _dockerignore_context(load_config(root / "rpdeploy.yaml", None, {}).config, root) == {
        "include": ["srcX", "worker/requirements.txt"],
        "exclude": ["srcX/**/__pycache__", "srcX/**/*.pyc", "srcX/**/.env*"],
    }
    config = BASE_CONFIG.replace("  path: worker\n", '  path: "./"\n')
    root = make_project(config, name="root-layout", files={"handler.py": "print('hi')\n"})
    assert _dockerignore_context(load_config(root / "rpdeploy.yaml", None, {}).config, root) == {
        "include": ["handler.py", "*.py", "worker/requirements.txt"],
        "exclude": ["**/__pycache__", "**/*.pyc", "**/.env*"],
    }


def test_each_kind_of_failure_has_its_words() -> None:
    assert _failure(UndefinedError("'x' is undefined")) == "'x' is undefined"
    assert _failure(SecurityError("no")) == "unsafe template operation: no"
    assert _failure(RecursionError("deep")) == "template recursion is too deep"
    assert _failure(MemoryError()) == "template ran out of memory"
    assert _failure(KeyError()) == "template error: KeyError"  # no message: the kind alone
    assert _failure(ValueError("bad")) == "template error: ValueError: bad"


@pytest.mark.parametrize("strategy", ["slim", "baked"])
def test_a_render_result_carries_what_the_build_needs(make_project: MakeProject, strategy: str) -> None:
    """The slim image's build context also carries the bootstrap modules; a baked one does not.
    The committed files are the Dockerfile of the strategy and the .dockerignore."""
    config = BASE_CONFIG.replace("strategy: slim", f"strategy: {strategy}")
    result = render_project(load_config(make_project(config) / "rpdeploy.yaml", None, {}), IMAGE)
    assert (result.dockerfile, result.committed, result.image) == (
        f"Dockerfile.{strategy}",
        (f"Dockerfile.{strategy}", ".dockerignore"),
        IMAGE,
    )
    assert result.context_files == (bootstrap_files() if strategy == "slim" else {})
    assert result.context_files or strategy == "baked"


def test_what_a_dockerfile_template_sees(make_project: MakeProject) -> None:
    """Exactly what shapes the image: the handler folder with one slash (``srcX/``: only the
    slash is taken off), the bootstrap's places, and the installer for a baked image only."""
    config = BASE_CONFIG.replace("  path: worker\n", '  path: "srcX/"\n')
    files = {"srcX/handler.py": "print('hi')\n"}
    expected = {
        "config_file": "rpdeploy.yaml",
        "base_image": "127.0.0.1:5000/python:3.11-slim-local",
        "system_packages": [],
        "workdir": "/app",
        "handler_src": "srcX/",
        "requirements_src": "worker/requirements.txt",
        "command": ["python3", "-u", "/app/handler.py"],
        "bootstrap_src": ".rpdeploy/runtime/",
        "bootstrap_dest": "/opt/rpdeploy/rpdeploy_runtime",
        "runtime_requirements": "/opt/rpdeploy/requirements.txt",
    }
    root = make_project(config, name="slim", files=files)
    assert _dockerfile_context(load_config(root / "rpdeploy.yaml", None, {})) == expected
    root = make_project(config.replace("strategy: slim", "strategy: baked"), name="baked", files=files)
    assert _dockerfile_context(load_config(root / "rpdeploy.yaml", None, {})) == {
        **expected,
        "installer": "pip",
    }


def test_a_mapping_key_is_weighed_one_level_below_its_mapping() -> None:
    """A key sits as deep as its value: a key nested to the depth limit exactly passes, one
    level more is refused."""

    def nested(levels: int) -> Any:
        value: Any = "x"
        for _ in range(levels):
            value = (value,)
        return value

    assert growth.weight({nested(growth.MAX_DEPTH - 1): 1}) > 0
    with pytest.raises(SecurityError, match=f"nested over {growth.MAX_DEPTH} levels"):
        growth.weight({nested(growth.MAX_DEPTH): 1})


def test_a_generator_is_refused_by_what_its_items_weigh_together() -> None:
    """Each item is far under the limit; together they are over it."""
    items = (("x" * (growth.MAX_SIZE // 4)) for _ in range(8))
    with pytest.raises(SecurityError, match="the items would make"):
        growth.materialize(items, "the items")


def test_only_percent_formats_a_string_left_operand(tmp_path: Path) -> None:
    """The format-width bound is for ``%``: another intercepted operator on the same text is
    Python's own error (a str has no power), not a format refusal."""
    env = make_environment(tmp_path)
    reset_budget()
    with pytest.raises(TypeError, match="unsupported operand"):
        env.from_string("{{ '%1234567d' ** 2 }}").render()


def test_an_update_body_runpod_would_refuse_is_named_as_the_update_file() -> None:
    with pytest.raises(RenderError) as caught:
        endpoint_spec.update_request({"type": "QUEUE", "bogus": 1})
    assert str(caught.value) == (
        "endpoint.update.json: RunPod would refuse this body:"
        " $: Unevaluated properties are not allowed ('bogus' was unexpected)"
    )


def test_a_root_layout_handler_started_as_a_module_copies_its_package_and_runs_it(
    make_project: MakeProject,
) -> None:
    """``handler.module`` in the root layout: the CMD is ``python3 -u -m <module>`` and the
    allowlist lets in the module's top-level package, not a piece of its dotted name."""
    config = BASE_CONFIG.replace(
        "handler:\n  path: worker\n  file: handler.py\n",
        'handler:\n  path: "."\n  file: handler.py\n  module: app.main\n',
    ).replace("requirements: worker/requirements.txt", "requirements: requirements.txt")
    # A namespace package (no __init__.py): only handler.module lets it in, not the local-package scan.
    root = make_project(config, files={"handler.py": "", "requirements.txt": "six\n", "app/main.py": ""})
    files = render_project(load_config(root / "rpdeploy.yaml", None), IMAGE).files
    assert 'CMD ["python3", "-u", "-m", "app.main"]' in files["Dockerfile.slim"]
    allowed = [line for line in files[".dockerignore"].splitlines() if line.startswith("!")]
    assert "!app" in allowed
    assert "!main" not in allowed
    assert "!app.main" not in allowed


INCLUDES_SUB = (
    '{% extends "builtin/Dockerfile.slim.j2" %}'
    '{% block environment %}{% include "sub/secret.j2" %}{% endblock %}'
)


def test_a_template_reached_through_a_linked_folder_out_of_the_project_is_refused(
    make_project: MakeProject, tmp_path: Path
) -> None:
    """The template file itself is no link, but the folder it sits in links out of the project:
    still refused, before Jinja reads it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.j2").write_text("SECRET\n")
    root = make_project(
        BASE_CONFIG,
        files={"templates/Dockerfile.slim.j2": INCLUDES_SUB},
    )
    (root / "templates" / "sub").symlink_to(outside)
    with pytest.raises(OutsideProject):
        render_project(load_config(root / "rpdeploy.yaml", None), IMAGE)


def test_every_problem_of_a_refused_body_is_listed() -> None:
    with pytest.raises(RenderError) as caught:
        endpoint_spec.update_request({"type": "QUEUE", "bogus": 1, "templateId": 5})
    assert str(caught.value) == (
        "endpoint.update.json: RunPod would refuse this body: templateId: 5 is not of type 'string';"
        " $: Unevaluated properties are not allowed ('bogus', 'templateId' were unexpected)"
    )


def test_a_runtime_setting_copying_a_runpod_secret_becomes_its_reference(make_project: MakeProject) -> None:
    """runtime.s3.bucket interpolated from a runpod-secret's variable goes into the endpoint env
    (RPDEPLOY_S3_BUCKET) as the secret's reference, like an endpoint.env copy, never the value."""
    config = BASE_CONFIG.replace(
        "  requirements: worker/requirements.txt\n",
        "  requirements: worker/requirements.txt\n  s3: {bucket: '${AWS_ACCESS_KEY_ID}'}\n",
    )
    loaded = load_config(make_project(config) / "rpdeploy.yaml", None, {"AWS_ACCESS_KEY_ID": "envs-bucket"})
    body = json.loads(render_project(loaded, IMAGE).files["build/rpdeploy/default/endpoint.create.json"])
    assert body["env"]["RPDEPLOY_S3_BUCKET"] == "{{ RUNPOD_SECRET_demo_aws_access_key_id }}"


def test_render_checks_the_create_body_itself_for_a_config_built_without_validation(
    make_project: MakeProject,
) -> None:
    """Render refuses what RunPod would refuse even when the config skipped validation: an
    idleTimeout given on an endpoint scaling on REQUEST_COUNT (config validation says the same)."""
    config = BASE_CONFIG.replace(
        "{type: QUEUE_DELAY, queueDelay: 4}", "{type: REQUEST_COUNT, requestCount: 3}"
    )
    loaded = load_config(make_project(config.replace("idleTimeout: 5}", "}")) / "rpdeploy.yaml", None)
    workers = loaded.config.endpoint.workers.model_copy(update={"idle_timeout": 5})
    unchecked = loaded.config.model_copy(
        update={"endpoint": loaded.config.endpoint.model_copy(update={"workers": workers})}
    )
    with pytest.raises(RenderError) as caught:
        endpoint_spec.create_request(unchecked, None, IMAGE)
    assert str(caught.value) == (
        "endpoint.create.json: RunPod would refuse this body: workers.idleTimeout: not applicable to"
        " QUEUE endpoints scaling on REQUEST_COUNT (RunPod rejects it)"
    )


def test_ports_registry_and_excluded_cards_reach_the_create_body(make_project: MakeProject) -> None:
    config = BASE_CONFIG.replace(
        "  gpu:\n    pools: [ADA_24]\n",
        "  gpu:\n    pools: [AMPERE_16]\n    excludedTypes: [NVIDIA RTX A4000]\n"
        "  ports: [8000/http, 22/tcp]\n  registry: cred-123\n",
    )
    loaded = load_config(make_project(config) / "rpdeploy.yaml", None)
    body = endpoint_spec.create_request(loaded.config, None, IMAGE)
    assert body["ports"] == ["8000/http", "22/tcp"]
    assert body["registry"] == "cred-123"
    assert body["gpu"]["excludedTypes"] == ["NVIDIA RTX A4000"]


def test_a_pool_the_vendored_catalog_does_not_know_is_rendered_not_refused(make_project: MakeProject) -> None:
    """Catalog problems only warn (RunPod's live catalog may know a pool ours does not)."""
    config = BASE_CONFIG.replace("pools: [ADA_24]", "pools: [ADA_24, FUTURE_96]")
    loaded = load_config(make_project(config) / "rpdeploy.yaml", None)
    body = endpoint_spec.create_request(loaded.config, None, IMAGE)
    assert body["gpu"]["pools"] == ["ADA_24", "FUTURE_96"]


def test_a_minimum_cuda_version_and_a_fractional_queue_delay_reach_the_create_body(
    make_project: MakeProject,
) -> None:
    config = BASE_CONFIG.replace(
        "    pools: [ADA_24]\n", "    pools: [ADA_24]\n    minCudaVersion: '12.4'\n"
    ).replace("queueDelay: 4}", "queueDelay: 2.5}")
    loaded = load_config(make_project(config) / "rpdeploy.yaml", None)
    body = endpoint_spec.create_request(loaded.config, None, IMAGE)
    assert body["gpu"]["minCudaVersion"] == "12.4"
    assert body["scaling"] == {"type": "QUEUE_DELAY", "queueDelay": 2.5}
