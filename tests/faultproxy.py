"""A fault-injecting HTTP proxy for tests: put it between a client and the emulator, script
what goes wrong for which request, and count every attempt that reached it.

Why a small threaded `http.server` and not a library: the faults needed are HTTP-level
and per request (a 429 with `Retry-After`, a 503 *after* forwarding a POST so the write
happened but its answer is lost, a hang past the client's timeout, a non-JSON 200).
Toxiproxy works on TCP streams (no status codes) and needs its own daemon; mitmproxy
could script it but is a large dependency for ~100 lines of standard library.

    proxy = FaultProxy("http://127.0.0.1:8787").start()
    proxy.inject("GET", "/v2/serverless", Fault.status(429, retry_after=1))
    ...  # point the client at proxy.url; the first GET gets the 429, the next is forwarded
    proxy.attempts("GET", "/v2/serverless")  # -> 2
    proxy.stop()
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

#: Headers that belong to one connection, not to the message (RFC 9110 §7.6.1).
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
     "transfer-encoding", "upgrade", "content-length", "host", "date", "server"}
)  # fmt: skip


@dataclass(frozen=True)
class Fault:
    """What the proxy does to one request instead of forwarding it plainly."""

    #: Answer with this status (0: the upstream's own answer).
    status: int = 0
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    #: Forward the request first, then answer with the fault: the write happened, its answer is lost.
    forward_first: bool = False
    #: Seconds to wait before answering (longer than the client's timeout: a read timeout).
    delay: float = 0.0

    @classmethod
    def answer(
        cls,
        status: int,
        *,
        retry_after: int | None = None,
        forward_first: bool = False,
        detail: str = "injected by the test proxy",
        errors: list[str] | None = None,
    ) -> Fault:
        """An RFC 9457 problem answer (with ``Retry-After`` when given)."""
        headers = [("Content-Type", "application/problem+json")]
        if retry_after is not None:
            headers.append(("Retry-After", str(retry_after)))
        problem: dict[str, object] = {"title": HTTPStatus(status).phrase, "status": status, "detail": detail}
        if errors is not None:
            problem["errors"] = errors
        return cls(status, tuple(headers), json.dumps(problem).encode(), forward_first=forward_first)

    @classmethod
    def hang(cls, seconds: float, *, forward_first: bool = False) -> Fault:
        """No answer for ``seconds`` (longer than the client's timeout: a read timeout), then the
        request is forwarded; with ``forward_first`` it is forwarded before the wait instead."""
        return cls(delay=seconds, forward_first=forward_first)

    @classmethod
    def garbage(cls) -> Fault:
        """A 200 that is not JSON (a captive portal, a wrong URL)."""
        return cls(200, (("Content-Type", "text/html"),), b"<html><body>Welcome to hotel wifi</body></html>")


@dataclass
class Attempt:
    method: str
    path: str
    at: float
    fault: Fault | None


@dataclass
class FaultProxy:
    """The proxy: `inject` scripts faults, `attempts`/`log` say what reached it."""

    upstream: str
    log: list[Attempt] = field(default_factory=list)
    _faults: dict[tuple[str, str], deque[Fault]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the proxy first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FaultProxy:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="faultproxy", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def inject(self, method: str, path: str, *faults: Fault) -> None:
        """Each next request ``method path`` (query ignored) gets the next fault; then plain forwarding."""
        with self._lock:
            self._faults.setdefault((method.upper(), path), deque()).extend(faults)

    def attempts(self, method: str, path: str) -> int:
        with self._lock:
            return sum(1 for a in self.log if a.method == method.upper() and a.path == path)

    def pending(self) -> int:
        """Faults scripted but not yet used (a test asserts 0: every fault was exercised)."""
        with self._lock:
            return sum(len(queue) for queue in self._faults.values())

    def _next(self, method: str, path: str) -> Fault | None:
        with self._lock:
            queue = self._faults.get((method, path))
            fault = queue.popleft() if queue else None
            self.log.append(Attempt(method, path, time.monotonic(), fault))
            return fault

    def forward(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes) -> _Answer:
        parts = urlsplit(self.upstream)
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
        try:
            connection.request(method, target, body=body or None, headers=dict(headers))
            response = connection.getresponse()
            return _Answer(response.status, response.getheaders(), response.read())
        finally:
            connection.close()


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the attempts are in proxy.log."""

        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            fault = proxy._next(self.command, self.path.split("?", 1)[0])
            headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
            answer = None
            if fault is not None and fault.forward_first:
                answer = proxy.forward(self.command, self.path, headers, body)
            if fault is not None and fault.delay:
                time.sleep(fault.delay)
                self.close_connection = True
            if fault is not None and fault.status:
                answer = _Answer(fault.status, list(fault.headers), fault.body)
            elif answer is None:
                answer = proxy.forward(self.command, self.path, headers, body)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._reply(answer)

        def _reply(self, answer: _Answer) -> None:
            self.send_response(answer.status)
            for name, value in answer.headers:
                if name.lower() not in HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer.body)

        # http.server dispatches on do_<METHOD>: the names are its protocol.
        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _serve  # noqa: N815

    return Handler
