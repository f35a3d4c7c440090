"""RunPod secret references and secret names: one rule for config, render and the emulator.

Reference syntax (runpod-platform.md §6, docs `pods/templates/secrets.mdx`): an env value
``{{ RUNPOD_SECRET_<name> }}``, spaces included, substituted when the worker starts.

Name rule (§6.1, REST v2 `POST /v2/account/secrets`, Nov 2026): 1–191 characters,
``^[a-zA-Z_][a-zA-Z0-9_.\\-/]*$``, not starting with ``RUNPOD`` (any case). So ``.``, ``-``
and ``/`` are allowed and a leading digit is not. This is the newest and only written
rule; the older places disagreed (config allowed a leading digit but no ``.``; the
emulator's GraphQL allowed any Unicode letter), and a name the API refuses could never
be created, while a name it accepts must be referable, so the reference pattern uses
the same character set.
"""

from __future__ import annotations

import re
from typing import Final

MAX_NAME_LENGTH: Final = 191
#: The name, every rule of §6.1 (no RUNPOD prefix, first character, length), unanchored.
_NAME: Final = rf"(?![Rr][Uu][Nn][Pp][Oo][Dd])[A-Za-z_][A-Za-z0-9_./-]{{0,{MAX_NAME_LENGTH - 1}}}"
#: A valid secret name (ASCII only).
SECRET_NAME: Final = re.compile(rf"^{_NAME}$", re.ASCII)
#: ``{{ RUNPOD_SECRET_<name> }}`` anywhere in a value; group 1 is the name, which meets the
#: same rule. Whitespace inside the braces is optional (an emulator tolerance, §6).
SECRET_REF: Final = re.compile(rf"\{{\{{\s*RUNPOD_SECRET_({_NAME})\s*\}}\}}", re.ASCII)
#: The rule in words, for error messages.
NAME_RULE: Final = (
    "1-191 characters: a letter or '_', then letters, digits, '_', '.', '-' or '/'; not starting with RUNPOD"
)


def reference(name: str) -> str:
    """RunPod's secret syntax for ``name``, exactly as its docs spell it (spaces included)."""
    return "{{ RUNPOD_SECRET_" + name + " }}"


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid RunPod secret name, or None."""
    if SECRET_NAME.fullmatch(name):
        return None
    if name[:6].upper() == "RUNPOD":
        return f"secret names must not start with RUNPOD (got {name[:40]!r})"
    return f"{name[:40]!r} is not a valid RunPod secret name ({NAME_RULE})"
