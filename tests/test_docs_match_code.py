"""README and docs/*.md against the code: commands, options, file names and plain statements.

Docs drift silently (docs/emulator.md said `/v2/catalog/*` was not served while it
was). Every `rpdeploy ...` command line in a code block or inline code is parsed
against the real click tree; every repository path the docs name must exist.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from deploy.cli.main import cli
from tests.conftest import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
#: `rpdeploy` followed by words, up to the end of the inline code or the line (comments cut).
COMMAND_LINE = re.compile(r"(?:^|`|\$ |&& |\| )(rpdeploy(?: [^`#|&;\n]*)?)")


def _command_lines(text: str) -> list[str]:
    found: list[str] = []
    for block in re.findall(r"```(?:sh|bash|console)?\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            found.extend(m.strip() for m in COMMAND_LINE.findall(line.split(" #")[0]))
    found.extend(m.strip() for m in re.findall(r"`(rpdeploy [^`]*)`", text))
    # Only the rpdeploy part of a pipeline (`rpdeploy push -o json | jq -r .data.image`).
    return [re.split(r"\s(?:\||&&|;)", line)[0].strip() for line in found]


def _resolve(words: list[str]) -> tuple[click.Command, list[str]]:
    """The (sub)command the words name and the words left for its options."""
    command: click.Command = cli
    ctx = click.Context(cli)
    rest = list(words)
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        sub = command.get_command(ctx, rest[0])
        if sub is None:
            break
        command, rest = sub, rest[1:]
    return command, rest


def _option_names(command: click.Command) -> set[str]:
    names = {"--help", "-h"}
    for param in command.params:
        names.update(getattr(param, "opts", []))
        names.update(getattr(param, "secondary_opts", []))
    return names


def _documented() -> list[tuple[str, str]]:
    return [(doc.name, line) for doc in DOCS for line in _command_lines(doc.read_text())]


def test_the_docs_show_commands() -> None:
    assert len(_documented()) > 20


@pytest.mark.parametrize(("doc", "line"), _documented())
def test_every_documented_command_and_option_exists(doc: str, line: str) -> None:
    try:
        words = shlex.split(line.replace("…", "x"))[1:]
    except ValueError:
        words = line.split()[1:]
    command, rest = _resolve(words)
    if isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        pytest.fail(f"{doc}: `{line}`: no command {rest[0]!r}")
    # Root options (--output, --debug) are accepted by every command too.
    known = _option_names(command) | _option_names(cli)
    for word in rest:
        if word.startswith("-") and word not in ("-", "--"):
            assert word.split("=")[0] in known, f"{doc}: `{line}`: {command.name} has no option {word}"


def test_every_repository_path_the_docs_name_exists() -> None:
    roots = ("deploy/", "templates/", "worker/", "tests/", "scripts/", "bench/", "docs/")
    missing = []
    for doc in DOCS:
        for path in re.findall(r"`([\w./-]+)`", doc.read_text()):
            if path.startswith(roots) and "<" not in path and not (REPO / path).exists():
                missing.append(f"{doc.name}: {path}")
    assert missing == []


def test_docs_name_no_file_outside_the_repository() -> None:
    """Every relative link and every Markdown file a doc names resolves inside this repository.

    A user's clone has nothing beside it, so a doc that sends readers to a file outside the
    repository (a reference folder, another checkout) is a broken doc.
    """
    docs = [*DOCS, *sorted((REPO / "deploy").rglob("README.md"))]
    broken = []
    for doc in docs:
        text = doc.read_text()
        links = re.findall(r"\]\(([^)#\s]+)", text)
        named = re.findall(r"`([\w./-]+\.md)`", text)
        for target in [t for t in links if "://" not in t and not t.startswith("mailto:")]:
            resolved = (doc.parent / target).resolve()
            if not resolved.is_relative_to(REPO) or not resolved.exists():
                broken.append(f"{doc.relative_to(REPO)}: link {target}")
        for name in named:
            if not any(REPO.rglob(Path(name).name)):
                broken.append(f"{doc.relative_to(REPO)}: names {name}")
    assert broken == []


def test_the_catalog_is_not_listed_as_not_served() -> None:
    text = (REPO / "docs" / "emulator.md").read_text()
    not_emulated = text.split("## Not emulated", 1)[1]
    assert "`/v2/catalog/*`" not in not_emulated
    assert "/v2/catalog/gpus" in text


def test_readme_says_the_demo_is_the_release_and_the_slim_image_runs_under_the_emulator() -> None:
    text = " ".join((REPO / "README.md").read_text().split())
    assert "make demo # the whole release of the reference worker against the local stack" in text
    assert "runs `rpdeploy release --target local --promote` for the reference worker" in text
    assert "The slim image runs under the emulator" in text
    assert "cannot run under the emulator" not in text
