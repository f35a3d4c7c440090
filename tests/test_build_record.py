"""The build record names its two dates and the build summary uses the one size formatter.

`created` was the wall clock as a float in build.json while the image's `created`
label is the commit time; now `built_at` is when the build ran and `created` is the
image's own date. Pure data: no Docker needed.
"""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime

from deploy.cli.build_cmd import BuildResult
from deploy.cli.output import SafeConsole
from deploy.image.labels import CREATED
from deploy.image.record import BuildRecord, BuildStep
from deploy.image.size import format_bytes

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def record(**changes: object) -> BuildRecord:
    fields: dict[str, object] = {
        "repository": "127.0.0.1:5000/acme/demo-worker",
        "id": "sha256:" + "a" * 64,
        "tags": ["main", "sha-0123456"],
        "immutable": "sha-0123456",
        "oci_version": "main",
        "dirty": False,
        "labels": {CREATED: "2023-11-14T22:13:20Z"},
        "builder": "docker",
        "dockerfile": "Dockerfile.slim",
        "context_bytes": 50_012_200,
        "context_files": 7,
        "context_digest": "sha256:" + "b" * 64,
        "steps": [BuildStep(1, "FROM x", True)],
        "seconds": 1.5,
        "environment": None,
        "max_compressed_mb": None,
    }
    fields.update(changes)
    return BuildRecord(**fields)  # type: ignore[arg-type]


def test_built_at_is_the_build_time_and_created_is_the_image_date() -> None:
    before = datetime.now(tz=UTC).replace(microsecond=0)
    data = record().to_json()
    assert RFC3339.fullmatch(data["built_at"])
    built = datetime.strptime(data["built_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert built >= before
    assert data["created"] == "2023-11-14T22:13:20Z" == data["labels"][CREATED]
    assert not any(isinstance(value, float) and value > 1e9 for value in data.values())


def test_record_round_trips_and_reads_an_old_one() -> None:
    original = record()
    again = BuildRecord.from_json(json.loads(json.dumps(original.to_json())))
    assert again == original
    # A build.json written before the rename (float `created`) still reads.
    old = {**original.to_json(), "created": 1700000000.5}
    del old["built_at"]
    assert BuildRecord.from_json(old).created == "2023-11-14T22:13:20Z"


def test_build_summary_prints_the_context_size_with_format_bytes() -> None:
    console = SafeConsole(file=io.StringIO(), width=200)
    BuildResult(record(), "build/rpdeploy/default/build.json").print_text(console)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert f"context: {format_bytes(50_012_200)}, 7 files" in text
    assert "50.01 MB" in text
    assert "kB" not in text
