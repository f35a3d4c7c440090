"""HTTP helpers shared by every emulator API: bounded bodies, the one strict JSON parser, query numbers, auth.

Everything a client or worker sends goes through :func:`parse_json` (bodies) and
:func:`query_int` (numeric query parameters), so a value the emulator could not
store, serve or hand to a worker is refused with a 400 at the door, on every route.
"""

from __future__ import annotations

import hmac
import json
import math
import re
import sys
from typing import Any, NoReturn, TypeVar

from starlette.requests import Request

MB = 1024 * 1024
#: Nesting deeper than this is refused: far below Python's recursion limit, so the emulator's own
#: `json.dumps` and the worker SDK's `json.loads` always handle what was accepted.
MAX_DEPTH = 256
#: Python refuses to parse integers of more digits (`sys.get_int_max_str_digits`, 4300 by
#: default), so a worker could never read such an input; refuse it at submit instead.
MAX_INT_DIGITS = sys.get_int_max_str_digits() or 4300
#: ASCII digits only: `str.isdigit()` accepts superscripts and other scripts' digits ("²", "٣").
_ASCII_INT = re.compile(r"[0-9]{1,18}")

T = TypeVar("T")


class HttpError(Exception):
    """An error answer: status, a one-line detail and optional per-field problems."""

    def __init__(self, status: int, detail: str, errors: list[str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors


def found(value: T | None, what: str) -> T:
    """``value``, or a 404 "<what> not found" when there is none (an unknown id on any API)."""
    if value is None:
        raise HttpError(404, f"{what} not found")
    return value


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (400) anything over ``limit`` bytes without reading it all."""
    # Header names match in any case, and any non-digit default reads as no length.
    declared = request.headers.get("content-length", "")  # pragma: no mutate
    if _ASCII_INT.fullmatch(declared) and int(declared) > limit:
        raise HttpError(400, f"request body is {int(declared)} bytes; the limit is {limit // MB} MB")
    if len(declared) > 18 and declared.isascii() and declared.isdigit():  # more than any body could be
        raise HttpError(400, f"request body is over {limit // MB} MB; the limit is {limit // MB} MB")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HttpError(400, f"request body exceeds the limit of {limit // MB} MB")
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse(what: str, problem: str) -> NoReturn:
    raise HttpError(400, f"{what} is not valid JSON: {problem}")


def _constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(text)} digits exceeds the limit of {MAX_INT_DIGITS}")
    return int(text)


def _check_tree(value: Any, what: str) -> None:
    """Refuse lone surrogates (in keys and strings) and nesting deeper than MAX_DEPTH.

    Iterative, so a deep document cannot exhaust the stack of the check itself.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item, what)
        elif isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                _refuse(what, f"nesting deeper than {MAX_DEPTH} levels")
            if isinstance(item, dict):
                for key, child in item.items():
                    _check_text(key, what)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)


def _check_text(text: str, what: str) -> None:
    try:
        text.encode("utf-8")  # pragma: no mutate (codec names ignore case)
    except UnicodeEncodeError:
        _refuse(what, "a string holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is not Unicode")


def parse_json(body: bytes, *, what: str = "request body") -> Any:
    """Parse a body strictly: UTF-8, RFC 8259 JSON, finite numbers, valid Unicode, bounded depth.

    Raises HttpError(400) naming ``what`` for an empty body, invalid UTF-8 or JSON,
    NaN/Infinity, numbers that overflow a float (``1e999``), integers over
    MAX_INT_DIGITS digits, lone surrogates and nesting over MAX_DEPTH.
    """
    if not body.strip():
        raise HttpError(400, f"{what} is empty; expected JSON")
    try:
        text = body.decode("utf-8")  # pragma: no mutate (codec names ignore case)
    except UnicodeDecodeError as exc:
        _refuse(what, f"not UTF-8 ({exc.reason} at byte {exc.start})")
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_finite, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        _refuse(what, str(exc))
    except RecursionError:
        _refuse(what, f"nesting deeper than {MAX_DEPTH} levels")
    except ValueError as exc:
        _refuse(what, str(exc))
    _check_tree(value, what)
    return value


async def json_body(request: Request, limit: int) -> Any:
    """The request body as strict JSON, at most ``limit`` bytes (a 400 otherwise)."""
    return parse_json(await read_body(request, limit))


async def optional_json(request: Request, limit: int, *, what: str = "request body") -> Any:
    """A body that may be absent (None), checked as strictly as any other when present."""
    body = await read_body(request, limit)
    return None if not body.strip() else parse_json(body, what=what)


def query_int(request: Request, name: str, low: int, high: int, default: int | None = None) -> int | None:
    """An integer query parameter in [low, high] written in ASCII digits; ``default`` when absent.

    Raises HttpError(400) naming the parameter and its range otherwise.
    """
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not _ASCII_INT.fullmatch(raw) or not low <= int(raw) <= high:
        raise HttpError(400, f"{name} must be an integer between {low} and {high}")
    return int(raw)


def presented_key(request: Request, *, allow_raw: bool, allow_query: bool = False) -> str | None:
    """The API key a request carries: ``Bearer <key>``, optionally a raw key or ``?api_key=``."""
    # Starlette matches header names in any case, so the name's case mutants are equivalent.
    value = request.headers.get("authorization")  # pragma: no mutate
    header = (value or "").strip()
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    if header and allow_raw:
        return header
    if allow_query:
        return request.query_params.get("api_key")
    return None


def key_matches(presented: str | None, expected: str) -> bool:
    """Constant-time comparison; a key that is not UTF-8 text never matches."""
    if presented is None:
        return False
    try:
        return hmac.compare_digest(presented.encode(), expected.encode())
    except UnicodeEncodeError:
        return False
