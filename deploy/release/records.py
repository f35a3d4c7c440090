"""The deploy history, ``build/rpdeploy/<env>/deploy.json``: one entry per apply that wrote.

Append-only (each write rewrites the file atomically with one more entry, through
`deploy.files`), masked (secret values never reach it), and without endpoint ids: names
are the identity, ids are read from the API each time.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deploy import files, layout
from deploy.config import LoadedConfig
from deploy.errors import UsageError


def now() -> str:
    return datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def history_path(loaded: LoadedConfig, record_env: str | None) -> Path:
    return loaded.root / layout.deploy_record(record_env)


def read_history(loaded: LoadedConfig, record_env: str | None) -> list[dict[str, Any]]:
    """Every recorded deploy, oldest first ([] when none); UsageError when the file is not a list."""
    path = history_path(loaded, record_env)
    text = files.read_text(loaded.root, path)
    if text is None:
        return []
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UsageError(
            f"{path}: unreadable deploy record ({exc})", hint="move it aside and deploy again"
        ) from None
    if not isinstance(data, list):
        raise UsageError(
            f"{path}: a deploy record must be a JSON list", hint="move it aside and deploy again"
        )
    return [entry for entry in data if isinstance(entry, dict)]


def append(loaded: LoadedConfig, record_env: str | None, entry: dict[str, Any]) -> Path:
    """Add ``entry`` (already masked) to the history; the file is replaced whole, atomically."""
    history = [*read_history(loaded, record_env), entry]
    path = history_path(loaded, record_env)
    files.write_text(loaded.root, path, json.dumps(history, indent=2) + "\n")
    return path
