"""Every failure of a REST v2 call becomes one line, here and nowhere else.

An HTTP error answer (RFC 9457 ``application/problem+json``) becomes
``RunPod API 422 on PATCH /v2/serverless/abc: workers.max: must be >= 0``; a refused key
names the variable to set; a transport failure (refused, DNS, timeout) names the URL and
what to check. Secret values passed in ``secrets`` are replaced by ``***`` in every line,
whatever the server echoed.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Iterable
from typing import Any

import requests
from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError, ReadTimeoutError

from deploy.config.mask import Masker
from deploy.errors import ApiError

__all__ = ["ApiError", "Conflict", "NotFound", "http_error", "mask", "one_line", "transport_error"]

#: Longest server text quoted in an error line: an HTML error page is never echoed whole.
QUOTE_LIMIT = 200
KEY_HINT = "set RUNPOD_API_KEY to a valid RunPod API key (Settings > API Keys)"
URL_HINT = "check RUNPOD_API_URL, the network, and https://uptime.runpod.io"


class NotFound(ApiError):
    """404: the resource does not exist (or is not the key owner's)."""


class Conflict(ApiError):
    """409: the request conflicts with the resource's current state (a duplicate name)."""


def mask(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value replaced by ``***`` (longest first: one may contain another;
    `deploy.config.mask.Masker` is the one implementation)."""
    return Masker(dict.fromkeys(secrets, "")).text(text)


def one_line(text: str, limit: int = QUOTE_LIMIT) -> str:
    """Server text as one short printable line: control characters and newlines become spaces."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _problem_reason(body: Any) -> str | None:
    """The useful part of a problem body: its ``errors`` list, else ``detail``, else ``title``."""
    if not isinstance(body, dict):
        return None
    errors = body.get("errors")
    if isinstance(errors, list) and errors and all(isinstance(e, str) for e in errors):
        return "; ".join(errors)
    for key in ("detail", "title"):
        if isinstance(body.get(key), str) and body[key]:
            return str(body[key])
    return None


def _reason(response: requests.Response) -> str:
    try:
        reason = _problem_reason(response.json())
    except ValueError:
        reason = None
    if reason is not None:
        return reason
    text = response.text.strip()
    phrase = response.reason or "error"
    return f"{phrase} (not a problem+json answer: {text})" if text else str(phrase)


def http_error(response: requests.Response, method: str, path: str, secrets: Iterable[str] = ()) -> ApiError:
    """The error for an HTTP error answer (status >= 400) to ``method path``."""
    status = response.status_code
    if status in (401, 403):
        return ApiError(
            f"RunPod API refused the key ({status}): set RUNPOD_API_KEY to a valid API key",
            status=status,
            hint=KEY_HINT if status == 401 else "the key needs read/write access to this resource",
        )
    line = f"RunPod API {status} on {method} {path}: {one_line(mask(_reason(response), secrets))}"
    kind = {404: NotFound, 409: Conflict}.get(status, ApiError)
    hint = None
    if status == 429:
        after = response.headers.get("Retry-After")
        wait = f"RunPod asks to wait {one_line(after, 40)} s" if after else "wait"
        hint = f"the account's API rate limit is used up: {wait}, then run again"
    elif status >= 500:
        hint = URL_HINT
    return kind(line, status=status, hint=hint)


def not_json(response: requests.Response, method: str, path: str) -> ApiError:
    """A success answer whose body is not the JSON the spec promises (a captive portal, a wrong URL)."""
    kind = response.headers.get("content-type", "no content-type")
    start = one_line(response.text, 60)
    return ApiError(
        f"RunPod API answered {method} {path} with {response.status_code} but not JSON ({kind}: {start!r})",
        status=response.status_code,
        hint=f"is {response.url.split('/v2/', 1)[0]} the RunPod API? {URL_HINT}",
    )


def unexpected(method: str, path: str, what: str, status: int) -> ApiError:
    """A JSON success answer without the shape the spec promises."""
    return ApiError(f"RunPod API answered {method} {path} without {what}", status=status, hint=URL_HINT)


def transport_error(
    exc: requests.RequestException,
    method: str,
    url: str,
    timeout: float,
    connect_timeout: float | None = None,
) -> ApiError:
    """A request that got no HTTP answer at all, after the retries: refused, DNS, timeout, TLS."""
    why = _why(exc, timeout)
    if connect_timeout is not None and isinstance(exc, requests.ConnectTimeout):
        why = f"no connection within {connect_timeout:g} s (timed out)"
    return ApiError(f"cannot reach the RunPod API: {method} {url}: {why}", hint=URL_HINT)


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what it wraps: requests wraps urllib3's MaxRetryError, which wraps the reason."""
    found: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or current in found:
            continue
        found.append(current)
        todo += [current.__cause__, current.__context__]
        todo += [arg for arg in current.args if isinstance(arg, BaseException)]
        if isinstance(current, MaxRetryError):
            todo.append(current.reason)
    return found


def _why(exc: requests.RequestException, timeout: float) -> str:
    causes = _causes(exc)
    if any(isinstance(c, requests.Timeout | ReadTimeoutError | TimeoutError) for c in causes):
        return f"no answer within {timeout:g} s (timed out)"
    if any(isinstance(c, NameResolutionError) for c in causes):
        return "the host name does not resolve (DNS)"
    if any(isinstance(c, ConnectionRefusedError) for c in causes) or any(
        isinstance(c, NewConnectionError) and "refused" in str(c).lower() for c in causes
    ):
        return "connection refused (nothing listens there)"
    if any(isinstance(c, requests.exceptions.SSLError) for c in causes):
        return "the TLS handshake failed"
    if any(isinstance(c, OSError) and c.errno == errno.ECONNRESET for c in causes):
        return "the connection was reset"
    return one_line(type(exc).__name__ + ": " + str(exc))


def decode(response: requests.Response, method: str, path: str) -> Any:
    """The JSON body of a success answer; ApiError when it is not JSON."""
    try:
        return response.json()
    except (ValueError, json.JSONDecodeError):
        raise not_json(response, method, path) from None
