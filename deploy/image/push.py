"""Push a built image through the engine, check its digest and size, then its moving tags.

Push goes through the engine (docker SDK) so credentials, layer reuse and compression
are the engine's; the digest from the push stream (``aux.Digest``) is cross-checked
against the registry's ``Docker-Content-Digest`` for every tag. Transient failures are
retried through `deploy.image.registry.retrying`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import docker.errors
import requests

from deploy.errors import RegistryError, UsageError
from deploy.image.record import BuildRecord
from deploy.image.registry import (
    Credentials,
    Reference,
    RegistryClient,
    Transient,
    credentials_for,
    reason,
    retrying,
)
from deploy.image.size import ImageSize, check_budget, image_size

if TYPE_CHECKING:
    from docker import DockerClient

_TRANSIENT_PUSH = re.compile(
    r"connection (?:refused|reset)|broken pipe|EOF|i/o timeout|TLS handshake timeout|"
    r"too many requests|\b429\b|\b50[0-4]\b|Service Unavailable|Bad Gateway",
    re.IGNORECASE,
)


class PushListener(Protocol):
    """Progress of a push. ``current``/``total`` are the engine's figures for a layer:
    bytes of the layer's **uncompressed** content (the engine compresses as it sends)."""

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
    client: DockerClient, repository: str, tag: str, auth: Credentials | None, listener: PushListener
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
            raise Transient(reason(exc)) from None
        if digest is None:
            raise RegistryError(f"push of {repository}:{tag}: the engine reported no digest")
        return digest

    return retrying(once, f"push of {repository}:{tag}")


def push_image(
    client: DockerClient, record: BuildRecord, environ: Mapping[str, str], listener: PushListener
) -> PushResult:
    """Push ``record``'s image (its id, retagged with its tags) under its immutable tag first,
    measure it, enforce its budget, then the other tags.

    A registry that is down fails the ping before anything is pushed. An image over
    budget (``record.max_compressed_mb``, inclusive) leaves only its content-addressed
    layers and immutable tag in the registry; no moving tag (branch, semver, latest)
    is pushed and nothing is reported as pushed.
    """
    started = time.perf_counter()
    repository, immutable = record.repository, record.immutable
    ref = Reference.parse(f"{repository}:{immutable}")
    creds = credentials_for(ref.registry, environ)
    registry = RegistryClient(ref.registry, creds)
    registry.ping()
    try:
        image = client.images.get(record.id)
        inspect, history = image.attrs, image.history()
    except docker.errors.ImageNotFound:
        raise UsageError(
            f"image {record.id[:19]} recorded for {repository}:{immutable} is no longer in the engine",
            hint="run `rpdeploy build` again",
        ) from None

    # The engine pushes by tag, and another build may have taken these tags since (another
    # environment, another config file, another SOURCE_DATE_EPOCH): point them back at the image
    # this record describes, so that push pushes what the build recorded.
    for tag in record.tags:
        client.api.tag(record.id, repository, tag)

    def checked(tag: str) -> str:
        return _push_checked(client, registry=registry, ref=ref, tag=tag, creds=creds, listener=listener)

    digest = checked(immutable)
    _, size = image_size(registry, ref.repository, digest, history, int(inspect.get("Size", 0)))
    check_budget(size, record.max_compressed_mb, f"{repository}:{immutable}")
    for tag in [t for t in record.tags if t != immutable]:
        other = checked(tag)
        if other != digest:
            raise RegistryError(f"{repository}:{tag} pushed as {other}, but {immutable} is {digest}")
    return PushResult(
        repository=repository,
        digest=digest,
        tags=[f"{repository}:{tag}" for tag in record.tags],
        size=size,
        seconds=round(time.perf_counter() - started, 3),
    )


def _push_checked(
    client: DockerClient,
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
