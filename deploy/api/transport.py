"""HTTP for the REST v2 client: one `requests.Session`, Bearer auth, a timeout on every call,
retries by urllib3's `Retry` on the adapter, request bodies checked against the official spec.

Retry policy (why): a 429 means RunPod refused the request before processing it, so every
method is retried after ``Retry-After``; a 5xx, a read timeout or a reset connection may
follow a write that went through, so only idempotent methods (GET, HEAD, PUT, DELETE) are
retried on those; a connection that was never opened is retried for every method (nothing
was sent), but only `CONNECT_RETRIES` time(s), at once: refused or unreachable means the URL
is wrong or the server is down, which waiting out a 5xx backoff (seconds per call, every
call of a command) does not mend, so it is reported in well under a second; a blip (a proxy
restarting) still passes. A create that may have gone through is settled by the client
(look up by name).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import quote

import requests
import requests.auth
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, ResponseError
from urllib3.util.retry import Retry

from deploy import __version__
from deploy.api import errors
from deploy.errors import RequestInvalid
from deploy.runpod import schemas

log = logging.getLogger("rpdeploy.api")

USER_AGENT = f"rpdeploy/{__version__}"
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
READS = frozenset({"GET", "HEAD"})
#: A longer Retry-After (an hourly window) is not waited out inside one command: the 429 is reported.
MAX_RETRY_AFTER_S = 60.0
BACKOFF_MAX_S = 30.0
#: Retries of a connection that was never opened (refused, unreachable, connect timeout).
CONNECT_RETRIES = 1
#: The most a connection retry waits (after a 5xx streak the shared backoff would be longer).
CONNECT_BACKOFF_MAX_S = 0.5
#: The TCP connect timeout: a handshake takes milliseconds (3 s allows one lost SYN), so an
#: unreachable host is reported in seconds, not after the whole answer timeout.
CONNECT_TIMEOUT_S = 3.0


@dataclass
class CallCount:
    """HTTP requests actually sent (retries included; a connection never opened is not counted,
    but tallied in ``unopened``, which the JSON output leaves out)."""

    reads: int = 0
    writes: int = 0
    unopened: int = 0

    def add(self, method: str) -> None:
        if method.upper() in READS:
            self.reads += 1
        else:
            self.writes += 1

    def to_json(self) -> dict[str, int]:
        return {"reads": self.reads, "writes": self.writes}


class CountingRetry(Retry):
    """urllib3's Retry, plus: 429 is retried for every method unless Retry-After asks for more
    than a minute, and every attempt that reached the wire is counted (urllib3 retries inside
    the adapter, out of sight)."""

    counter: Callable[[str], None] | None = None
    unopened: Callable[[], None] | None = None

    def new(self, **kw: Any) -> Self:
        retry = super().new(**kw)
        retry.counter = self.counter
        retry.unopened = self.unopened
        return retry

    def get_backoff_time(self) -> float:
        last = self.history[-1] if self.history else None
        if last is not None and last.error is not None and self._is_connection_error(last.error):
            return min(super().get_backoff_time(), CONNECT_BACKOFF_MAX_S)
        return super().get_backoff_time()

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if status_code == 429:  # refused unprocessed: safe to repeat whatever the method
            return bool(self.total)
        return super().is_retry(method, status_code, has_retry_after)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> Self:
        # An attempt that ends here reached the server unless the connection never opened. A
        # response whose retries are exhausted is returned to the caller, which counts it there.
        sent = error is None or not self._is_connection_error(error)
        if response is not None and response.status == 429 and self._waits_too_long(response):
            # An hourly or daily window: waiting it out inside one command helps nobody. The
            # 429 goes back to the caller (and is counted there) and becomes the error line.
            raise MaxRetryError(_pool, url, ResponseError("Retry-After beyond the wait limit"))
        try:
            retry = super().increment(method, url, response, error, _pool, _stacktrace)
        except MaxRetryError:
            if error is not None:
                self._tally(method, sent=sent)
            raise
        except Exception:
            self._tally(method, sent=sent)
            raise
        self._tally(method, sent=sent)
        return retry

    def _tally(self, method: str | None, *, sent: bool) -> None:
        if sent:
            self._count(method)
        elif self.unopened is not None:
            self.unopened()

    def _waits_too_long(self, response: Any) -> bool:
        after = self.get_retry_after(response)
        return after is not None and after > MAX_RETRY_AFTER_S

    def _count(self, method: str | None) -> None:
        if self.counter is not None and method is not None:
            self.counter(method)


class BearerAuth(requests.auth.AuthBase):
    """``Authorization: Bearer <key>``; the key never shows in a repr or a log line."""

    def __init__(self, key: str) -> None:
        self._key = key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._key}"
        return request

    def __repr__(self) -> str:
        return "BearerAuth(***)"


def retry_policy(
    retries: int, backoff: float, counter: Callable[[str], None], unopened: Callable[[], None] | None = None
) -> CountingRetry:
    retry = CountingRetry(
        total=retries,
        connect=min(retries, CONNECT_RETRIES),
        read=retries,
        status=retries,
        other=0,
        redirect=0,
        allowed_methods=IDEMPOTENT,
        status_forcelist=frozenset({429, 500, 502, 503, 504}),
        backoff_factor=backoff,
        backoff_max=BACKOFF_MAX_S,
        # Jitter spreads the retries of parallel CI jobs that failed together.
        backoff_jitter=backoff,
        respect_retry_after_header=True,
        # The last answer is returned and becomes one ApiError line (not urllib3's RetryError).
        raise_on_status=False,
        raise_on_redirect=False,
    )
    retry.counter = counter
    retry.unopened = unopened
    return retry


def path_of(template: str, **args: str) -> str:
    """A spec path template with its parameters filled in, each quoted as one path segment."""
    return template.format(**{name: quote(value, safe="") for name, value in args.items()})


def request_problems(template: str, method: str, body: Any) -> list[str]:
    """Why ``body`` breaks the operation's official request schema (``workers.max: ...`` lines)."""
    name = schemas.request_schema(template, method)
    if name is None:
        return [] if body is None else ["$: this operation takes no body"]
    found = sorted(schemas.errors(name, body), key=lambda e: [str(p) for p in e[0]])
    real = [path for path, message in found if not _unevaluated(message)]
    lines = []
    for path, message in found:
        # JSON Schema counts a property whose subschema failed as "unevaluated", so next to a
        # real error this complaint names valid fields too: the real error is the one to show.
        if _unevaluated(message) and any(other[: len(path)] == path for other in real):
            continue
        where = ".".join(str(part) for part in path) or "$"
        lines.append(f"{where}: {message}")
    return lines


