"""Render behaviour that mutation testing (`make mutation`, docs/quality.md) showed no test pinned.

The security promises of rendering (strict filters, the sandbox, strict undefined, env values
never evaluated as templates) each get a test that fails when the protection is removed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploy.config import load_config
from deploy.errors import RenderError
from deploy.render import render_project
from deploy.render.filters import canonical_json, checked, dockerfile_env, exec_form, shell_quote
from tests.conftest import BASE_CONFIG, MakeProject

IMAGE = "127.0.0.1:5000/acme/demo-worker:sha-0123456789ab"


def render(root: Path) -> dict[str, str]:
    return render_project(load_config(root / "rpdeploy.yaml", None, {}), IMAGE).files


def render_error(make_project: MakeProject, template: str, config: str = BASE_CONFIG) -> str:
    root = make_project(config, files={"templates/Dockerfile.slim.j2": template})
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
