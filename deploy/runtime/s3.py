"""A small S3 client in the standard library: HEAD, streamed GET (resumed, checksum verified), PUT.

Path-style URLs (``<endpoint>/<bucket>/<key>``), which AWS, Backblaze B2 and seaweedfs all
accept. Network errors are retried with backoff; a download that breaks off resumes with a
``Range`` request; a checksum mismatch or too many failures is one clean `Failure` line.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import time
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO
from urllib.parse import quote, urlsplit

from . import sigv4
from .failure import Failure, say
from .settings import S3Settings

CHUNK = 1 << 20
META_SHA256 = "x-amz-meta-sha256"
_CODE = re.compile(rb"<Code>([^<]{1,100})</Code>")
_NETWORK_ERRORS = (OSError, http.client.HTTPException)


class S3Failure(Failure):
    """An S3 request failed for good (not retried further)."""


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    metadata: dict[str, str]


class _Retryable(Exception):
    pass


class Client:
    def __init__(
        self,
        settings: S3Settings,
        *,
        attempts: int = 4,
        timeout: float = 30.0,
        backoff: float = 0.5,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        parts = urlsplit(settings.endpoint_url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise Failure(f"AWS_ENDPOINT_URL={settings.endpoint_url!r} is not an http(s) URL")
        self.settings = settings
        self._scheme = parts.scheme
        self._netloc = parts.netloc
        self._base_path = parts.path.rstrip("/")
        self.attempts = max(1, attempts)
        self.timeout = timeout
        self.backoff = backoff
        self.clock = clock
        self.credentials = sigv4.Credentials(settings.access_key, settings.secret_key)

    # ---- plumbing

    def _path(self, key: str) -> str:
        return f"{self._base_path}/{self.settings.bucket}/{key}"

    def _connection(self) -> http.client.HTTPConnection:
        host = self._netloc
        if self._scheme == "https":
            return http.client.HTTPSConnection(host, timeout=self.timeout)
        return http.client.HTTPConnection(host, timeout=self.timeout)

    def _send(
        self,
        method: str,
        key: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: BinaryIO | None = None,
        payload_hash: str = sigv4.EMPTY_SHA256,
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        path = self._path(key)
        amz_date = self.clock().strftime("%Y%m%dT%H%M%SZ")
        signed_headers = sigv4.headers_for(
            headers or {}, host=self._netloc, amz_date=amz_date, payload_hash=payload_hash, token=None
        )
        signed = sigv4.sign(
            method=method,
            path=path,
            query=[],
            headers=signed_headers.items(),
            payload_hash=payload_hash,
            credentials=self.credentials,
            region=self.settings.region,
            service="s3",
            amz_date=amz_date,
        )
        connection = self._connection()
        # "host" included: http.client then sends exactly the signed value instead of its own.
        request_headers = dict(signed_headers)
        request_headers["Authorization"] = signed.authorization
        connection.request(method, quote(path, safe="/-_.~"), body=body, headers=request_headers)
        return connection, connection.getresponse()

    def _fail(self, action: str, key: str, response: http.client.HTTPResponse, body: bytes) -> S3Failure:
        found = _CODE.search(body)
        code = found.group(1).decode("ascii", "replace") if found else f"HTTP {response.status}"
        where = f"s3://{self.settings.bucket}/{key} at {self.settings.endpoint_url}"
        if code in {"SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied"} or response.status == 403:
            return S3Failure(
                f"S3 refused the credentials for {action} {where} ({code}): check AWS_ACCESS_KEY_ID and"
                " AWS_SECRET_ACCESS_KEY (a worker's come from its endpoint's secrets; `rpdeploy env build`'s"
                " from the caller's environment)"
            )
        if code == "NoSuchBucket":
            return S3Failure(
                f"S3 bucket {self.settings.bucket!r} does not exist at {self.settings.endpoint_url}"
            )
        return S3Failure(f"S3 {action} {where} failed: {code}")

    def _retrying(self, action: str, key: str, step: Callable[[], object]) -> object:
        last: BaseException | None = None
        for attempt in range(1, self.attempts + 1):
            try:
                return step()
            except (_Retryable, *_NETWORK_ERRORS) as exc:
                last = exc
                if attempt < self.attempts:
                    say(f"S3 {action} {key}: {_describe(exc)}; retry {attempt} of {self.attempts - 1}")
                    time.sleep(self.backoff * 2 ** (attempt - 1))
        raise S3Failure(
            f"S3 {action} s3://{self.settings.bucket}/{key} at {self.settings.endpoint_url} failed after"
            f" {self.attempts} attempts: {_describe(last)}"
        )

    # ---- operations

    def head(self, key: str) -> ObjectInfo | None:
        """Size and metadata of ``key``; None when it does not exist."""

        def step() -> ObjectInfo | None:
            connection, response = self._send("HEAD", key)
            with closing(connection):
                response.read()
                if response.status == 404:
                    # HEAD has no body: tell a missing bucket from a missing key with a bucket HEAD.
                    self._check_bucket()
                    return None
                if response.status >= 500:
                    raise _Retryable(f"HTTP {response.status}")
                if response.status != 200:
                    raise self._fail("HEAD", key, response, b"")
                return ObjectInfo(int(response.getheader("Content-Length") or 0), _metadata(response))

        result = self._retrying("HEAD", key, step)
        assert result is None or isinstance(result, ObjectInfo)
        return result

    def _check_bucket(self) -> None:
        connection, response = self._send("HEAD", "")
        with closing(connection):
            response.read()
            if response.status == 404:
                raise S3Failure(
                    f"S3 bucket {self.settings.bucket!r} does not exist at {self.settings.endpoint_url}"
                )

    def put_file(self, key: str, path: str, metadata: Mapping[str, str] | None = None) -> str:
        """Upload ``path`` (its sha256 is signed, so S3 checks the bytes it stores); returns that sha256."""
        digest = file_sha256(path)
        size = os.path.getsize(path)
        headers = {"content-length": str(size), "content-type": "application/octet-stream"}
        headers[META_SHA256] = digest
        for name, value in (metadata or {}).items():
            headers[f"x-amz-meta-{name}"] = value

        def step() -> None:
            with open(path, "rb") as body:
                connection, response = self._send("PUT", key, headers=headers, body=body, payload_hash=digest)
                with closing(connection):
                    data = response.read()
            if response.status >= 500:
                raise _Retryable(f"HTTP {response.status}")
            if response.status != 200:
                raise self._fail("PUT", key, response, data)

        self._retrying("PUT", key, step)
        return digest

    def get_file(self, key: str, dest: str) -> ObjectInfo:
        """Download ``key`` to ``dest``, resuming after a broken connection; checks the stored sha256."""
        state = _Download(dest)

        def step() -> None:
            headers = {"range": f"bytes={state.received}-"} if state.received else {}
            connection, response = self._send("GET", key, headers=headers)
            with closing(connection):
                if response.status in (200, 206):
                    if response.status == 200 and state.received:
                        state.restart()  # the server ignored the range
                    if state.info is None:
                        state.info = ObjectInfo(_total_size(response, state.received), _metadata(response))
                    state.copy(response)
                    if state.received < state.info.size:
                        raise _Retryable(
                            f"connection closed after {state.received} of {state.info.size} bytes"
                        )
                    return
                data = response.read()
            if response.status >= 500:
                raise _Retryable(f"HTTP {response.status}")
            if response.status == 404 and b"NoSuchBucket" not in data:
                raise S3Failure(f"S3 object s3://{self.settings.bucket}/{key} does not exist")
            raise self._fail("GET", key, response, data)

        try:
            self._retrying("GET", key, step)
        finally:
            state.close()
        assert state.info is not None
        expected = state.info.metadata.get("sha256")
        if expected and expected != state.sha.hexdigest():
            raise S3Failure(
                f"S3 object s3://{self.settings.bucket}/{key}: checksum mismatch"
                f" (sha256 {state.sha.hexdigest()},"
                f" its metadata says {expected}); it was not used"
            )
        return state.info


class _Download:
    def __init__(self, dest: str) -> None:
        self.dest = dest
        self.handle = open(dest, "wb")  # noqa: SIM115 (kept open across attempts)
        self.sha = hashlib.sha256()
        self.received = 0
        self.info: ObjectInfo | None = None

    def restart(self) -> None:
        self.handle.seek(0)
        self.handle.truncate()
        self.sha = hashlib.sha256()
        self.received = 0

    def copy(self, response: http.client.HTTPResponse) -> None:
        while True:
            try:
                chunk = response.read1(CHUNK)
            except http.client.IncompleteRead as exc:
                chunk = exc.partial
                self._take(chunk)
                raise
            if not chunk:
                return
            self._take(chunk)

    def _take(self, chunk: bytes) -> None:
        self.handle.write(chunk)
        self.sha.update(chunk)
        self.received += len(chunk)

    def close(self) -> None:
        self.handle.close()


def _total_size(response: http.client.HTTPResponse, offset: int) -> int:
    content_range = response.getheader("Content-Range") or ""
    if "/" in content_range:
        return int(content_range.rsplit("/", 1)[1])
    return offset + int(response.getheader("Content-Length") or 0)


def _metadata(response: http.client.HTTPResponse) -> dict[str, str]:
    prefix = "x-amz-meta-"
    return {
        name.lower()[len(prefix) :]: value
        for name, value in response.getheaders()
        if name.lower().startswith(prefix)
    }


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if not isinstance(exc, _Retryable) else text


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
