"""Render behaviour that mutation testing (`make mutation`, docs/quality.md) showed no test pinned.

The security promises of rendering (strict filters, the sandbox, strict undefined, env values
never evaluated as templates) each get a test that fails when the protection is removed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from deploy.config import load_config
from deploy.errors import RenderError
from deploy.render import render_project
from deploy.render.environment import MAX_RANGE, builtin_templates_dir
from deploy.render.filters import canonical_json, checked, dockerfile_env, exec_form, shell_quote
from deploy.render.project import _where, check_drift, write_files
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
