"""Strict patterns for every config value that can reach a Dockerfile or a shell.

A value that reaches a ``RUN`` line, an ``ENV``, ``COPY`` or ``FROM`` must match one of
these (or be quoted by a render filter). Checking at load time means a hostile
value (``numpy; rm -rf /``, a newline, ``$(curl …)``, backticks) is rejected with
a clear line before anything is rendered; the render filters check again, so a
template that forgets cannot leak one through.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Annotated, Final

from pydantic import AfterValidator, Field, ValidationInfo

from deploy.config.mask import context_masker
from deploy.runpod import secrets as runpod_secrets
from deploy.runpod import text as runpod_text

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = rf"{_LABEL}(?:\.{_LABEL})*(?::[0-9]{{1,5}})?"
#: In a reference, the first component is a registry only if it has a dot or a port, or is
#: localhost (Docker's rule); otherwise it is part of the repository path.
_REF_HOST = rf"(?:{_LABEL}(?:\.{_LABEL})+(?::[0-9]{{1,5}})?|{_LABEL}:[0-9]{{1,5}}|localhost)"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"sha256:[a-f0-9]{64}"

#: Registry host, optionally with a port: ``ghcr.io``, ``127.0.0.1:5000``.
REGISTRY: Final = re.compile(rf"^{_HOST}$", re.ASCII)
#: Repository path without host or tag: ``acme/echo-worker`` (Docker's grammar: lowercase).
REPOSITORY: Final = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$", re.ASCII)
#: A full image reference: ``[host[:port]/]path[:tag][@sha256:…]``.
IMAGE_REF: Final = re.compile(
    rf"^(?:{_REF_HOST}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::{_TAG})?(?:@{_DIGEST})?$", re.ASCII
)
#: A Docker tag.
TAG: Final = re.compile(rf"^{_TAG}$", re.ASCII)
#: A Debian package, optionally pinned: ``ffmpeg``, ``libgl1=1.6.0-1``.
APT_PACKAGE: Final = re.compile(r"^[a-z0-9][a-z0-9+.-]+(?:=[A-Za-z0-9.+:~-]+)?$", re.ASCII)
#: A path inside the project, relative, no ``..``: ``worker/handler.py``.
RELATIVE_PATH: Final = re.compile(
    r"^(?!/)(?!.*(?:^|/)\.\.(?:/|$))[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*/?$", re.ASCII
)
#: An absolute path inside the container: ``/runpod-volume``.
CONTAINER_PATH: Final = re.compile(r"^/(?:[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*)?$", re.ASCII)
#: An environment variable name (POSIX; RunPod's contract, `deploy.runpod.text`).
ENV_NAME: Final = runpod_text.ENV_NAME
#: A RunPod secret name, as used in ``{{ RUNPOD_SECRET_<name> }}``.
SECRET_NAME: Final = runpod_secrets.SECRET_NAME
#: Project and environment names: they end up in image titles, endpoint and secret names.
NAME: Final = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$", re.ASCII)
#: A CUDA version as RunPod takes it: ``12.4``.
CUDA_VERSION: Final = re.compile(r"^[0-9]+\.[0-9]+$", re.ASCII)
#: A Python module path: ``handler``, ``worker.handler``.
PY_MODULE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$", re.ASCII)
#: A port as RunPod takes it: ``8000/http``.
PORT: Final = re.compile(r"^[0-9]{1,5}/(?:http|tcp|udp)$", re.ASCII)
#: Characters no config text may hold: C0 controls but tab and newline, DEL, C1 controls,
#: bidirectional marks, embeddings, overrides and isolates (the "Trojan Source" set,
#: CVE-2021-42574), and lone surrogates (not encodable, so never writable to a file).
FORBIDDEN_CHARS: Final = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
#: Characters that never belong in a single-line value: the above, plus tab, newline,
#: carriage return and the Unicode line and paragraph separators.
CONTROL_CHARS: Final = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def first_control(value: str, pattern: re.Pattern[str] = CONTROL_CHARS) -> str | None:
    """The first character of ``value`` that ``pattern`` forbids, as ``U+XXXX``, or None."""
    found = pattern.search(value)
    return f"U+{ord(found.group(0)):04X}" if found else None


def describe(value: str) -> str:
    """A rejected value, long ones cut, invisible characters escaped once (``\\x1b``).

    The CLI's printing edge keeps backslashes, so the message shows ``'a\\x1b[31m'``; the
    ``repr`` this replaced escaped a second time (``'a\\\\x1b[31m'``, ``'\\\\u0663'``).
    """
    cut = value if len(value) <= 60 else value[:57] + "..."
    return runpod_text.escaped(cut)


def quoted(value: str) -> str:
    """``'value'`` for a message: `describe` in plain single quotes (repr would escape again)."""
    return f"'{describe(value)}'"


def shown(value: str, info: ValidationInfo) -> str:
    """`quoted` for a validator's message: a secret value appears as its ``${NAME}``.

    Masked before `describe` cuts, so no part of a secret can slip through.
    """
    return quoted(context_masker(info.context).reference(value))


def _check(pattern: re.Pattern[str], what: str, value: str, info: ValidationInfo) -> str:
    if not pattern.fullmatch(value):
        raise ValueError(f"{shown(value, info)} is not a valid {what}")
    return value


def _checker(pattern: re.Pattern[str], what: str) -> AfterValidator:
    # The check is a module-level function bound with partial, not a closure: `_checker` runs
    # at import, where mutation testing cannot reach it, while `_check` runs per value.
    return AfterValidator(partial(_check, pattern, what))  # pragma: no mutate


RegistryHost = Annotated[str, _checker(REGISTRY, "registry host (expected host[:port])")]
Repository = Annotated[str, _checker(REPOSITORY, "repository (expected lowercase name[/name...])")]
ImageRef = Annotated[str, _checker(IMAGE_REF, "image reference (expected [host[:port]/]name[:tag][@digest])")]
AptPackage = Annotated[str, _checker(APT_PACKAGE, "Debian package name (expected name or name=version)")]
#: Linux's limits (limits.h): a name of more than NAME_MAX bytes or a path of PATH_MAX bytes
#: (its NUL included) cannot be opened (ENAMETOOLONG), so no file or folder can have it.
NAME_MAX: Final = 255
PATH_MAX: Final = 4096


def _path_length(value: str, info: ValidationInfo) -> str:
    # The path patterns are ASCII, so characters are bytes.
    if len(value) >= PATH_MAX:
        # Not the length itself: a value interpolated from a secret would tell the secret's length.
        raise ValueError(f"{shown(value, info)} is too long: a path has fewer than {PATH_MAX} characters")
    if any(len(part) > NAME_MAX for part in value.split("/")):
        raise ValueError(f"{shown(value, info)} holds a name of over {NAME_MAX} characters: no file has one")
    return value


_PATH_LENGTH: Final = AfterValidator(_path_length)
RelativePath = Annotated[
    str, _checker(RELATIVE_PATH, "relative path inside the project (no '..')"), _PATH_LENGTH
]
ContainerPath = Annotated[str, _checker(CONTAINER_PATH, "absolute container path"), _PATH_LENGTH]
EnvName = Annotated[str, _checker(ENV_NAME, "environment variable name")]
SecretName = Annotated[str, _checker(SECRET_NAME, f"RunPod secret name ({runpod_secrets.NAME_RULE})")]
Name = Annotated[str, _checker(NAME, "name (lowercase letters, digits and '-', at most 63)")]
CudaVersion = Annotated[str, _checker(CUDA_VERSION, "CUDA version (expected major.minor)")]
PyModule = Annotated[str, _checker(PY_MODULE, "Python module name")]
Port = Annotated[str, _checker(PORT, "port (expected number/http|tcp|udp)")]


#: The one test for text that must show every character it holds (names, keys, commands,
#: identifiers): no control, format or invisible character, no non-ASCII space.
hidden_char = runpod_text.hidden_char


def _single_line(value: str, info: ValidationInfo) -> str:
    bad = hidden_char(value)
    if bad:
        raise ValueError(f"{shown(value, info)} contains a newline, control or invisible character ({bad})")
    return value


def _endpoint_name(value: str, info: ValidationInfo) -> str:
    problem = runpod_text.name_problem(value)
    if problem:
        raise ValueError(problem)
    return value


SingleLine = Annotated[str, AfterValidator(_single_line)]
#: An endpoint name as RunPod takes it (`deploy.runpod.text.name_problem`).
EndpointName = Annotated[str, Field(min_length=1), AfterValidator(_endpoint_name)]
