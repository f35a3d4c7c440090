"""Jinja filters that make values safe for Dockerfiles, shells and JSON.

Each filter either proves a value safe (strict pattern) or quotes it, and raises
`RenderError` for anything it cannot make safe (a newline can never be quoted into
a single Dockerfile instruction). Modelled on BentoML's ``bash_quote`` and Truss's
``dockerfile_env_value``.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from deploy.config import patterns
from deploy.errors import RenderError

#: A .dockerignore path pattern inside the project: a relative path whose segments may
#: hold ``*`` and ``?`` (never ``..``, never absolute, no ``!`` or spaces).
IGNORE_PATTERN = re.compile(r"^(?!/)(?!.*(?:^|/)\.\.(?:/|$))[A-Za-z0-9._*?-]+(?:/[A-Za-z0-9._*?-]+)*/?$")

#: Pattern names usable as ``{{ value | checked("image") }}``.
CHECKS: dict[str, re.Pattern[str]] = {
    "image": patterns.IMAGE_REF,
    "apt_package": patterns.APT_PACKAGE,
    "relative_path": patterns.RELATIVE_PATH,
    "ignore_pattern": IGNORE_PATTERN,
    "container_path": patterns.CONTAINER_PATH,
    "env_name": patterns.ENV_NAME,
    "tag": patterns.TAG,
}


def _refuse_control(value: str, what: str) -> None:
    if patterns.CONTROL_CHARS.search(value):
        raise RenderError(
            f"refusing to render {patterns.describe(value)!r}: {what} contains a newline or control character"
        )


def checked(value: Any, kind: str) -> str:
    """Pass ``value`` through only if it matches the strict pattern ``kind``."""
    pattern = CHECKS.get(kind)
    if pattern is None:
        raise RenderError(f"unknown check {kind!r} in template (known: {', '.join(sorted(CHECKS))})")
    text = str(value)
    if not pattern.fullmatch(text):
        raise RenderError(
            f"refusing to render {patterns.describe(text)!r}: not a valid {kind.replace('_', ' ')}"
        )
    return text


def shell_quote(value: Any) -> str:
    """POSIX-shell quote one word for a ``RUN`` line."""
    text = str(value)
    _refuse_control(text, "a shell word")
    return shlex.quote(text)


def dockerfile_env(value: Any) -> str:
    """A double-quoted ``ENV`` value.

    ``\\``, ``"`` and ``$`` are escaped so the builder stores the text literally (no
    build-time expansion); newlines are refused because they would end the instruction.
    """
    text = str(value)
    _refuse_control(text, "an ENV value")
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def exec_form(value: Any) -> str:
    """JSON exec form for ``CMD``/``ENTRYPOINT``/``COPY``: no shell ever parses it."""
    items = [value] if isinstance(value, str) else list(value)
    for item in items:
        _refuse_control(str(item), "an exec-form argument")
    return json.dumps([str(i) for i in items])


def canonical_json(value: Any) -> str:
    """Stable, readable JSON (Jinja's ``tojson`` HTML-escapes ``<>&'``, which we must not)."""
    return json.dumps(value, indent=2, ensure_ascii=False)  # pragma: no mutate (None is as false)


FILTERS = {
    "checked": checked,
    "shell_quote": shell_quote,
    "dockerfile_env": dockerfile_env,
    "exec_form": exec_form,
    "canonical_json": canonical_json,
}
