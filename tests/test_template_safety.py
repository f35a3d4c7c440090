"""Rendering's security promises, each with a test that fails when its protection is removed.

The promises (deploy.render): the ``checked`` filter passes only what its pattern allows;
templates run in Jinja's (bounded) sandbox; an undefined name is an error, never empty
text (``StrictUndefined``); endpoint env values are data that Jinja never evaluates; and
``dockerfile_env`` makes any one-line value literal. Generated inputs here draw the
characters template and interpolation syntax is made of (``{{``, ``{%``, ``{#``, ``${``,
``$$``), which random text almost never contains, and ``@example`` pins the worst ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from jinja2 import UndefinedError
from jinja2.exceptions import SecurityError

from deploy.config.patterns import CONTROL_CHARS, FORBIDDEN_CHARS
from deploy.errors import RenderError
from deploy.render.environment import make_environment
from deploy.render.filters import CHECKS, checked, dockerfile_env
from tests.conftest import BASE_CONFIG, MakeProject
from tests.test_render_properties import render_all, write_project

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
Run = Callable[..., Result]
IMAGE = "127.0.0.1:5000/acme/demo-worker:sha-0000000"

#: The pieces of Jinja and of config interpolation syntax, whole and in halves.
SYNTAX = ["{{", "}}", "{%", "%}", "{#", "#}", "${", "$$", "$", "{", "}", "%", "#", "\\", '"', "'"]
#: Complete constructs that would evaluate if anything rendered them as a template.
CONSTRUCTS = [
    "{{ 7 * 7 }}",
    "{{ RUNPOD_SECRET_hf }}",
    "{% if true %}evaluated{% endif %}",
    "{# hidden #}",
    "{{ ''.__class__ }}",
    "{{ template_name }}",
    "${HOME}",
    "$${HOME}",
]
#: One line of text a config value can hold, drawn mostly from template/interpolation syntax.
syntax_text = st.lists(
    st.one_of(
        st.sampled_from(SYNTAX + CONSTRUCTS),
        st.text(st.characters(blacklist_categories=["Cc", "Cs"]), max_size=4),
    ),
    min_size=1,
    max_size=8,
).map("".join)


def one_error_line(result: Result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr
    assert lines, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    return lines[0]


def refused_line(make_project: MakeProject, run_cli: Run, body: str) -> str:
    """Render a project whose Dockerfile.slim.j2 override is ``body`` on line 2; the one error
    line it must fail with (exit 2, nothing written)."""
    root = make_project(files={"templates/Dockerfile.slim.j2": f"# line 1\n{body}\n"})
    result = run_cli("render", "--image", IMAGE, cwd=root)
    assert result.exit_code == 2, result.output
    assert not (root / "Dockerfile.slim").exists()
    return one_error_line(result)


# ---- checked: nothing that does not match its pattern gets through


#: Per check, values its pattern must refuse: shell, Dockerfile and template syntax.
REFUSED = {
    "image": ["python:3.11; rm -rf /", "python $(id)", "{{ x }}", "a b", "python:3.11\nRUN evil"],
    "apt_package": ["ffmpeg; reboot", "-oAPT::x=1", "curl|sh", "{% x %}", "a b"],
    "relative_path": ["../etc", "/etc/passwd", "a b", "$(id)", "${HOME}"],
    "ignore_pattern": ["!keep", "../x", "/abs", "a b", "{{x}}"],
    "container_path": ["relative", "/app;id", "/app dir", "/$HOME", "/app\n"],
    "env_name": ["1ABC", "A-B", "A B", "A=B", "$A"],
    "tag": ["-x", "a b", "a:b", "a/b", "{{x}}"],
}


def test_every_check_has_refused_samples() -> None:
    assert set(REFUSED) == set(CHECKS)


@pytest.mark.parametrize(("kind", "value"), [(k, v) for k, values in REFUSED.items() for v in values])
def test_checked_refuses_what_its_pattern_does_not_match(tmp_path: Path, kind: str, value: str) -> None:
    with pytest.raises(RenderError, match=f"not a valid {kind.replace('_', ' ')}"):
        checked(value, kind)
    # And through the real environment, as a template calls it (the guarded filter).
    template = make_environment(tmp_path).from_string("{{ value | checked(kind) }}")
    with pytest.raises(RenderError, match="refusing to render"):
        template.render(value=value, kind=kind)


@SETTINGS
@given(kind=st.sampled_from(sorted(CHECKS)), value=syntax_text)
@example(kind="image", value="{{ 7 * 7 }}")
@example(kind="relative_path", value="${HOME}")
@example(kind="apt_package", value="$$")
def test_checked_passes_only_full_matches(kind: str, value: str) -> None:
    if CHECKS[kind].fullmatch(value):
        assert checked(value, kind) == value
    else:
        with pytest.raises(RenderError):
            checked(value, kind)


def test_checked_passes_valid_values_unchanged() -> None:
    assert checked("python:3.11-slim", "image") == "python:3.11-slim"
    assert checked("worker/", "relative_path") == "worker/"
    with pytest.raises(RenderError, match="unknown check 'nope'"):
        checked("x", "nope")


# ---- the sandbox: a template cannot reach Python's internals


@pytest.mark.parametrize(
    "body",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ joiner.__init__.__globals__['os'] }}",
        "{{ namespace.__init__.__globals__ }}",
        "{{ template_name.__class__ }}",
    ],
)
def test_templates_cannot_reach_python_internals(make_project: MakeProject, run_cli: Run, body: str) -> None:
    line = refused_line(make_project, run_cli, body)
    assert line.startswith("error: templates/Dockerfile.slim.j2:2: unsafe template operation:"), line


def test_sandbox_refuses_attribute_access_through_the_environment(tmp_path: Path) -> None:
    env = make_environment(tmp_path)
    with pytest.raises(SecurityError):
        env.from_string("{{ x.__class__.__subclasses__() }}").render(x=1)
    # The immutable sandbox: a template cannot change a list it is given.
    given_list = [1]
    with pytest.raises(SecurityError):
        env.from_string("{{ items.append(2) }}").render(items=given_list)
    assert given_list == [1]


# ---- StrictUndefined: a typo is an error, never empty text


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ("{{ base_imag }}", "base_imag"),
        ("{% if base_imag %}x{% endif %}", "base_imag"),
        ("{{ base_imag ~ 'x' }}", "base_imag"),
        ("{% for p in system_packagez %}{{ p }}{% endfor %}", "system_packagez"),
    ],
)
def test_an_undefined_name_is_an_error(make_project: MakeProject, run_cli: Run, body: str, name: str) -> None:
    line = refused_line(make_project, run_cli, body)
    assert line.startswith(f"error: templates/Dockerfile.slim.j2:2: '{name}' is undefined"), line


def test_undefined_names_fail_in_the_environment_itself(tmp_path: Path) -> None:
    env = make_environment(tmp_path)
    for body in ("{{ missing }}", "{% if missing %}{% endif %}", "{{ missing | length }}", "{{ x.missing }}"):
        with pytest.raises(UndefinedError):
            env.from_string(body).render(x={})


# ---- endpoint env values are data: never rendered as templates


@SETTINGS
@given(value=syntax_text.filter(lambda text: not FORBIDDEN_CHARS.search(text)))
@example(value="{{ 7 * 7 }}")
@example(value="{{ RUNPOD_SECRET_hf }}")
@example(value="{% if true %}evaluated{% endif %}")
@example(value="{# hidden #}x")
@example(value="{{ template_name }}")
@example(value="${HOME}")
@example(value="$${HOME}")
@example(value="$$")
@example(value="{{ ''.__class__ }}")
def test_endpoint_env_values_with_template_syntax_arrive_verbatim(tmp_path: Path, value: str) -> None:
    quoted = json.dumps(value, ensure_ascii=False).replace("$", "$$")  # `$$`: the config's literal `$`
    config = BASE_CONFIG.replace("  scaling:", f"  env:\n    ANY_VALUE: {quoted}\n  scaling:")
    files = render_all(write_project(tmp_path, config))
    for name in ("endpoint.create.json", "endpoint.update.json"):
        spec = json.loads(next(v for k, v in files.items() if k.endswith(name)))
        assert spec["env"]["ANY_VALUE"] == value


# ---- dockerfile_env: every character it escapes, pinned


def _undo_docker_escapes(quoted: str) -> str:
    """What Docker stores for a double-quoted ENV value: ``\\x`` is ``x``; a bare ``"`` or ``$``
    would end the value or expand, so neither may appear unescaped."""
    assert quoted.startswith('"')
    assert quoted.endswith('"')
    body, decoded, i = quoted[1:-1], [], 0
    while i < len(body):
        if body[i] == "\\":
            assert body[i + 1] in '\\"$', body
            decoded.append(body[i + 1])
            i += 2
        else:
            assert body[i] not in '"$', body
            decoded.append(body[i])
            i += 1
    return "".join(decoded)


@given(
    value=st.lists(
        st.one_of(st.sampled_from(["$", '"', "\\", "${", "$$", "{{", "\\$", '\\"', "\\\\"]), st.characters()),
        min_size=1,
        max_size=20,
    )
    .map("".join)
    .filter(lambda text: not CONTROL_CHARS.search(text))
)
@example(value="$")
@example(value='"')
@example(value="\\")
@example(value="${PATH}")
@example(value="$$")
@example(value='a\\"b')
@example(value="\\$HOME")
@example(value="ends with backslash\\")
def test_dockerfile_env_value_is_literal_for_every_escaped_character(value: str) -> None:
    assert _undo_docker_escapes(dockerfile_env(value)) == value


@pytest.mark.parametrize("value", ["a\nRUN evil", "\r", "a\x00", "\u2028", "\x1b[31m", "\u202e"])
def test_dockerfile_env_refuses_what_cannot_be_one_instruction(value: str) -> None:
    with pytest.raises(RenderError, match="an ENV value contains a newline or control character"):
        dockerfile_env(value)


def test_dockerfile_env_exact_escapes() -> None:
    assert dockerfile_env('a$b"c\\d') == '"a\\$b\\"c\\\\d"'
