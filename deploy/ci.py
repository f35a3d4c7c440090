"""CI integration: step outputs for GitHub Actions (``$GITHUB_OUTPUT``).

GitHub's file-command format (docs.github.com, "Workflow commands for GitHub Actions",
"Setting an output parameter" and "Multiline strings", read 2026-11): each output is
``name=value`` on one line, or, for a value that spans lines,

    name<<DELIMITER
    value
    DELIMITER

where the delimiter appears in neither. The runner refuses outputs that contain a
secret; rpdeploy does not even write them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

from deploy.errors import UsageError

#: The variable GitHub Actions sets to the step's output file.
GITHUB_OUTPUT = "GITHUB_OUTPUT"

#: Output names as GitHub's expression syntax can read them (``steps.<id>.outputs.<name>``).
OUTPUT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def secret_values(names: Iterable[str], environ: Mapping[str, str]) -> list[str]:
    """The non-empty values the process environment holds for the secret variables ``names``."""
    return [environ[name] for name in names if environ.get(name)]


def format_outputs(values: Mapping[str, str]) -> str:
    """``values`` in GitHub's output-file syntax (delimiter form for multi-line values).

    Raises ValueError for a name GitHub cannot address (a bug in the caller: names are ours).
    """
    chunks: list[str] = []
    for name, value in values.items():
        if not OUTPUT_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a GitHub output name")
        if "\n" not in value and "\r" not in value:
            chunks.append(f"{name}={value}\n")
            continue
        # @actions/core's delimiter: random, so a value cannot end the block early.
        delimiter = f"ghadelimiter_{uuid.uuid4()}"
        chunks.append(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
    return "".join(chunks)


def write_github_output(
    values: Mapping[str, str], environ: Mapping[str, str], *, secrets: Iterable[str] = ()
) -> Path | None:
    """Append ``values`` as step outputs when running in GitHub Actions; return the file, else None.

    Everything is appended in one write, so a reader never sees half the outputs.
    Raises UsageError (nothing written) when a value contains one of ``secrets`` or
    the file cannot be appended to (the message names the file, never the value).
    """
    target = environ.get(GITHUB_OUTPUT)
    if not target:
        return None
    for name, value in values.items():
        if any(secret in value for secret in secrets if secret):
            raise UsageError(
                f"{GITHUB_OUTPUT}: output {name!r} contains the value of a secret; nothing written",
                hint="a secret must never become a step output",
            )
    return append_github_file(GITHUB_OUTPUT, format_outputs(values), environ)


def append_github_file(variable: str, text: str, environ: Mapping[str, str]) -> Path | None:
    """Append ``text`` in one write to the file GitHub names in ``variable`` (``$GITHUB_OUTPUT``,
    ``$GITHUB_STEP_SUMMARY``); the file, or None outside GitHub Actions."""
    target = environ.get(variable)
    if not target:
        return None
    path = Path(target)
    try:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise UsageError(f"{variable}={target}: cannot append: {exc.strerror}") from None
    return path
