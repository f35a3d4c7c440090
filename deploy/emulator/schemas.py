"""RunPod REST v2 schema validation against the vendored official OpenAPI 3.1 document.

`openapi-v2.json` beside this module is an exact subset of RunPod's published spec
(the serverless and template paths plus every component they reference); a test
proves it equals the reference copy. OpenAPI 3.1 schemas are JSON Schema Draft
2020-12, so the `jsonschema` library validates them directly; OpenAPI-only keywords
(`discriminator`, `x-*`, `examples`) are annotations it ignores.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

#: The vendored spec's base URI inside the referencing registry.
SPEC_URI = "urn:rpdeploy:runpod-openapi-v2"


@cache
def spec() -> dict[str, Any]:
    """The vendored spec document."""
    text = resources.files("deploy.emulator").joinpath("openapi-v2.json").read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


@cache
def _registry() -> Registry[Any]:
    resource: Resource[Any] = Resource.from_contents(spec(), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
    return registry


@cache
def validator(schema_name: str) -> Draft202012Validator:
    """A validator for ``#/components/schemas/<schema_name>``."""
    if schema_name not in spec()["components"]["schemas"]:
        raise KeyError(f"schema {schema_name!r} is not in the vendored spec")
    return Draft202012Validator(
        {"$ref": f"{SPEC_URI}#/components/schemas/{schema_name}"}, registry=_registry()
    )


def problems(schema_name: str, instance: Any) -> list[str]:
    """Every violation as ``"<json path>: <message>"`` (empty when valid), in path order."""
    errors = validator(schema_name).iter_errors(instance)
    return sorted(f"{error.json_path}: {error.message}" for error in errors)


def response_schema(path: str, method: str, status: int) -> str | None:
    """The component schema name the spec declares for one response, or None (no body)."""
    operation = spec()["paths"][path][method.lower()]
    response = operation["responses"].get(str(status)) or operation["responses"]["default"]
    if "$ref" in response:
        name = response["$ref"].rsplit("/", 1)[-1]
        response = spec()["components"]["responses"][name]
    content = response.get("content")
    if not content:
        return None
    media = content.get("application/json") or content["application/problem+json"]
    ref: str = media["schema"]["$ref"]
    return ref.rsplit("/", 1)[-1]
