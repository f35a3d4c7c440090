"""The vendored RunPod v2 spec is an exact subset of the reference, and validation uses it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from deploy.emulator import schemas

REFERENCE = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "runpod-openapi-v2.json"


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


@pytest.mark.skipif(not REFERENCE.exists(), reason="the reference spec is beside the worktrees only")
def test_vendored_spec_equals_reference_components_and_paths() -> None:
    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))
    vendored = schemas.spec()
    for kind, items in vendored["components"].items():
        for name, value in items.items():
            assert value == reference["components"][kind][name], f"components.{kind}.{name} differs"
    for path, value in vendored["paths"].items():
        assert value == reference["paths"][path], f"paths.{path} differs"
    assert vendored["info"] == reference["info"]


def test_every_reference_in_the_vendored_spec_resolves() -> None:
    vendored = schemas.spec()
    for ref in _refs(vendored):
        _, section, kind, name = ref.split("/")
        assert name in vendored[section][kind], f"{ref} is not vendored"


def test_validation_reports_unknown_fields_and_bad_values() -> None:
    problems = schemas.problems(
        "CreateEndpointRequest",
        {
            "name": "x",
            "type": "QUEUE",
            "image": "i",
            "bogus": 1,
            "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4},
        },
    )
    assert any("bogus" in p for p in problems)
    assert schemas.problems("QueueDelayScaling", {"type": "QUEUE_DELAY", "queueDelay": 0.1})
    assert schemas.problems("QueueDelayScaling", {"type": "QUEUE_DELAY", "queueDelay": 0.5}) == []


def test_response_schema_lookup_follows_the_spec() -> None:
    assert schemas.response_schema("/v2/serverless", "post", 201) == "Endpoint"
    assert schemas.response_schema("/v2/serverless/{id}", "delete", 204) is None
    assert schemas.response_schema("/v2/serverless/{id}", "get", 404) == "ErrorResponse"
    assert schemas.response_schema("/v2/templates", "get", 200) == "ListTemplatesResponse"
