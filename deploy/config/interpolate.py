"""``${VAR}`` interpolation of config values from the process environment.

Supported forms (the Compose subset people already know):
``${VAR}`` (error when unset), ``${VAR:-default}`` (default when unset or empty; the
default may itself hold references, ``${A:-${B:-x}}``, up to `MAX_NESTING` deep), and
``$$`` for a literal ``$``. A ``$`` followed by anything else is kept as typed. Anything
else starting with ``${`` (``${1X}``, ``${A:?err}``, an unclosed ``${A``) is an error.

Every value read from a variable named in ``secret_names`` is recorded (value -> name),
so that output paths can mask it (`deploy.config.mask`) wherever it ends up; and, per
path as written, which secret variables the string was built from (`Interpolator.reads`),
so that a check about copies asks where a value came from, never what it looks like.

Written by hand because the only libraries that do exactly this bring a whole
templating stack with them, and we must report the file line of every problem and
know which characters came from which variable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from deploy.config.patterns import quoted
from deploy.config.yaml_source import PathKey

#: How deep ``${A:-${B:-...}}`` defaults may nest.
MAX_NESTING: Final = 8
_NAME_START: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_NAME_CHARS: Final = _NAME_START | frozenset("0123456789")


class UnsetVariable(Exception):
    """An interpolation problem at ``path`` (unset variable or malformed reference)."""

    def __init__(self, path: PathKey, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


@dataclass(frozen=True)
class SecretReads:
    """The secret variables one config string was interpolated from (in the order read).

    ``exact`` is the variable whose value is the whole string (``"${VAR}"``), else None.
    """

    variables: tuple[str, ...] = ()
    exact: str | None = None


class Interpolator:
    """Substitutes references in config data and remembers the secret values it read.

    ``secrets`` maps each non-empty value read from a secret variable to that
    variable's name, e.g. ``{"AKIA...": "AWS_ACCESS_KEY_ID"}``.
    """

    def __init__(self, environ: Mapping[str, str], secret_names: frozenset[str] = frozenset()) -> None:
        self.environ = environ
        self.secret_names = secret_names
        self.secrets: dict[str, str] = {}
        #: Path as written -> the secret variables its string was built from (only such paths).
        self.reads: dict[PathKey, SecretReads] = {}
        self._reading: list[str] = []

    def apply(self, data: Any, path: PathKey = ()) -> Any:
        """``data`` with every string's references replaced; raise `UnsetVariable`."""
        if isinstance(data, dict):
            return {k: self.apply(v, (*path, k)) for k, v in data.items()}
        if isinstance(data, list):
            return [self.apply(v, (*path, i)) for i, v in enumerate(data)]
        if isinstance(data, str) and "$" in data:
            return self._string(data, path)
        return data

    def _string(self, data: str, path: PathKey) -> str:
        self._reading = []
        value = _Parser(self, data, path).expand()
        if self._reading:
            names = tuple(dict.fromkeys(self._reading))
            exact = next((n for n in names if self.environ.get(n) == value), None)
            self.reads[path] = SecretReads(names, exact)
        return value

    def lookup(self, name: str) -> str | None:
        value = self.environ.get(name)
        if value and name in self.secret_names:
            self.secrets.setdefault(value, name)
            self._reading.append(name)
        return value


def interpolate(data: Any, environ: Mapping[str, str], path: PathKey = ()) -> Any:
    """``data`` with every string's ``${VAR}`` replaced; raise `UnsetVariable`.

    >>> interpolate({"a": "$${X} ${X} ${Y:-${X}}"}, {"X": "1"})
    {'a': '${X} 1 1'}
    """
    return Interpolator(environ).apply(data, path)


class _Parser:
    """A recursive-descent reader of one string (nesting only inside defaults)."""

    def __init__(self, owner: Interpolator, text: str, path: PathKey) -> None:
        self.owner = owner
        self.text = text
        self.path = path
        self.pos = 0

    def expand(self) -> str:
        # Check the syntax of the whole string first, so a malformed reference is reported
        # as such even where evaluation would stop earlier at an unset variable.
        self._sequence(depth=0, evaluate=False)  # pragma: no mutate (None is as false as False)
        self.pos = 0
        return self._sequence(depth=0, evaluate=True)

    # `opened` is only read at depth > 0, where the caller always gives it (the default's
    # mutants are equivalent).
    def _sequence(self, *, depth: int, evaluate: bool, opened: int = 0) -> str:  # pragma: no mutate
        """Text up to the end, or up to the ``}`` closing a default when ``depth`` > 0."""
        out: list[str] = []
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char == "}" and depth > 0:
                return "".join(out)
            if char == "$" and text.startswith("$$", self.pos):
                out.append("$")
                self.pos += 2
            elif char == "$" and text.startswith("${", self.pos):
                out.append(self._reference(depth=depth, evaluate=evaluate))
            else:
                out.append(char)
                self.pos += 1
        if depth > 0:
            raise self._malformed(opened)
        return "".join(out)

    def _reference(self, *, depth: int, evaluate: bool) -> str:
        start = self.pos
        self.pos += 2
        name = self._name()
        if name is None:
            raise self._malformed(start)
        if self.text.startswith("}", self.pos):
            self.pos += 1
            # The syntax pass discards what it builds, so its placeholder text is free.
            return self._value(name) if evaluate else ""  # pragma: no mutate
        if not self.text.startswith(":-", self.pos):
            raise self._malformed(start)
        if depth >= MAX_NESTING:
            raise UnsetVariable(self.path, f"variable defaults nest deeper than {MAX_NESTING} levels")
        self.pos += 2
        value = self.owner.lookup(name) if evaluate else None
        default = self._sequence(depth=depth + 1, evaluate=evaluate and not value, opened=start)
        self.pos += 1  # the closing brace, which _sequence stopped at
        return value if value else default

    def _name(self) -> str | None:
        text, begin = self.text, self.pos
        if begin >= len(text) or text[begin] not in _NAME_START:
            return None
        end = begin + 1
        while end < len(text) and text[end] in _NAME_CHARS:
            end += 1
        self.pos = end
        return text[begin:end]

    def _value(self, name: str) -> str:
        value = self.owner.lookup(name)
        if value is None:
            raise UnsetVariable(
                self.path, f"environment variable {name} is not set (use ${{{name}:-default}})"
            )
        return value

    def _malformed(self, start: int) -> UnsetVariable:
        end = self.text.find("}", start)
        # Equivalent mutants: `end` is never 0 (the search starts at the "$"), so ">= 0",
        # "> 0" and ">= 1" agree (docs/quality.md).
        shown = self.text[start : end + 1 if end >= 0 else len(self.text)]  # pragma: no mutate
        return UnsetVariable(
            self.path,
            f"malformed variable reference {quoted(shown)} (expected ${{NAME}} or ${{NAME:-default}})",
        )
