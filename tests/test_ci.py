"""`deploy.ci`: step outputs for GitHub Actions, read back the way the runner reads them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deploy.ci import format_outputs, secret_values, write_github_output
from deploy.errors import UsageError


def parse_outputs(text: str) -> dict[str, str]:
    """GitHub's reader of the output file (actions/runner, SetOutputFileCommand), in Python."""
    outputs: dict[str, str] = {}
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line:
            continue
        heredoc = re.fullmatch(r"([^=<]+)<<(.+)", line)
        if heredoc:
            name, delimiter = heredoc.groups()
            end = lines.index(delimiter, index)
            outputs[name] = "\n".join(lines[index:end])
            index = end + 1
        else:
            name, _, value = line.partition("=")
            outputs[name] = value
    return outputs


def test_single_line_values_use_name_equals_value(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.write_text("before=1\n")
    written = write_github_output(
        {"image": "r/x@sha256:ab", "digest": "sha256:ab"}, {"GITHUB_OUTPUT": str(target)}
    )
    assert written == target
    assert target.read_text() == "before=1\nimage=r/x@sha256:ab\ndigest=sha256:ab\n"


@given(st.text(st.characters(exclude_categories=["Cs"])).filter(lambda v: "\r" not in v))
def test_any_value_reads_back_exactly(value: str) -> None:
    assert parse_outputs(format_outputs({"notes": value, "after": "x"})) == {"notes": value, "after": "x"}


def test_multi_line_value_uses_a_delimiter_not_in_the_value() -> None:
    text = format_outputs({"notes": "line 1\nEOF\nghadelimiter_\nline 4"})
    first = text.split("\n")[0]
    assert first.startswith("notes<<ghadelimiter_")
    delimiter = first.partition("<<")[2]
    assert delimiter not in "line 1\nEOF\nghadelimiter_\nline 4"
    assert parse_outputs(text) == {"notes": "line 1\nEOF\nghadelimiter_\nline 4"}


def test_not_in_github_actions_writes_nothing(tmp_path: Path) -> None:
    assert write_github_output({"image": "x"}, {}) is None
    assert list(tmp_path.iterdir()) == []


def test_a_secret_never_goes_to_the_output_file(tmp_path: Path) -> None:
    target = tmp_path / "out"
    environ = {"GITHUB_OUTPUT": str(target), "AWS_SECRET_ACCESS_KEY": "s3cr3t-value"}
    secrets = secret_values(["AWS_SECRET_ACCESS_KEY", "UNSET"], environ)
    assert secrets == ["s3cr3t-value"]
    with pytest.raises(UsageError) as caught:
        write_github_output({"image": "ok", "leak": "x-s3cr3t-value-y"}, environ, secrets=secrets)
    assert "'leak' contains the value of a secret" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)
    assert not target.exists()  # nothing half-written: not even the clean value


def test_unwritable_output_file_is_one_line_naming_it(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"GITHUB_OUTPUT=.*/missing/out: cannot append: No such file"):
        write_github_output({"image": "x"}, {"GITHUB_OUTPUT": str(tmp_path / "missing" / "out")})


def test_output_names_are_checked() -> None:
    with pytest.raises(ValueError, match="not a GitHub output name"):
        format_outputs({"bad name\n": "x"})
