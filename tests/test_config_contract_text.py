"""Config text rules from the hostile review (issue 7 §2): invisible characters, alias size,
every problem reported, no class names, one escaping. Runs the real loader and CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from deploy.config import load_config
from deploy.config.patterns import quoted
from deploy.config.yaml_source import MAX_ALIAS_CHARS, parse_yaml
from deploy.errors import ConfigError
from deploy.runpod.endpoint import request_problems
from deploy.runpod.text import escaped, hidden_char
from tests.conftest import BASE_CONFIG, MakeProject

ENV = "  type: QUEUE"  # endpoint.type, line 14; text inserted after it starts on line 15

#: One member of each kind of character a name or identifier must not hold.
INVISIBLE = {
    "zero-width-space": "\u200b",
    "byte-order-mark": "\ufeff",
    "no-break-space": "\u00a0",
    "ideographic-space": "\u3000",
    "variation-selector-16": "\ufe0f",
    "variation-selector-supplement": "\U000e0100",
    "tag-latin-a": "\U000e0041",
    "cancel-tag": "\U000e007f",
    "zero-width-joiner": "\u200d",
    "word-joiner": "\u2060",
    "soft-hyphen": "\u00ad",
    "hangul-filler": "\u3164",
    "private-use": "\ue000",
    "unassigned": "\U000e0080",
    "paragraph-separator": "\u2029",
    "mongolian-vowel-separator": "\u180e",
}


def edit(old: str, new: str) -> str:
    assert old in BASE_CONFIG, old
    return BASE_CONFIG.replace(old, new, 1)


def yaml_escape(char: str) -> str:
    """A YAML double-quoted escape for ``char`` (the file itself stays plain ASCII)."""
    return f"\\U{ord(char):08x}"


@pytest.mark.parametrize("char", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_invisible_characters_are_hidden(char: str) -> None:
    assert hidden_char(f"ab{char}c") == f"U+{ord(char):04X}"


@pytest.mark.parametrize("text", ["my-endpoint", "Café worker 2", "日本語", "a b", "emoji 😀"])
def test_visible_text_passes(text: str) -> None:
    assert hidden_char(text) is None


@pytest.mark.parametrize("char", INVISIBLE.values(), ids=INVISIBLE.keys())
@pytest.mark.parametrize(
    ("where", "old", "new", "line"),
    [
        ("endpoint.name", ENV, f'{ENV}\n  name: "ab%sc"', 15),
        ("handler.command", "  file: handler.py", '  file: handler.py\n  command: "python3 x%s.py"', 13),
        (
            "endpoint.gpu.excludedTypes[0]",
            "    pools: [ADA_24]",
            '    pools: [ADA_24]\n    excludedTypes: ["a%sb"]',
            17,
        ),
    ],
    ids=["endpoint-name", "handler-command", "excluded-type"],
)
def test_config_refuses_invisible_characters_in_names_and_commands(
    make_project: MakeProject, char: str, where: str, old: str, new: str, line: int
) -> None:
    root = make_project(edit(old, new % yaml_escape(char)))
    with pytest.raises(ConfigError) as caught:
        load_config(root / "rpdeploy.yaml", environ={})
    assert f"rpdeploy.yaml:{line}: {where}: " in str(caught.value)
    assert f"(U+{ord(char):04X})" in str(caught.value)


def test_a_huge_string_aliased_many_times_is_refused_fast(tmp_path: Path) -> None:
    """1 MB string, 2,000 aliases: 2 GB once expanded. Refused from the node graph (no timing asserted)."""
    big = "x" * 1_000_000
    keys = "".join(f"    K{i}: *s\n" for i in range(2_000))
    text = f'x-s: &s "{big}"\nendpoint:\n  env:\n{keys}'
    with pytest.raises(
        ConfigError, match=r"rpdeploy\.yaml:\d+: .*aliases expand to more than 10,000,000 characters"
    ):
        parse_yaml(text, tmp_path / "rpdeploy.yaml")


def test_aliases_within_the_character_cap_are_fine(tmp_path: Path) -> None:
    value = "y" * (MAX_ALIAS_CHARS // 4)
    text = f'a: &s "{value}"\nb: [*s, *s, *s]\n'
    assert parse_yaml(text, tmp_path / "rpdeploy.yaml").data["b"] == [value] * 3


def test_an_env_value_beyond_what_a_process_takes_is_one_clear_line(make_project: MakeProject) -> None:
    root = make_project(edit(ENV, f'{ENV}\n  env:\n    BIG: "{"x" * 131_072}"'))
    with pytest.raises(ConfigError) as caught:
        load_config(root / "rpdeploy.yaml", environ={})
    assert str(caught.value).splitlines() == [
        "rpdeploy.yaml:16: endpoint.env.BIG: is 131077 bytes with its name; a process takes at most 131072"
    ]


def test_a_control_character_key_does_not_hide_other_problems(
    make_project: MakeProject, run_cli: Callable[..., Result]
) -> None:
    root = make_project(edit(ENV, f'{ENV}\n  env:\n    "A\\eB": x\n    "A B": y\n  timeout: soon'))
    result = run_cli("config", "validate", cwd=root)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert (
        "error: rpdeploy.yaml:16: endpoint.env.A\\x1bB: "
        "key contains a newline, control or invisible character (U+001B)" in lines
    )
    assert any(line.startswith("error: rpdeploy.yaml:17: endpoint.env.A B") for line in lines), lines
    assert any(line.startswith("error: rpdeploy.yaml:18: endpoint.timeout: ") for line in lines), lines
    assert not any("\\x1b" in line and "A\\x1bB.[key]" in line for line in lines)  # reported once


@pytest.mark.parametrize(
    ("value", "kind"),
    [("~", "null"), ("[1, 2]", "a list"), ("text", "a text value")],
)
def test_a_section_that_is_not_a_mapping_names_no_class(
    make_project: MakeProject, run_cli: Callable[..., Result], value: str, kind: str
) -> None:
    start, end = BASE_CONFIG.index("endpoint:\n"), BASE_CONFIG.index("secrets:\n")
    root = make_project(BASE_CONFIG[:start] + f"endpoint: {value}\n" + BASE_CONFIG[end:])
    result = run_cli("config", "validate", cwd=root)
    assert result.exit_code == 2
    # Each environment is checked too (staging's override then has no gpu): the base line first.
    assert result.stderr.splitlines()[0] == (
        f"error: rpdeploy.yaml:13: endpoint: must be a mapping of keys to values, got {kind}"
    )
    assert "EndpointConfig" not in result.output + result.stderr


def test_messages_escape_once(make_project: MakeProject, run_cli: Callable[..., Result]) -> None:
    config = edit(ENV, f'{ENV}\n  name: "a\\e[31mred"').replace(
        "    pools: [ADA_24]", '    pools: [ADA_24]\n    allowedCudaVersions: ["\\u0663"]'
    )
    root = make_project(config)
    result = run_cli("config", "validate", cwd=root)
    assert result.exit_code == 2
    assert "endpoint.name: 'a\\x1b[31mred' contains" in result.stderr
    assert "'\u0663' is not a valid CUDA version" in result.stderr
    assert "\\\\" not in result.stderr  # no doubled backslash anywhere
    assert "\x1b" not in result.stderr


def test_quoting_is_repr_free() -> None:
    assert quoted("it's C:\\dir") == "'it's C:\\dir'"
    assert escaped("a\x1b\u200b\U000e0041") == "a\\x1b\\u200b\\U000e0041"


def test_the_contract_names_each_text_problem_by_its_json_path() -> None:
    body = {
        "name": "a\u202eb",
        "type": "QUEUE",
        "image": "img:1",
        "gpu": {"pools": ["ADA_24"]},
        "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4},
        "env": {"A=B": "x", "OK": "a\x00b"},
        "args": "python\x00",
    }
    lines = [p.json_line() for p in request_problems("CreateEndpointRequest", body)]
    assert lines == [
        "$.args: contains a NUL character (U+0000), which no command line can hold",
        "$.env.A=B: is not a valid environment variable name (letters, digits and '_', "
        "not starting with a digit)",
        "$.env.OK: value contains a NUL character (U+0000), which no process environment can hold",
        "$.name: contains an invisible or control character (U+202E)",
    ]
    assert all(p.status == 422 for p in request_problems("CreateEndpointRequest", body))
