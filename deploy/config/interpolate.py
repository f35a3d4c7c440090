"""``${VAR}`` interpolation of non-secret config values from the process environment.

Supported forms (the Compose subset people already know):
``${VAR}`` (error when unset), ``${VAR:-default}`` (default when unset or empty),
and ``$$`` for a literal ``$``. Written by hand because the only libraries that do
exactly this bring a whole templating stack with them, and we must report the file
line of every unset variable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from deploy.config.yaml_source import PathKey

_TOKEN = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{[^}]*\}?")


class UnsetVariable(Exception):
    def __init__(self, path: PathKey, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def interpolate(data: Any, environ: Mapping[str, str], path: PathKey = ()) -> Any:
    """Return ``data`` with every string's ``${VAR}`` replaced; raise `UnsetVariable`."""
    if isinstance(data, dict):
        return {k: interpolate(v, environ, (*path, k)) for k, v in data.items()}
    if isinstance(data, list):
        return [interpolate(v, environ, (*path, i)) for i, v in enumerate(data)]
    if isinstance(data, str) and "$" in data:
        return _substitute(data, environ, path)
    return data


def _substitute(text: str, environ: Mapping[str, str], path: PathKey) -> str:
    def replace(match: re.Match[str]) -> str:
        text = match.group(0)
        if text == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name is None:
            raise UnsetVariable(path, f"malformed variable reference {text!r} (expected ${{NAME}})")
        value = environ.get(name)
        if default is not None:
            return value if value else default
        if value is None:
            raise UnsetVariable(path, f"environment variable {name} is not set (use ${{{name}:-default}})")
        return value

    return _TOKEN.sub(replace, text)