def _unevaluated(message: str) -> bool:
    return message.startswith("Unevaluated properties")


class Transport:
    """Sends one REST v2 request and returns its decoded JSON, or raises one ApiError line."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float, retries: int, backoff: float) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.connect_timeout = min(timeout, CONNECT_TIMEOUT_S)
        self.calls = CallCount()
        self.session = requests.Session()
        # Session-level auth: requests then never swaps in a ~/.netrc entry for the key.
        self.session.auth = BearerAuth(api_key)
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        adapter = HTTPAdapter(max_retries=retry_policy(retries, backoff, self.calls.add, self._unopened))
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)

    def _unopened(self) -> None:
        self.calls.unopened += 1

    def close(self) -> None:
        self.session.close()

    def call(
        self,
        method: str,
        template: str,
        *,
        args: Mapping[str, str] | None = None,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        secrets: Iterable[str] = (),
    ) -> Any:
        """``method template`` (a spec path) → the answer's JSON (None for 204); raises ApiError."""
        secrets = tuple(secrets)
        path = path_of(template, **(args or {}))
        self._check(f"{method} {path}", method, template, body=body, params=params, secrets=secrets)
        response = self.send(method, path, body=body, params=params)
        if response.status_code >= 400:
            raise errors.http_error(response, method, path, secrets)
        if response.status_code == 204 or not response.content:
            return None
        return errors.decode(response, method, path)

    def send(
        self, method: str, path: str, *, body: Any = None, params: Mapping[str, str] | None = None
    ) -> requests.Response:
        """The raw answer (after retries) to one request; ApiError when no answer came at all."""
        url = self.base_url + path
        try:
            response = self.session.request(
                method,
                url,
                json=body,
                params=params,
                timeout=(self.connect_timeout, self.timeout),
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise errors.transport_error(exc, method, url, self.timeout, self.connect_timeout) from None
        self.calls.add(method)
        log.debug("%s %s -> %s", method, path, response.status_code)
        return response

    @staticmethod
    def _check(
        where: str,
        method: str,
        template: str,
        *,
        body: Any,
        params: Mapping[str, str] | None,
        secrets: tuple[str, ...],
    ) -> None:
        found = request_problems(template, method, body)
        if params:
            found += schemas.query_problems(template, method, params.items())
        if found:
            detail = errors.one_line(errors.mask("; ".join(found), secrets), 400)
            raise RequestInvalid(
                f"rpdeploy built a request RunPod would refuse: {where}: {detail}",
                hint="this is a bug in rpdeploy: please report it with the command you ran",
            )
