"""The push record, ``build/rpdeploy/<env>/push.json``, and the image a deploy uses.

`rpdeploy push` writes what it pushed (``repo@sha256:…``, digest, tags, size, when);
`plan`/`apply` deploy exactly that digest unless ``--image`` names another image. A
render-time tag is never used: rendering before a commit names a tag nobody built.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deploy import files, layout
from deploy.config import LoadedConfig
from deploy.errors import UsageError
from deploy.image.push import PushResult
from deploy.image.registry import Reference
from deploy.image.tags import IMMUTABLE_TAG


@dataclass(frozen=True)
class PushRecord:
    """What one `rpdeploy push` put in the registry."""

    #: ``<registry>/<repository>@sha256:…``: what a deploy references.
    image: str
    digest: str
    #: Every reference pushed (``repo:tag``), highest priority first.
    tags: list[str]
    #: Compressed size in bytes (the sum of the manifest's layers).
    size: int
    #: RFC 3339 UTC.
    pushed_at: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PushRecord:
        return cls(
            image=str(data["image"]),
            digest=str(data["digest"]),
            tags=[str(tag) for tag in data["tags"]],
            size=int(data["size"]),
            pushed_at=str(data["pushed_at"]),
        )


def record_path(loaded: LoadedConfig) -> Path:
    return loaded.root / layout.push_record(loaded.environment)


def write_push_record(loaded: LoadedConfig, result: PushResult) -> Path:
    """Record ``result`` atomically (a full disk leaves the previous record, never half of one)."""
    record = PushRecord(
        image=result.image,
        digest=result.digest,
        tags=list(result.tags),
        size=result.size.compressed_bytes,
        pushed_at=datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    path = record_path(loaded)
    files.write_text(loaded.root, path, json.dumps(record.to_json(), indent=2) + "\n")
    return path


def read_push_record(loaded: LoadedConfig) -> PushRecord | None:
    """The last push of ``loaded``'s environment; None when there is none; UsageError if unreadable."""
    path = record_path(loaded)
    text = files.read_text(loaded.root, path)
    if text is None:
        return None
    try:
        return PushRecord.from_json(json.loads(text))
    except (ValueError, TypeError, KeyError) as exc:
        raise UsageError(f"{path}: unreadable push record ({exc}); run `rpdeploy push` again") from None


def is_immutable(reference: str) -> bool:
    """Whether ``reference`` pins content: a digest, or the sha tag `rpdeploy build` gives a commit."""
    ref = Reference.parse(reference)
    return ref.reference.startswith("sha256:") or bool(IMMUTABLE_TAG.fullmatch(ref.reference))


def deploy_image(loaded: LoadedConfig, image: str | None, *, allow_mutable_tag: bool = False) -> str:
    """The image to deploy: ``image`` (``--image``), else the push record's ``image@digest``.

    A mutable tag (``latest``, a branch) is refused unless ``allow_mutable_tag``: RunPod
    may keep serving a cached image for a tag that moved.
    """
    if image is None:
        record = read_push_record(loaded)
        if record is None:
            env = loaded.environment or layout.DEFAULT_ENV
            raise UsageError(
                f"no pushed image for env {env}: run `rpdeploy push --env {env}`, or pass --image REF"
            )
        image = record.image
    if not allow_mutable_tag and not is_immutable(image):
        tag = Reference.parse(image).reference
        raise UsageError(
            f"{image}: the tag {tag!r} can move (RunPod may keep serving a cached image for it)",
            hint="pass an immutable reference (repo@sha256:… or the sha-<commit> tag), "
            "or --allow-mutable-tag",
        )
    return image
