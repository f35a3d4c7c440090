"""The vendored RunPod contract is whole, validation uses it, and the emulator serves only what it defines.

Everything here reads the copies inside the package (deploy/runpod/spec/); nothing reads
a file outside the repository, and a missing vendored file fails, never skips.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, cast

import pytest
from fastapi.routing import APIRoute

from deploy.emulator import account_secrets, control, registries, volumes
from deploy.runpod import schemas
from deploy.runpod.catalog import catalog
from tests.conftest import VENDORED_SPEC


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


@pytest.mark.parametrize("name", sorted(schemas.DOCUMENTS))
def test_vendored_file_exists_and_matches_its_recorded_digest(name: str) -> None:
    path = VENDORED_SPEC / schemas.DOCUMENTS[name]
    if not path.is_file():
        pytest.fail(f"vendored RunPod spec {path} is missing")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    readme = (VENDORED_SPEC / "README.md").read_text(encoding="utf-8")
    assert f"`{schemas.DOCUMENTS[name]}`" in readme, "README must name the file"
    assert digest in readme, "README must record the digest of the vendored bytes"
    assert schemas.document(name) == json.loads(path.read_text(encoding="utf-8"))


def test_the_full_official_spec_is_vendored() -> None:
    spec = schemas.spec()
    assert spec["info"] == {
        "title": "Runpod REST API",
        "version": "2.0.0",
        "description": "Runpod public REST API — v2",
    }
    for path in ("/v2/serverless", "/v2/pods", "/v2/catalog/gpus", "/v2/catalog/datacenters", "/v2/billing"):
        assert path in spec["paths"]
    assert "/v2/account/secrets" in schemas.document("secrets")["paths"]


@pytest.mark.parametrize("name", sorted(schemas.DOCUMENTS))
def test_every_reference_in_a_vendored_document_resolves(name: str) -> None:
    document = schemas.document(name)
    refs = _refs(document)
    assert refs
    for ref in refs:
        _, section, kind, item = ref.split("/")
        assert item in document[section][kind], f"{ref} does not resolve in {name}"


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
    # The secrets document's schemas validate too (its own registry entry).
    assert schemas.problems("CreateSecretRequest", {"name": "hf", "value": "v"}) == []
    assert schemas.problems("CreateSecretRequest", {"value": "v"})


def test_response_schema_lookup_follows_the_spec() -> None:
    assert schemas.response_schema("/v2/serverless", "post", 201) == "Endpoint"
    assert schemas.response_schema("/v2/serverless/{id}", "delete", 204) is None
    assert schemas.response_schema("/v2/serverless/{id}", "get", 404) == "ErrorResponse"
    assert schemas.response_schema("/v2/templates", "get", 200) == "ListTemplatesResponse"
    assert schemas.response_schema("/v2/catalog/gpus", "get", 200) == "ListGpuTypesResponse"
    assert schemas.response_schema("/v2/account/secrets", "post", 201) == "Secret"
    with pytest.raises(KeyError):
        schemas.response_schema("/v2/nope", "get", 200)


def _emulator_rest_routes() -> list[tuple[str, str]]:
    # Route introspection only: the routes are declared without touching the services.
    plane = control.ControlPlane(cast(Any, None), "http://emulator")
    routers = [
        control.router(plane),
        account_secrets.router(cast(Any, None)),
        volumes.router(cast(Any, None)),
        registries.router(cast(Any, None)),
    ]
    found = []
    for route in (route for api in routers for route in api.routes):
        assert isinstance(route, APIRoute)
        path = re.sub(r"\{[^}]+\}", "{id}", route.path)
        found += [(method, path) for method in sorted(route.methods)]
    return found


def test_the_emulator_serves_only_routes_the_vendored_spec_defines() -> None:
    routes = _emulator_rest_routes()
    assert ("GET", "/v2/catalog/gpus") in routes
    assert ("GET", "/v2/catalog/datacenters") in routes
    for added in ("/v2/catalog/cpus", "/v2/account/secrets", "/v2/network-volumes", "/v2/registries"):
        assert ("GET", added) in routes
    for method, path in routes:
        assert schemas.operation(path, method) is not None, f"{method} {path} is not in the vendored spec"


@pytest.mark.parametrize("availability", [False, True])
def test_catalog_answers_have_the_spec_shapes(availability: bool) -> None:
    assert schemas.problems("ListGpuTypesResponse", catalog().gpus_response(availability=availability)) == []
    assert schemas.problems("ListDataCentersResponse", catalog().datacenters_response()) == []
    assert schemas.problems("ListCpuTypesResponse", catalog().cpus_response(availability=availability)) == []
