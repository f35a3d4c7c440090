"""The build record: what `rpdeploy build` produced, kept in ``build/rpdeploy/<env>/build.json``.

`rpdeploy push` (and the coming release code) read it back instead of rebuilding.
Written atomically and inside the project (`deploy.files`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from deploy import files, layout
from deploy.config import LoadedConfig
from deploy.errors import UsageError
from deploy.image.labels import CREATED


def _now() -> str:
    """The wall clock in UTC, RFC 3339 (`time.gmtime`: never the machine's time zone)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(frozen=True)
class BuildStep:
    number: int
    instruction: str
    cached: bool


@dataclass(frozen=True)
class BuildRecord:
    """What a build produced; `rpdeploy push` reads it back from build.json."""

    #: ``<registry>/<repository>``.
    repository: str
    #: Engine image id (``sha256:`` of the image config).
    id: str
    #: Tag names, highest priority first; ``immutable`` is among them.
    tags: list[str]
    immutable: str
    #: org.opencontainers.image.version (not "version": JSON results use that key for their schema).
    oci_version: str
    dirty: bool
    labels: dict[str, str]
    builder: str
    dockerfile: str
    context_bytes: int
    context_files: int
    context_digest: str
    steps: list[BuildStep]
    seconds: float
    environment: str | None
    max_compressed_mb: float | None
    #: When this build ran (RFC 3339 UTC, the wall clock). Not part of the image, which is
    #: dated by its ``created`` label (the commit time) and so stays reproducible.
    built_at: str = field(default_factory=_now)

    @property
    def image(self) -> str:
        """The immutable reference (what deploys use until push adds the digest)."""
        return f"{self.repository}:{self.immutable}"

    @property
    def refs(self) -> list[str]:
        return [f"{self.repository}:{tag}" for tag in self.tags]

    @property
    def created(self) -> str | None:
        """The image's own date: its ``org.opencontainers.image.created`` label (commit time)."""
        return self.labels.get(CREATED)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["image"] = self.image
        data["created"] = self.created
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BuildRecord:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["steps"] = [BuildStep(**s) for s in data.get("steps", [])]
        return cls(**fields)


def record_path(loaded: LoadedConfig) -> Path:
    """Absolute path of the build record for ``loaded``'s environment."""
    return loaded.root / layout.build_record(loaded.environment)


def read_record(loaded: LoadedConfig) -> BuildRecord:
    """The recorded build; `UsageError` when there is none or it is unreadable."""
    path = record_path(loaded)
    try:
        text = files.read_text(loaded.root, path)
        if text is None:
            raise UsageError(
                f"{path}: no build recorded for this project/environment",
                hint="run `rpdeploy build` first, or `rpdeploy push --build`",
            )
        return BuildRecord.from_json(json.loads(text))
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{path}: unreadable build record ({exc}); run `rpdeploy build` again") from None


def write_record(loaded: LoadedConfig, record: BuildRecord) -> Path:
    """Write ``record`` atomically (never a 0-byte build.json on a full disk)."""
    path = record_path(loaded)
    files.write_text(loaded.root, path, json.dumps(record.to_json(), indent=2) + "\n")
    return path
