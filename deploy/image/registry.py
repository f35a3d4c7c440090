"""The registry's HTTP API (distribution v2): references, credentials, auth and retries.

- Auth is one step on the `requests` session (`ChallengeAuth`): a 401 carries a
  ``WWW-Authenticate`` challenge; ``Bearer`` fetches a token from the realm (with the
  credentials, if any) and replays the request, ``Basic`` replays it with the
  credentials. Tokens are kept per scope.
- Retries go through one mechanism, `retrying` (tenacity): connection refused/reset,
  timeouts, 429 and 5xx are `Transient`; the wait honours ``Retry-After`` (seconds),
  capped, else backs off exponentially; then `RegistryError` (exit 3).
- Plain HTTP only for loopback registries (``127.0.0.0/8``, ``::1``, ``localhost``),
  decided with `ipaddress` as the emulator does.
- Credentials: ``REGISTRY_USERNAME``/``REGISTRY_PASSWORD``, else the Docker config
  (``~/.docker/config.json`` and its credential helpers, read by docker-py).
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import docker.auth
import docker.errors
import docker.utils
import requests
import requests.auth
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from deploy.config.patterns import IMAGE_REF, describe
from deploy.errors import RegistryError, UsageError
from deploy.image.engine import first_line

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ACCEPT = ", ".join([MANIFEST_V2, OCI_MANIFEST, MANIFEST_LIST, OCI_INDEX])
# Header names, once: HTTP header names are case-insensitive (requests' CaseInsensitiveDict),
# so a differently cased spelling at each use would be the same header.
H_ACCEPT = "Accept"
H_AUTHORIZATION = "Authorization"
H_AUTHENTICATE = "WWW-Authenticate"
H_DIGEST = "Docker-Content-Digest"
H_RETRY_AFTER = "Retry-After"
ATTEMPTS = 4
#: The longest ``Retry-After`` honoured, in seconds (a registry asking for more is down for us).
MAX_RETRY_AFTER_S = 30.0
T = TypeVar("T")


class Transient(Exception):
    """A failure worth retrying; becomes RegistryError when the attempts run out.

    ``retry_after`` (seconds) is the server's ``Retry-After``, when it sent one.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def retry_wait(exc: BaseException | None, attempt: int) -> float:
    """Seconds before attempt ``attempt + 1``: ``Retry-After`` when the failure carried one
    (capped at `MAX_RETRY_AFTER_S`), else 0.25 s, 0.5 s, 1 s… (at most 4 s)."""
    if isinstance(exc, Transient) and exc.retry_after is not None:
        return min(max(exc.retry_after, 0.0), MAX_RETRY_AFTER_S)
    return float(min(0.25 * 2 ** (attempt - 1), 4.0))


def _wait(state: RetryCallState) -> float:
    # tenacity asks how long to wait only after an attempt failed: there is always an outcome.
    assert state.outcome is not None
    return retry_wait(state.outcome.exception(), state.attempt_number)


def retrying(action: Callable[[], T], what: str, sleep: Callable[[float], None] = time.sleep) -> T:
    """Run ``action``, retrying `Transient` failures (`ATTEMPTS` in all, `retry_wait` seconds
    apart, waited with ``sleep``); then `RegistryError`. Other exceptions pass at once."""
    policy = Retrying(
        retry=retry_if_exception_type(Transient),
        stop=stop_after_attempt(ATTEMPTS),
        wait=_wait,
        sleep=sleep,
        reraise=True,
    )
    try:
        return policy(action)
    except Transient as exc:
        raise RegistryError(f"{what}: {exc} (after {ATTEMPTS} attempts)") from None


def retry_after(response: requests.Response) -> float | None:
    """``Retry-After`` in seconds (the delta form; an HTTP date is treated as absent)."""
    value = response.headers.get(H_RETRY_AFTER)
    if value is None:
        return None
    value = value.strip()
    return float(value) if value.isascii() and value.isdigit() else None


def raise_if_transient(response: requests.Response, what: str) -> requests.Response:
    """`Transient` for 429 and 5xx answers (with their Retry-After), else ``response``."""
    if response.status_code == 429 or response.status_code >= 500:
        raise Transient(f"HTTP {response.status_code} for {what}", retry_after(response))
    return response


def reason(exc: requests.RequestException) -> str:
    """A short reason ('[Errno 111] Connection refused') instead of urllib3's paragraph."""
    match = re.search(r"\[Errno -?\d+\] [^'\")]+", str(exc))
    if match:
        return match.group(0).strip()
    return "timed out" if isinstance(exc, requests.Timeout) else first_line(exc)


# ---- references and credentials


