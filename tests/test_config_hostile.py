"""Hostile rpdeploy.yaml documents: each is exactly one `file:line: path: message` line, exit 2.

Every kind from the hardening issue (alias bombs, recursive aliases, non-standard tags,
deep nesting, huge numbers, non-finite numbers, control and bidi characters, commands
render could not split, malformed references) has several members here; each must end
in one error line with the right line number, no traceback, and nothing written (both
`config validate` and `render`, which would write files, are run).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploy.config import load_config, yaml_source
from deploy.config.yaml_source import parse_yaml
from deploy.errors import ConfigError
from tests.conftest import BASE_CONFIG, MakeProject

#: Characters that must never reach a terminal raw from a config (they are shown escaped).
UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")

#: BASE_CONFIG has 25 lines; documents appended to it start on line 26.
END = len(BASE_CONFIG.splitlines()) + 1


def edit(old: str, new: str) -> str:
    assert old in BASE_CONFIG, old
    return BASE_CONFIG.replace(old, new, 1)


def append(text: str) -> str:
    return BASE_CONFIG + text


def bomb(width: int, levels: int) -> str:
    """A billion-laughs document: anchor i holds `width` aliases of anchor i-1."""
    lines = [f"x-l0: &a0 [{', '.join(['lol'] * width)}]"]
    lines += [f"x-l{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


ENV = "  type: QUEUE"  # endpoint.type, line 14; text inserted after it starts on line 15


def env_value(value: str) -> str:
    """An endpoint env entry on line 16 (a YAML double-quoted string)."""
    return edit(ENV, f'{ENV}\n  env:\n    VALUE: "{value}"')


#: (id, document, line of the error, fragment of the message after "rpdeploy.yaml:LINE: ")
HOSTILE: list[tuple[str, str, int, str]] = [
    # --- alias bombs: expansion is capped (the first anchor over the cap is named) ---
    ("bomb-9x9", append(bomb(9, 9)), END + 5, "x-l5: aliases expand to more than 100000 extra values"),
    ("bomb-wide", append(bomb(300, 3)), END + 2, "x-l2: aliases expand to more than 100000 extra values"),
    (
        "bomb-in-mappings",
        append(
            "x-m0: &m0 {a: lol, b: lol, c: lol, d: lol, e: lol, f: lol, g: lol, h: lol, i: lol, j: lol}\n"
            + "".join(
                f"x-m{i}: &m{i} {{{', '.join(f'{k}: *m{i - 1}' for k in 'abcdefghij')}}}\n"
                for i in range(1, 7)
            )
        ),
        END + 4,
        "x-m4: aliases expand to more than 100000 extra values",
    ),
    (
        "alias-chain-too-deep",
        append("x-c0: &c0 [1]\n" + "".join(f"x-c{i}: &c{i} [*c{i - 1}]\n" for i in range(1, 80))),
        END + 63,
        "x-c63: aliases nest values deeper than 64 levels",
    ),
    # --- recursive aliases ---
    (
        "recursive-mapping",
        edit(ENV, f"{ENV}\n  env: &e {{SELF: *e}}"),
        15,
        "endpoint.env.SELF: recursive alias",
    ),
    ("recursive-sequence", append("x-r: &r [1, *r]\n"), END, "x-r[1]: recursive alias"),
    ("recursive-merge", append("x-r: &r {a: 1, <<: *r}\n"), END, "x-r.<<: recursive alias"),
    # --- non-standard tags ---
    (
        "python-name-tag",
        edit("project: demo", "project: !!python/name:os.system demo"),
        2,
        "project: tag !!python/name:os.system is not allowed",
    ),
    (
        "python-apply-on-sequence",
        edit("strategy: slim", "strategy: slim\n  system_packages: !!python/object/apply:os.system [ls]"),
        8,
        "image.system_packages: tag !!python/object/apply:os.system is not allowed",
    ),
    (
        "python-object-in-extension",
        append("x-evil: !!python/object/new:os.system [id]\n"),
        END,
        "x-evil: tag !!python/object/new:os.system is not allowed",
    ),
    (
        "custom-tag",
        env_value("x").replace('"x"', "!env HOME"),
        16,
        "endpoint.env.VALUE: tag !env is not allowed",
    ),
    (
        "empty-int-tag",
        edit("{min: 0,", "{min: !!int ,"),
        17,
        "endpoint.workers.min: '' is not a valid !!int value",
    ),
    (
        "bad-bool-tag",
        edit("strategy: slim", "strategy: slim\n  latest: !!bool maybe"),
        8,
        "'maybe' is not a valid !!bool",
    ),
    ("timestamp-tag", edit("project: demo", "project: !!timestamp 2024-01-01"), 2, "tag !!timestamp"),
    ("binary-tag", edit("project: demo", "project: !!binary ZGVtbw=="), 2, "project: tag !!binary"),
    ("set-tag", edit("pools: [ADA_24]", "pools: !!set {ADA_24}"), 16, "endpoint.gpu.pools: tag !!set"),
    ("omap-tag", edit("pools: [ADA_24]", "pools: !!omap [a: 1]"), 16, "endpoint.gpu.pools: tag !!omap"),
    # --- nesting ---
    (
        "deep-flow-sequence",
        append("x-deep: " + "[" * 5000 + "]" * 5000 + "\n"),
        END,
        "values nested deeper than 64",
    ),
    (
        "deep-flow-mapping",
        append("x-deep: " + "{a: " * 300 + "1" + "}" * 300 + "\n"),
        END,
        "x-deep.a.a: values nested",
    ),
    (
        "deep-block-mapping",
        append("x-deep:\n" + "".join(" " * i + "a:\n" for i in range(1, 80)) + " " * 80 + "b: 1\n"),
        END + 64,
        "x-deep.a.a: values nested deeper than 64 levels",
    ),
    # --- huge and non-finite numbers ---
    (
        "huge-integer",
        edit("{min: 0, max: 2,", "{min: " + "9" * 5000 + ", max: 2,"),
        17,
        "endpoint.workers.min: Unable to parse input string as an integer, exceeded maximum size",
    ),
    (
        "huge-integer-tagged",
        edit("{min: 0, max: 2,", "{min: 0, max: !!int " + "9" * 5000 + ","),
        17,
        "endpoint.workers.max: '99999",
    ),
    (
        "inf-queue-delay",
        edit("queueDelay: 4", "queueDelay: .inf"),
        18,
        "endpoint.scaling.queueDelay: must be a valid number",
    ),
    (
        "inf-word",
        edit("queueDelay: 4", "queueDelay: inf"),
        18,
        "endpoint.scaling.queueDelay: must be a finite number",
    ),
    (
        "nan",
        edit("queueDelay: 4", "queueDelay: nan"),
        18,
        "endpoint.scaling.queueDelay: must be a finite number",
    ),
    ("overflow-float", edit("queueDelay: 4", "queueDelay: 1e999"), 18, "queueDelay: must be a finite number"),
    (
        "tagged-inf",
        edit("queueDelay: 4", "queueDelay: !!float .inf"),
        18,
        "queueDelay: must be a finite number",
    ),
    (
        "budget-inf",
        edit("strategy: slim", "strategy: slim\n  max_compressed_mb: .Inf"),
        8,
        "image.max_compressed_mb: must be a valid number",
    ),
    (
        "budget-nan",
        edit("strategy: slim", "strategy: slim\n  max_compressed_mb: nan"),
        8,
        "image.max_compressed_mb: must be a finite number",
    ),
    (
        "sexagesimal-integer",
        edit("{min: 0,", "{min: 1:30,"),
        17,
        "endpoint.workers.min: must be a valid integer",
    ),
    ("octal-integer", edit("{min: 0,", "{min: 0o17,"), 17, "endpoint.workers.min: must be a valid integer"),
    # --- control and bidi characters, non-ASCII digits ---
    (
        "nul-in-endpoint-name",
        edit(ENV, f'{ENV}\n  name: "demo\\0x"'),
        15,
        "endpoint.name: 'demo\\x00x' contains a",
    ),
    (
        "esc-in-endpoint-name",
        edit(ENV, f'{ENV}\n  name: "\\e[2J"'),
        15,
        "endpoint.name: '\\x1b[2J' contains a",
    ),
    (
        "newline-in-endpoint-name",
        edit(ENV, f'{ENV}\n  name: "a\\nb"'),
        15,
        "endpoint.name: 'a\\x0ab' contains a newline",
    ),
    ("bidi-in-endpoint-name", edit(ENV, f'{ENV}\n  name: "abc\\u202Edef"'), 15, "(U+202E)"),
    ("bidi-isolate-in-name", edit(ENV, f'{ENV}\n  name: "abc\\u2066def"'), 15, "(U+2066)"),
    ("nul-in-env-value", env_value("a\\0b"), 16, "endpoint.env.VALUE: 'a\\x00b' contains a"),
    ("esc-in-env-value", env_value("\\e]0;PWNED\\a"), 16, "endpoint.env.VALUE: "),
    ("bidi-in-env-value", env_value("x\\u202Ey"), 16, "endpoint.env.VALUE: 'x\\u202ey' contains"),
    ("c1-in-env-value", env_value("x\\x85y"), 16, "(U+0085)"),
    ("lone-surrogate", env_value("x\\ud800y"), 16, "(U+D800)"),
    (
        "escape-sequence-key",
        edit(ENV, f'{ENV}\n  env:\n    "\\e]0;PWNED\\a": x'),
        16,
        "endpoint.env.\\x1b]0;PWNED\\x07: key contains a newline, control or invisible character (U+001B)",
    ),
    ("tab-in-repository", edit("acme/demo-worker", '"acme/demo\\tworker"'), 5, "(U+0009)"),
    ("line-separator-in-path", edit("  path: worker", '  path: "wor\\u2028ker"'), 11, "(U+2028)"),
    (
        "arabic-indic-cuda-digits",
        edit("pools: [ADA_24]", 'pools: [ADA_24]\n    allowedCudaVersions: ["١٢.٤"]'),
        17,
        "is not a valid CUDA version",
    ),
    (
        "fullwidth-cuda-digits",
        edit("pools: [ADA_24]", 'pools: [ADA_24]\n    minCudaVersion: "１２.４"'),
        17,
        "is not a valid CUDA version",
    ),
    # --- what render would reject fails at validate ---
    (
        "command-trailing-backslash",
        edit("  file: handler.py", "  file: handler.py\n  command: 'python3 x.py \\'"),
        13,
        "handler.command: cannot be split into arguments (No escaped character)",
    ),
    (
        "command-unbalanced-quote",
        edit("  file: handler.py", '  file: handler.py\n  command: "python3 \'x.py"'),
        13,
        "handler.command: cannot be split into arguments (No closing quotation)",
    ),
    (
        "command-empty",
        edit("  file: handler.py", "  file: handler.py\n  command: '  '"),
        13,
        "handler.command: is empty",
    ),
    # --- interpolation syntax ---
    ("nested-default-unclosed", env_value("${A:-${B}"), 16, "malformed variable reference '${A:-${B}'"),
    (
        "unsupported-operator",
        env_value("${A:?required}"),
        16,
        "malformed variable reference '${A:?required}'",
    ),
    ("digit-variable", env_value("${1X}"), 16, "malformed variable reference '${1X}'"),
    (
        "default-nests-too-deep",
        env_value("${A:-" * 12 + "x" + "}" * 12),
        16,
        "variable defaults nest deeper than 8 levels",
    ),
    (
        "nul-in-environment-override",
        BASE_CONFIG + '      env: {X: "a\\0b"}\n',
        26,
        "environments.staging.endpoint.env.X: 'a\\x00b' contains a",
    ),
    # --- characters YAML itself forbids in a file ---
    ("raw-nul-in-file", edit("project: demo", "project: de\x00mo"), 2, "character U+0000 is not allowed"),
    ("raw-esc-in-file", edit(ENV, f"{ENV}\n  name: \x1b]0;PWNED\x07"), 15, "character U+001B is not allowed"),
    # --- structure ---
    ("merge-non-mapping", append("x-m: {<<: [1, 2]}\n"), END, "x-m.<<: a merge key (<<) takes a mapping"),
    ("null-key", edit(ENV, f"{ENV}\n  ~: x"), 15, "endpoint: keys must be strings, got None"),
    (
        "complex-key",
        edit(ENV, f"{ENV}\n  ? [a, b]\n  : x"),
        15,
        "endpoint: a mapping key must be a plain value",
    ),
    ("null-env-value", edit(ENV, f"{ENV}\n  env: {{A: ~}}"), 15, "endpoint.env.A: must be a string"),
    (
        "tagged-int-env-value",
        edit(ENV, f"{ENV}\n  env: {{A: !!int 5}}"),
        15,
        "endpoint.env.A: must be a string: quote the value",
    ),
]


@pytest.mark.parametrize(
    ("document", "line", "fragment"), [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE]
)
def test_hostile_document_is_one_line_exit_2_nothing_written(
    make_project: MakeProject, run_cli: Callable[..., Result], document: str, line: int, fragment: str
) -> None:
    root = make_project(document)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    for command in (("config", "validate"), ("render",), ("render", "--env", "staging")):
        result = run_cli(*command, cwd=root)
        assert result.exit_code == 2, (command, result.output)
        assert "Traceback" not in result.output
        assert not UNPRINTABLE.search(result.output), repr(result.output)  # shown escaped, never raw
        errors = result.stderr.splitlines()
        assert len(errors) == 1, errors
        assert errors[0].startswith(f"error: rpdeploy.yaml:{line}: "), errors[0]
        assert fragment in errors[0], errors[0]
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def test_the_table_covers_every_kind() -> None:
    assert len(HOSTILE) >= 50
    assert len({c[0] for c in HOSTILE}) == len(HOSTILE)


def test_alias_bomb_is_refused_without_expanding(make_project: MakeProject) -> None:
    """The 1 KB document of the issue: 9 ** 9 values if expanded; refused from the node graph."""
    document = append(bomb(9, 9))
    assert len(document) < 2048
    with pytest.raises(ConfigError, match="alias bomb"):
        load_config(make_project(document) / "rpdeploy.yaml")


def test_invalid_utf8_names_the_line(make_project: MakeProject, run_cli: Callable[..., Result]) -> None:
    root = make_project()
    (root / "rpdeploy.yaml").write_bytes(BASE_CONFIG.encode().replace(b"demo-worker", b"demo-\xffworker"))
    result = run_cli("config", "validate", cwd=root)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["error: rpdeploy.yaml:5: not UTF-8 text (byte 0xff)"]


def test_expansion_cap_counts_only_what_aliases_add(monkeypatch: pytest.MonkeyPatch) -> None:
    """A big file without aliases is fine however many values it has; aliases may add up to the cap."""
    monkeypatch.setattr(yaml_source, "MAX_ALIAS_NODES", 10)
    plain = "".join(f"k{i}: {{a: {i}, b: [{i}, {i}]}}\n" for i in range(50))
    assert len(parse_yaml(plain, Path("rpdeploy.yaml")).data) == 50
    shared = "x: &x [1, 2, 3, 4]\ny: [*x, *x]\n"  # aliases add 10 values: at the cap
    assert parse_yaml(shared, Path("rpdeploy.yaml")).data["y"] == [["1", "2", "3", "4"]] * 2
    with pytest.raises(ConfigError, match=r"rpdeploy\.yaml:1: aliases expand to more than 10 extra"):
        parse_yaml(shared + "z: [*x, *x]\n", Path("rpdeploy.yaml"))


#: Fragments of YAML syntax and of the kinds above, for generated documents.
FRAGMENTS = st.sampled_from(
    [
        "&a ",
        "*a",
        "<<: ",
        "- ",
        ": ",
        "{",
        "}",
        "[",
        "]",
        ",",
        "\n",
        "  ",
        "!!str ",
        "!!int ",
        "!!bool ",
        "!x ",
        "? ",
        "|",
        ">",
        "'",
        '"',
        "${A}",
        "${A:-${B}}",
        "$$",
        "~",
        "3.10",
        ".inf",
        "\\u202e",
        "\\0",
        "x-a",
        "env",
        "endpoint",
        "workers",
        "max",
        "#",
        "---\n",
        "\t",
        "\u202e",
        "a",
        "999999999999999999999999999999",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.lists(FRAGMENTS, max_size=40).map("".join), after_valid_config=st.booleans())
def test_generated_documents_load_or_fail_cleanly(
    make_project: MakeProject, text: str, after_valid_config: bool
) -> None:
    """Whatever the document, loading ends in a config or a ConfigError of `file:line` lines."""
    root = make_project(BASE_CONFIG + text if after_valid_config else text, name=uuid.uuid4().hex)
    problems: list[str] = []
    try:
        load_config(root / "rpdeploy.yaml", "staging" if after_valid_config else None, environ={"A": "x"})
    except ConfigError as exc:
        problems = exc.problems
    assert all(line.startswith("rpdeploy.yaml") for line in problems), problems
    assert not any(UNPRINTABLE.search(line) for line in problems), problems
