"""The registry side of an image: push through the engine, manifests, digests and sizes.

- Push goes through the engine (docker SDK) so credentials, layer reuse and
  compression are the engine's; the digest from the push stream (``aux.Digest``) is
  cross-checked against the registry's ``Docker-Content-Digest`` for every tag.
- Compressed size is not in the Engine API: it is the sum of ``layers[].size`` in the
  registry manifest. Each layer's instruction comes from the image config's history
  (entries without ``empty_layer`` line up with the manifest's layers).
- Transient failures (connection refused or reset, timeouts, 429 and 5xx) are retried
  with exponential backoff (tenacity); then `RegistryError` (exit 3).
- Credentials: ``REGISTRY_USERNAME``/``REGISTRY_PASSWORD``, else the Docker config
  (``~/.docker/config.json`` and its credential helpers, read by docker-py).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import docker.auth
import docker.errors
import docker.utils
import requests
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from deploy.config.patterns import IMAGE_REF, describe
from deploy.errors import BudgetExceeded, RegistryError, UsageError
from deploy.image.engine import first_line

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ACCEPT = ", ".join([MANIFEST_V2, OCI_MANIFEST, MANIFEST_LIST, OCI_INDEX])
#: Budgets are in MB = 10^6 bytes (what `docker images` and registries' UIs show).
MB = 1_000_000
ATTEMPTS = 4
_TRANSIENT_PUSH = re.compile(
    r"connection (?:refused|reset)|broken pipe|EOF|i/o timeout|TLS handshake timeout|"
    r"too many requests|\b429\b|\b50[0-4]\b|Service Unavailable|Bad Gateway",
    re.IGNORECASE,
)
T = TypeVar("T")


class Transient(Exception):
    """A failure worth retrying; becomes RegistryError when the attempts run out."""


def retrying(action: Callable[[], T], what: str) -> T:
    """Run ``action``, retrying `Transient` failures with backoff (0.25 s, 0.5 s, 1 s)."""
    try:
        for attempt in Retrying(
            retry=retry_if_exception_type(Transient),
            stop=stop_after_attempt(ATTEMPTS),
            wait=wait_exponential(multiplier=0.25, max=4),
            reraise=True,
        ):
            with attempt:
                return action()
    except Transient as exc:
        raise RegistryError(f"{what}: {exc} (after {ATTEMPTS} attempts)") from None
    raise AssertionError("unreachable")  # pragma: no cover - Retrying either returns or raises


# ---- references and credentials


@dataclass(frozen=True)
class Reference:
    registry: str
    repository: str
    #: Tag or ``sha256:…`` digest.
    reference: str

    @classmethod
    def parse(cls, ref: str) -> Reference:
        if not IMAGE_REF.fullmatch(ref):
            raise UsageError(
                f"{describe(ref)!r} is not an image reference ([host[:port]/]path[:tag][@digest])"
            )
        name, tag = docker.utils.parse_repository_tag(ref)
        try:
            registry, repository = docker.auth.resolve_repository_name(name)
        except docker.errors.InvalidRepository as exc:
            raise UsageError(f"{ref!r} is not an image reference: {exc}") from None
        if registry == docker.auth.INDEX_NAME:
            registry = "registry-1.docker.io"
            repository = repository if "/" in repository else f"library/{repository}"
        return cls(registry, repository, tag or "latest")

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


def credentials_for(registry: str, environ: Mapping[str, str]) -> Credentials | None:
    user, password = environ.get("REGISTRY_USERNAME"), environ.get("REGISTRY_PASSWORD")
    if user and password:
        return Credentials(user, password)
    try:
        found = docker.auth.resolve_authconfig(docker.auth.load_config(), registry)
    except docker.errors.DockerException:
        return None
    if found and found.get("Username") and found.get("Password"):
        return Credentials(str(found["Username"]), str(found["Password"]))
    return None


# ---- the registry's HTTP API (distribution v2)


def _is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host
    return name in {"localhost", "[::1]"} or name.startswith("127.")


def _reason(exc: requests.RequestException) -> str:
    """A short reason ('[Errno 111] Connection refused') instead of urllib3's paragraph."""
    match = re.search(r"\[Errno -?\d+\] [^'\")]+", str(exc))
    if match:
        return match.group(0).strip()
    return "timed out" if isinstance(exc, requests.Timeout) else first_line(exc)