@dataclass(frozen=True)
class Reference:
    registry: str
    repository: str
    #: Tag or ``sha256:…`` digest.
    reference: str

    @classmethod
    def parse(cls, ref: str) -> Reference:
        """Split ``[host[:port]/]path[:tag][@digest]``; Docker Hub names get their real host.

        Raises `UsageError` for anything that is not an image reference.
        """
        if not IMAGE_REF.fullmatch(ref):
            raise UsageError(
                f"{describe(ref)!r} is not an image reference ([host[:port]/]path[:tag][@digest])"
            )
        name, tag = docker.utils.parse_repository_tag(ref)
        # docker-py's own refusals (a scheme, a host starting or ending with '-') cannot
        # happen to a name IMAGE_REF admits.
        registry, repository = docker.auth.resolve_repository_name(name)
        if registry == docker.auth.INDEX_NAME:
            registry = "registry-1.docker.io"
            repository = repository if "/" in repository else f"library/{repository}"
        return cls(registry, repository, tag or "latest")

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        """The reference as Docker writes it: ``host/repo@sha256:…`` for a digest, ``host/repo:tag``."""
        return joined(self.name, self.reference)


def joined(repository: str, reference: str) -> str:
    """``repository@sha256:…`` for a digest, ``repository:tag`` for a tag (never ``repo:sha256:…``)."""
    separator = "@" if reference.startswith("sha256:") else ":"
    return f"{repository}{separator}{reference}"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


def credentials_for(registry: str, environ: Mapping[str, str]) -> Credentials | None:
    """REGISTRY_USERNAME/REGISTRY_PASSWORD, else the Docker config's entry for ``registry``."""
    user, password = environ.get("REGISTRY_USERNAME"), environ.get("REGISTRY_PASSWORD")
    if user and password:
        return Credentials(user, password)
    try:
        found = docker.auth.resolve_authconfig(docker.auth.load_config(), registry)
    except docker.errors.DockerException:
        return None
    # docker-py spells entries from a credential helper "Username"/"Password" and entries
    # decoded from config.json's own "auth" field "username"/"password": both are logins.
    found = found or {}
    user = found.get("Username") or found.get("username")
    password = found.get("Password") or found.get("password")
    return Credentials(str(user), str(password)) if user and password else None


def is_loopback(registry: str) -> bool:
    """True for ``127.x.y.z[:port]``, ``[::1][:port]`` and ``localhost[:port]``; False for
    anything else, a malformed host included (the URL parser splits host and port)."""
    try:
        # `hostname` is None for an empty host: "None" is no address, so no loopback.
        host = str(urlsplit(f"//{registry}").hostname)
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ---- auth: one step on the session


