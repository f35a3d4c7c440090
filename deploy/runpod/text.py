"""What text RunPod can take in an endpoint document: names, env keys and values, args.

The vendored spec types these fields as bare strings, but a string reaches a container's
environment (`execve`), a shell-free exec command, a console and logs. These rules say
what can arrive there intact; config validation, render and the emulator all apply
`request_text_problems` (through `deploy.runpod.endpoint.request_problems`), so the three
accept the same documents.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Any, Final

#: Longest endpoint name. The spec gives only `minLength: 1`; RunPod's other names
#: (secrets, runpod-platform.md §6.1) stop at 191 characters, the longest string a
#: utf8mb4 VARCHAR index holds in the MySQL defaults RunPod's names follow. A longer
#: name is a mistake, not a need.
NAME_MAX: Final = 191
#: An environment variable name as POSIX shells and `env` take it (IEEE 1003.1 §8.1):
#: a name with `=` or a control character cannot be set in a process environment.
ENV_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$", re.ASCII)
ENV_NAME_RULE: Final = "letters, digits and '_', not starting with a digit"
#: Linux `MAX_ARG_STRLEN` (32 pages): `execve` refuses one `KEY=VALUE` string this long
#: (E2BIG), so the worker could never start.
ENV_ENTRY_MAX_BYTES: Final = 131_072
#: The whole env of an endpoint, bytes of `KEY=VALUE` strings. `execve` fails beyond
#: ARG_MAX (a quarter of the 8 MiB default stack: 2 MiB) for args and env together; half
#: of that leaves room for the image's own env and command.
ENV_TOTAL_MAX_BYTES: Final = 1_048_576

#: Unicode categories that never show as a character of a name: controls, format
#: characters (zero-width spaces and joiners, bidi marks, the BOM, tag characters),
#: surrogates, private use, unassigned, line and paragraph separators.
_HIDDEN_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
#: Code points outside those categories that still show nothing or change a neighbour:
#: variation selectors (U+FE00..FE0F, U+E0100..E01EF), Mongolian free variation
#: selectors, the combining grapheme joiner and the Hangul fillers.
_HIDDEN_RANGES: Final = (
    (0xFE00, 0xFE0F),
    (0xE0100, 0xE01EF),
    (0x180B, 0x180F),
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x3164, 0x3164),
    (0xFFA0, 0xFFA0),
)


_ASCII_HIDDEN: Final = re.compile(r"[\x00-\x1f\x7f]")


def _hidden(char: str) -> bool:
    code = ord(char)
    category = unicodedata.category(char)
    return (
        category in _HIDDEN_CATEGORIES
        or (category == "Zs" and char != " ")
        or any(low <= code <= high for low, high in _HIDDEN_RANGES)
    )


def escaped(value: str) -> str:
    """``value`` with each character `hidden_char` finds written as ``\\xNN``/``\\uNNNN``/``\\UNNNNNNNN``.

    The same spelling as the CLI's printing edge, which keeps backslashes: a message
    built with this is escaped once, and stays one line wherever it is logged.
    """
    return "".join(escape_char(char) if _hidden(char) else char for char in value)


def escape_char(char: str) -> str:
    """``\\x1b``, ``\\u202e``, ``\\U000e0041``: one character as a Python-style escape."""
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def hidden_char(value: str) -> str | None:
    """The first character of ``value`` a reader cannot see, as ``U+XXXX``; None if all show.

    Every control and format character (tab and newline included), non-ASCII spaces
    (a no-break space looks like a space but is not one), variation selectors and tag
    characters: one function for names, identifiers and single-line config values.
    """
    if value.isascii():
        # Fast path (most values): in ASCII only the C0 controls and DEL are hidden, and one
        # regex finds them far faster than a category lookup per character.
        match = _ASCII_HIDDEN.search(value)
        return None if match is None else f"U+{ord(match.group()):04X}"
    found = next((char for char in value if _hidden(char)), None)
    return None if found is None else f"U+{ord(found):04X}"


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be an endpoint name, or None."""
    if len(name) > NAME_MAX:
        # Not the length: a name interpolated from a secret would tell the secret's length.
        return f"must be at most {NAME_MAX} characters"
    bad = hidden_char(name)
    return f"contains an invisible or control character ({bad})" if bad else None


def env_name_problem(key: str) -> str | None:
    """Why ``key`` cannot be an environment variable name, or None."""
    if ENV_NAME.fullmatch(key):
        return None
    bad = hidden_char(key)
    detail = f"; it contains {bad}" if bad else ""
    return f"is not a valid environment variable name ({ENV_NAME_RULE}{detail})"


def env_problems(env: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(key, problem) for each env entry no process could receive, then the total size."""
    total = 0
    for key, value in env.items():
        problem = env_name_problem(key)
        if problem is not None:
            yield key, problem
            continue
        if not isinstance(value, str):
            continue  # the schema reports it
        if "\x00" in value:
            yield key, "value contains a NUL character (U+0000), which no process environment can hold"
            continue
        size = len(f"{key}={value}".encode("utf-8", "surrogatepass")) + 1
        total += size
        if size > ENV_ENTRY_MAX_BYTES:
            yield key, f"is {size} bytes with its name; a process takes at most {ENV_ENTRY_MAX_BYTES}"
    if total > ENV_TOTAL_MAX_BYTES:
        yield "", f"is {total} bytes in all; at most {ENV_TOTAL_MAX_BYTES} fit beside the container's own"


def request_text_problems(body: Any) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """(path, problem) for each string of an endpoint request body RunPod could not carry.

    ``name`` and every identifier must show every character; ``env`` keys are POSIX names
    and values carry no NUL; ``args`` carries no NUL (it may hold tabs and newlines).
    """
    if not isinstance(body, dict):
        return
    for key, value in body.items():
        if key == "env" and isinstance(value, dict):
            for name, problem in env_problems(value):
                yield (("env", name) if name else ("env",)), problem
        elif key == "name" and isinstance(value, str):
            why = name_problem(value)
            if why:
                yield ("name",), why
        elif key == "args" and isinstance(value, str):
            if "\x00" in value:
                yield ("args",), "contains a NUL character (U+0000), which no command line can hold"
        else:
            yield from _identifier_problems(value, (key,))


def _identifier_problems(
    value: Any, path: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _identifier_problems(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _identifier_problems(item, (*path, index))
    elif isinstance(value, str):
        bad = hidden_char(value)
        if bad:
            yield path, f"contains an invisible or control character ({bad})"
