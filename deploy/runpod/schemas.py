"""Validation against the vendored official RunPod REST v2 OpenAPI documents.

`spec/runpod-openapi-v2.json` is RunPod's published document, copied whole;
`spec/runpod-openapi-v2-secrets.json` adds the `/v2/account/secrets` routes, which are
newer than that snapshot (source and date: `spec/README.md`). OpenAPI 3.1 schemas are
JSON Schema Draft 2020-12, so `jsonschema` validates them directly; OpenAPI-only
keywords (`discriminator`, `x-*`, `examples`) are annotations it ignores.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

#: Vendored documents by short name, and their file names under `spec/`.
DOCUMENTS: dict[str, str] = {
    "v2": "runpod-openapi-v2.json",
    "secrets": "runpod-openapi-v2-secrets.json",
}


@cache
def document(name: str = "v2") -> dict[str, Any]:
    """One vendored spec document (``"v2"`` or ``"secrets"``); a missing file raises FileNotFoundError."""
    text = resources.files("deploy.runpod").joinpath("spec", DOCUMENTS[name]).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def spec() -> dict[str, Any]:
    """The official REST v2 document."""
    return document("v2")


def _uri(name: str) -> str:
    return f"urn:rpdeploy:runpod-openapi-{name}"


@cache
def _registry() -> Registry[Any]:
    registry: Registry[Any] = Registry()
    for name in DOCUMENTS:
        resource: Resource[Any] = Resource.from_contents(document(name), default_specification=DRAFT202012)
        registry = registry.with_resource(_uri(name), resource)
    return registry


def _owner(schema_name: str) -> str:
    """Which document defines ``schema_name`` (the official one wins a shared name)."""
    for name in DOCUMENTS:
        if schema_name in document(name)["components"]["schemas"]:
            return name
    raise KeyError(f"schema {schema_name!r} is not in the vendored spec")


@cache
def validator(schema_name: str) -> Draft202012Validator:
    """A validator for ``#/components/schemas/<schema_name>``; KeyError if no document has it."""
    ref = f"{_uri(_owner(schema_name))}#/components/schemas/{schema_name}"
    return Draft202012Validator({"$ref": ref}, registry=_registry())


def errors(schema_name: str, instance: Any) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Each violation as (path inside ``instance``, message)."""
    for error in validator(schema_name).iter_errors(instance):
        yield tuple(error.absolute_path), error.message


def problems(schema_name: str, instance: Any) -> list[str]:
    """Every violation as ``"<json path>: <message>"`` (empty when valid), in path order."""
    found = validator(schema_name).iter_errors(instance)
    return sorted(f"{error.json_path}: {error.message}" for error in found)


def _find_operation(path: str, method: str) -> tuple[str, dict[str, Any]] | None:
    for name in DOCUMENTS:
        item = document(name)["paths"].get(path)
        if item is not None and method.lower() in item:
            return name, item[method.lower()]
    return None


def operation(path: str, method: str) -> dict[str, Any] | None:
    """The spec's operation object for ``method path`` (a spec path template), or None."""
    found = _find_operation(path, method)
    return None if found is None else found[1]


def response_schema(path: str, method: str, status: int) -> str | None:
    """The component schema name the spec declares for one response, or None (no body).

    KeyError when the spec has no such operation or no answer for ``status``.
    """
    found = _find_operation(path, method)
    if found is None:
        raise KeyError(f"{method.upper()} {path} is not in the vendored spec")
    owner, op = found
    responses = op["responses"]
    response = responses.get(str(status)) or responses.get("default")
    if response is None:
        raise KeyError(f"{method.upper()} {path} declares no {status} answer")
    if "$ref" in response:
        response = document(owner)["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
    content = response.get("content")
    if not content:
        return None
    media = content.get("application/json") or content["application/problem+json"]
    ref: str = media["schema"]["$ref"]
    return ref.rsplit("/", 1)[-1]