class ChallengeAuth(requests.auth.AuthBase):
    """Answers a registry's 401 challenge once per scope (Bearer token or Basic), then replays.

    Modelled on `requests.auth.HTTPDigestAuth`: a response hook sees the 401, obtains
    the credentials the challenge asks for and resends the request on the same
    connection pool. Token fetches are retried through `retrying` like any call.
    """

    def __init__(self, registry: str, credentials: Credentials | None, timeout: float) -> None:
        self.registry = registry
        self.credentials = credentials
        self.timeout = timeout
        self.header: str | None = None

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.header is not None:
            request.headers[H_AUTHORIZATION] = self.header
        request.register_hook("response", self._on_response)  # type: ignore[no-untyped-call]
        return request

    def _on_response(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        # Runs once per request: the replay below goes straight to the adapter, which runs no
        # hooks, so a 401 to the replay (a wrong login) is returned as it is, never answered again.
        if response.status_code != 401:
            return response
        self.header = self._answer(response.headers.get(H_AUTHENTICATE))
        response.content  # noqa: B018 - drain the body so the connection can be reused
        response.close()
        replay = response.request.copy()
        replay.headers[H_AUTHORIZATION] = self.header
        sent = response.connection.send(replay, **kwargs)  # its `request` is the replay
        sent.history.append(response)
        return sent

    def _answer(self, challenge: str | None) -> str:
        if challenge is None:
            raise RegistryError(f"registry {self.registry} answered HTTP 401 without an auth challenge")
        scheme, _, params_text = challenge.partition(" ")
        params = dict(re.findall(r'(\w+)="([^"]*)"', params_text))
        creds = self.credentials
        if scheme.lower() == "basic":
            if creds is None:
                raise RegistryError(
                    f"registry {self.registry} requires credentials",
                    hint="set REGISTRY_USERNAME and REGISTRY_PASSWORD, or `docker login`",
                )
            return requests.auth._basic_auth_str(creds.username, creds.password)
        if scheme.lower() != "bearer" or "realm" not in params:
            raise RegistryError(f"registry {self.registry} sent an unsupported auth challenge: {scheme}")
        return f"Bearer {self._token(params)}"

    def _token(self, params: dict[str, str]) -> str:
        query = {"service": params.get("service", "")}
        if params.get("scope"):
            query["scope"] = params["scope"]
        auth = (self.credentials.username, self.credentials.password) if self.credentials else None

        def fetch() -> requests.Response:
            try:
                got = requests.get(params["realm"], params=query, auth=auth, timeout=self.timeout)
            except requests.RequestException as exc:
                raise Transient(reason(exc)) from None
            return raise_if_transient(got, "the token service")

        answer = retrying(fetch, f"token service of {self.registry}")
        if answer.status_code != 200:
            raise RegistryError(
                f"registry {self.registry} refused the credentials (HTTP {answer.status_code})",
                hint="check REGISTRY_USERNAME/REGISTRY_PASSWORD or `docker login`",
            )
        body = json_body(answer, f"the token service of {self.registry}")
        # Distribution's token spec: "token", or OAuth2's "access_token" (either may be given).
        token = body.get("token") or body.get("access_token")
        if not isinstance(token, str) or not token:
            raise RegistryError(f"the token service of {self.registry} answered no token")
        return token


class RegistryClient:
    """Distribution v2 reads (ping, manifests, blobs) with challenge auth and retries."""

    def __init__(self, registry: str, credentials: Credentials | None = None, timeout: float = 30) -> None:
        self.registry = registry
        self.base = f"{'http' if is_loopback(registry) else 'https'}://{registry}"
        self.timeout = timeout
        self.session = requests.Session()
        self.session.auth = ChallengeAuth(registry, credentials, timeout)

    def get(self, path: str, accept: str | None = None) -> requests.Response:
        """GET ``/v2/<path>``; retried when transient, RegistryError when it stays down."""

        def once() -> requests.Response:
            try:
                response = self.session.get(
                    f"{self.base}/v2/{path}",
                    headers={H_ACCEPT: accept} if accept else {},
                    timeout=self.timeout,
                )
            except requests.RequestException as exc:
                raise Transient(reason(exc)) from None
            return raise_if_transient(response, f"/v2/{path}")

        return retrying(once, f"registry {self.registry}")

    def ping(self) -> None:
        """`RegistryError` unless ``/v2/`` answers (200, or 401 without usable credentials)."""
        response = self.get("")
        if response.status_code not in (200, 401):
            raise RegistryError(f"registry {self.registry}: /v2/ answered HTTP {response.status_code}")

    def manifest(self, repository: str, reference: str) -> tuple[str, dict[str, Any]]:
        """``(Docker-Content-Digest, manifest)``; an index resolves to linux/amd64."""
        response = self.get(f"{repository}/manifests/{reference}", ACCEPT)
        if response.status_code == 404:
            raise RegistryError(
                f"{joined(f'{self.registry}/{repository}', reference)} is not in the registry"
            )
        if response.status_code != 200:
            raise RegistryError(
                f"{joined(f'{self.registry}/{repository}', reference)}: manifest answered"
                f" HTTP {response.status_code}"
            )
        body = json_body(response, joined(f"{self.registry}/{repository}", reference))
        # The digest is the sha256 of the manifest's bytes; registries send it, but need not.
        digest = response.headers.get(H_DIGEST) or f"sha256:{hashlib.sha256(response.content).hexdigest()}"
        if body.get("mediaType") in (MANIFEST_LIST, OCI_INDEX) or "manifests" in body:
            return self.manifest(repository, _pick_platform(body, joined(repository, reference)))
        return digest, body

    def blob_json(self, repository: str, digest: str) -> dict[str, Any]:
        """A JSON blob (an image config) of ``repository``."""
        response = self.get(f"{repository}/blobs/{digest}")
        if response.status_code != 200:
            raise RegistryError(
                f"{self.registry}/{repository}: blob {digest} answered HTTP {response.status_code}"
            )
        return json_body(response, f"{self.registry}/{repository}: blob {digest}")


def json_body(response: requests.Response, what: str) -> dict[str, Any]:
    """The JSON object ``response`` carries; `RegistryError` naming ``what`` for anything else
    (a proxy's HTML page, a cut-off body, a JSON list)."""
    with contextlib.suppress(ValueError):  # not JSON at all
        body = response.json()
        if isinstance(body, dict):
            return body
    raise RegistryError(f"{what}: the answer is not a JSON object")


def _pick_platform(index: dict[str, Any], name: str) -> str:
    for entry in index.get("manifests", []):
        platform = entry.get("platform", {})
        if platform.get("os") == "linux" and platform.get("architecture") == "amd64":
            return str(entry["digest"])
    raise RegistryError(f"{name}: the index has no linux/amd64 image")
