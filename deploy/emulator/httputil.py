"""HTTP helpers shared by the emulator's three faces: bounded body reading, JSON parsing, auth."""

from __future__ import annotations

import hmac
import json
from typing import Any

from starlette.requests import Request

MB = 1024 * 1024


class HttpError(Exception):
    """An error answer: status, a one-line detail and optional per-field problems."""

    def __init__(self, status: int, detail: str, errors: list[str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (400) anything over ``limit`` bytes without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HttpError(400, f"request body is {int(declared)} bytes; the limit is {limit // MB} MB")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HttpError(400, f"request body exceeds the limit of {limit // MB} MB")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes, *, what: str = "request body") -> Any:
    if not body.strip():
        raise HttpError(400, f"{what} is empty; expected JSON")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HttpError(400, f"{what} is not valid JSON: {exc}") from None


def presented_key(request: Request, *, allow_raw: bool, allow_query: bool = False) -> str | None:
    """The API key a request carries: ``Bearer <key>``, optionally a raw key or ``?api_key=``."""
    header = request.headers.get("authorization", "").strip()
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    if header and allow_raw:
        return header
    if allow_query:
        return request.query_params.get("api_key")
    return None


def key_matches(presented: str | None, expected: str) -> bool:
    return presented is not None and hmac.compare_digest(presented.encode(), expected.encode())