class RegistryClient:
    """Distribution v2 reads (ping, manifests, blobs) with token or basic auth and retries."""

    def __init__(self, registry: str, credentials: Credentials | None = None, timeout: float = 30) -> None:
        self.registry = registry
        self.base = f"{'http' if _is_loopback(registry) else 'https'}://{registry}"
        self.credentials = credentials
        self.timeout = timeout
        self.session = requests.Session()
        self._auth_header: dict[str, str] = {}

    def get(self, path: str, accept: str | None = None, scope: str | None = None) -> requests.Response:
        """GET ``/v2/<path>``; retried when transient, RegistryError when it stays down."""
        return retrying(lambda: self._get_once(path, accept, scope), f"registry {self.registry}")

    def _get_once(self, path: str, accept: str | None, scope: str | None) -> requests.Response:
        headers = {"Accept": accept} if accept else {}
        response = self._send(path, {**headers, **self._auth_header})
        if response.status_code == 401:
            self._authenticate(response, scope)
            response = self._send(path, {**headers, **self._auth_header})
        if response.status_code == 429 or response.status_code >= 500:
            raise Transient(f"HTTP {response.status_code} for /v2/{path}")
        return response

    def _send(self, path: str, headers: dict[str, str]) -> requests.Response:
        try:
            return self.session.get(f"{self.base}/v2/{path}", headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise Transient(_reason(exc)) from None

    def _authenticate(self, response: requests.Response, scope: str | None) -> None:
        challenge = response.headers.get("WWW-Authenticate", "")
        scheme, _, params_text = challenge.partition(" ")
        params = dict(re.findall(r'(\w+)="([^"]*)"', params_text))
        creds = self.credentials
        if scheme.lower() == "basic":
            if creds is None:
                raise RegistryError(
                    f"registry {self.registry} requires credentials",
                    hint="set REGISTRY_USERNAME and REGISTRY_PASSWORD, or `docker login`",
                )
            self._auth_header = {}
            self.session.auth = (creds.username, creds.password)
            return
        if scheme.lower() != "bearer" or "realm" not in params:
            raise RegistryError(f"registry {self.registry} sent an unsupported auth challenge: {scheme}")
        query = {"service": params.get("service", "")}
        if scope or params.get("scope"):
            query["scope"] = scope or params["scope"]
        auth = (creds.username, creds.password) if creds else None

        def fetch() -> requests.Response:
            try:
                got = requests.get(params["realm"], params=query, auth=auth, timeout=self.timeout)
            except requests.RequestException as exc:
                raise Transient(_reason(exc)) from None
            if got.status_code == 429 or got.status_code >= 500:
                raise Transient(f"token service answered HTTP {got.status_code}")
            return got

        token_response = retrying(fetch, f"token service of {self.registry}")
        if token_response.status_code != 200:
            raise RegistryError(
                f"registry {self.registry} refused the credentials (HTTP {token_response.status_code})",
                hint="check REGISTRY_USERNAME/REGISTRY_PASSWORD or `docker login`",
            )
        body = token_response.json()
        token = body.get("token") or body.get("access_token")
        self._auth_header = {"Authorization": f"Bearer {token}"}

    def ping(self) -> None:
        response = self.get("")
        if response.status_code not in (200, 401):
            raise RegistryError(f"registry {self.registry}: /v2/ answered HTTP {response.status_code}")

    def manifest(self, repository: str, reference: str) -> tuple[str, dict[str, Any]]:
        """``(Docker-Content-Digest, manifest)``; an index resolves to this machine's platform."""
        scope = f"repository:{repository}:pull"
        response = self.get(f"{repository}/manifests/{reference}", ACCEPT, scope)
        if response.status_code == 404:
            raise RegistryError(f"{self.registry}/{repository}:{reference} is not in the registry")
        if response.status_code != 200:
            raise RegistryError(
                f"{self.registry}/{repository}:{reference}: manifest answered HTTP {response.status_code}"
            )
        body: dict[str, Any] = response.json()
        digest = response.headers.get("Docker-Content-Digest", "")
        if body.get("mediaType") in (MANIFEST_LIST, OCI_INDEX) or "manifests" in body:
            return self.manifest(repository, _pick_platform(body, f"{repository}:{reference}"))
        return digest, body

    def blob_json(self, repository: str, digest: str) -> dict[str, Any]:
        response = self.get(f"{repository}/blobs/{digest}", scope=f"repository:{repository}:pull")
        if response.status_code != 200:
            raise RegistryError(
                f"{self.registry}/{repository}: blob {digest} answered HTTP {response.status_code}"
            )
        data: dict[str, Any] = response.json()
        return data


def _pick_platform(index: dict[str, Any], name: str) -> str:
    for entry in index.get("manifests", []):
        platform = entry.get("platform", {})
        if platform.get("os") == "linux" and platform.get("architecture") == "amd64":
            return str(entry["digest"])
    raise RegistryError(f"{name}: the index has no linux/amd64 image")


# ---- sizes


@dataclass(frozen=True)
class Layer:
    digest: str
    compressed_bytes: int
    uncompressed_bytes: int | None
    instruction: str


@dataclass(frozen=True)
class ImageSize:
    compressed_bytes: int
    uncompressed_bytes: int | None
    layers: list[Layer]

    def largest(self, count: int = 5) -> list[Layer]:
        return sorted(self.layers, key=lambda layer: layer.compressed_bytes, reverse=True)[:count]

    def to_json(self) -> dict[str, Any]:
        return {
            "compressed_bytes": self.compressed_bytes,
            "uncompressed_bytes": self.uncompressed_bytes,
            "layers": [layer.__dict__ for layer in self.layers],
        }


def instruction_of(entry: Mapping[str, Any]) -> str:
    """The Dockerfile instruction of an image-history entry, as a person would write it."""
    text = str(entry.get("created_by") or entry.get("CreatedBy") or "").strip()
    if not text:
        comment = str(entry.get("comment") or entry.get("Comment") or "").strip()
        return f"({comment or 'no history'})"
    text = re.sub(r"^\|\d+ (?:\S+=\S* )*", "", text)  # build args the legacy builder prepends
    text = text.removesuffix("# buildkit").strip()
    # COPY/ADD record a 64-hex content hash of the source: 12 are enough to tell layers apart.
    text = re.sub(r"\b(dir|file|multi):([0-9a-f]{12})[0-9a-f]{52}\b", r"\1:\2", text)
    if text.startswith("/bin/sh -c #(nop)"):
        return text.removeprefix("/bin/sh -c #(nop)").strip()
    if text.startswith("/bin/sh -c "):
        return "RUN " + text.removeprefix("/bin/sh -c ")
    return text


def image_size(
    registry: RegistryClient,
    repository: str,
    reference: str,
    engine_history: list[dict[str, Any]] | None = None,
    uncompressed_total: int | None = None,
) -> tuple[str, ImageSize]:
    """Digest and sizes of an image in the registry; uncompressed figures from the engine if given."""
    digest, manifest = registry.manifest(repository, reference)
    config = registry.blob_json(repository, manifest["config"]["digest"])
    history = config.get("history") or []
    built = [entry for entry in history if not entry.get("empty_layer")]
    # The engine lists the same history newest-first, with each layer's uncompressed size.
    engine = list(reversed(engine_history)) if engine_history else []
    engine_sizes = [
        int(e.get("Size", 0)) for e, h in zip(engine, history, strict=False) if not h.get("empty_layer")
    ]
    aligned = len(engine) == len(history) and len(engine_sizes) == len(manifest["layers"])
    layers = []
    for index, blob in enumerate(manifest["layers"]):
        entry = built[index] if len(built) == len(manifest["layers"]) else {}
        layers.append(
            Layer(
                digest=str(blob["digest"]),
                compressed_bytes=int(blob["size"]),
                uncompressed_bytes=engine_sizes[index] if aligned else None,
                instruction=instruction_of(entry),
            )
        )
    compressed = sum(layer.compressed_bytes for layer in layers)
    return digest, ImageSize(compressed, uncompressed_total, layers)


def human_bytes(count: int | None) -> str:
    """``37.85 MB``, ``1.1 kB``, ``98 B`` (decimal units, like the budget); ``?`` when unknown."""
    if count is None:
        return "?"
    if count >= MB:
        return f"{count / MB:.2f} MB"
    return f"{count / 1000:.1f} kB" if count >= 1000 else f"{count} B"


def layer_table(layers: list[Layer], width: int = 70) -> list[str]:
    """Plain lines: compressed, uncompressed, instruction (cut to ``width``)."""
    lines = [f"{'compressed':>11} {'uncompressed':>13}  instruction"]
    for layer in layers:
        text = layer.instruction if len(layer.instruction) <= width else layer.instruction[: width - 1] + "…"
        lines.append(
            f"{human_bytes(layer.compressed_bytes):>11} {human_bytes(layer.uncompressed_bytes):>13}  {text}"
        )
    return lines


def check_budget(size: ImageSize, max_mb: float | None, image: str) -> None:
    if max_mb is None or size.compressed_bytes <= max_mb * MB:
        return
    lines = [
        f"{image} is {human_bytes(size.compressed_bytes)} compressed, over the "
        f"image.max_compressed_mb budget of {max_mb:g} MB; largest layers:",
        *("  " + line for line in layer_table(size.largest())),
    ]
    raise BudgetExceeded(
        "\n".join(lines),
        hint="move dependencies out of the image (strategy: slim) or raise image.max_compressed_mb",
    )


# ---- push


class PushListener(Protocol):
    def layer(self, tag: str, layer_id: str, status: str, current: int | None, total: int | None) -> None: ...


@dataclass(frozen=True)
class PushResult:
    repository: str
    digest: str
    #: Full references pushed, highest priority first.
    tags: list[str]
    size: ImageSize
    seconds: float

    @property
    def image(self) -> str:
        return f"{self.repository}@{self.digest}"

    def to_json(self) -> dict[str, Any]:
        return {"image": self.image, "digest": self.digest, "tags": self.tags, "size": self.size.to_json()}


def engine_push(
    client: Any, repository: str, tag: str, auth: Credentials | None, listener: PushListener
) -> str:
    """Push one tag through the engine, retrying transient failures; the digest from the stream."""

    def once() -> str:
        digest: str | None = None
        auth_config = {"username": auth.username, "password": auth.password} if auth else None
        try:
            stream = client.api.push(repository, tag=tag, stream=True, decode=True, auth_config=auth_config)
            for event in stream:
                if "error" in event:
                    message = str(event.get("error", "")).strip()
                    if _TRANSIENT_PUSH.search(message):
                        raise Transient(message)
                    raise RegistryError(f"push of {repository}:{tag} failed: {message}")
                aux = event.get("aux")
                if isinstance(aux, dict) and aux.get("Digest"):
                    digest = str(aux["Digest"])
                elif "id" in event and "status" in event:
                    detail = event.get("progressDetail") or {}
                    listener.layer(
                        tag,
                        str(event["id"]),
                        str(event["status"]),
                        detail.get("current"),
                        detail.get("total"),
                    )
        except docker.errors.APIError as exc:
            raise RegistryError(f"push of {repository}:{tag} failed: {exc.explanation or exc}") from None
        except requests.RequestException as exc:
            raise Transient(_reason(exc)) from None
        if digest is None:
            raise RegistryError(f"push of {repository}:{tag}: the engine reported no digest")
        return digest

    return retrying(once, f"push of {repository}:{tag}")


def push_image(
    client: Any,
    *,
    repository: str,
    image_id: str,
    tags: list[str],
    immutable: str,
    max_compressed_mb: float | None,
    environ: Mapping[str, str],
    listener: PushListener,
) -> PushResult:
    """Push ``immutable`` first, measure it, enforce the budget, then push the other tags.

    A registry that is down fails the ping before anything is pushed. An image over
    budget leaves only its content-addressed layers and immutable tag in the registry;
    no moving tag (branch, semver, latest) is pushed and nothing is reported as pushed.
    """
    started = time.perf_counter()
    ref = Reference.parse(f"{repository}:{immutable}")
    creds = credentials_for(ref.registry, environ)
    registry = RegistryClient(ref.registry, creds)
    registry.ping()
    try:
        inspect = client.api.inspect_image(image_id)
        history = client.api.history(image_id)
    except docker.errors.ImageNotFound:
        raise UsageError(
            f"image {image_id[:19]} recorded for {repository}:{immutable} is no longer in the engine",
            hint="run `rpdeploy build` again",
        ) from None
    ordered = [immutable, *[t for t in tags if t != immutable]]

    def checked(tag: str) -> str:
        return _push_checked(client, registry=registry, ref=ref, tag=tag, creds=creds, listener=listener)

    digest = checked(immutable)
    _, size = image_size(registry, ref.repository, digest, history, int(inspect.get("Size", 0)))
    check_budget(size, max_compressed_mb, f"{repository}:{immutable}")
    for tag in ordered[1:]:
        other = checked(tag)
        if other != digest:
            raise RegistryError(f"{repository}:{tag} pushed as {other}, but {immutable} is {digest}")
    return PushResult(
        repository=repository,
        digest=digest,
        tags=[f"{repository}:{tag}" for tag in tags],
        size=size,
        seconds=round(time.perf_counter() - started, 3),
    )


def _push_checked(
    client: Any,
    *,
    registry: RegistryClient,
    ref: Reference,
    tag: str,
    creds: Credentials | None,
    listener: PushListener,
) -> str:
    repository = f"{ref.registry}/{ref.repository}"
    pushed = engine_push(client, repository, tag, creds, listener)
    served, _ = registry.manifest(ref.repository, tag)
    if served != pushed:
        raise RegistryError(
            f"{repository}:{tag}: the engine pushed {pushed} but the registry serves {served}"
        )
    return pushed
