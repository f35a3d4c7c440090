"""Validation against the vendored official RunPod REST v2 OpenAPI documents.

`spec/runpod-openapi-v2.json` is RunPod's published document, copied whole;
`spec/runpod-openapi-v2-secrets.json` adds the `/v2/account/secrets` routes, which are
newer than that snapshot (source and date: `spec/README.md`). OpenAPI 3.1 schemas are
JSON Schema Draft 2020-12, so `jsonschema` validates them directly; OpenAPI-only
keywords (`discriminator`, `x-*`, `examples`) are annotations it ignores.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
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


def request_schema(path: str, method: str) -> str | None:
    """The component schema name of the operation's JSON request body, or None (it takes none).

    KeyError when the spec has no such operation.
    """
    found = _find_operation(path, method)
    if found is None:
        raise KeyError(f"{method.upper()} {path} is not in the vendored spec")
    content = found[1].get("requestBody", {}).get("content", {})
    media = content.get("application/json")
    if media is None:
        return None
    ref: str = media["schema"]["$ref"]
    return ref.rsplit("/", 1)[-1]


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
        response = document(owner)["components"]["responses"][response["$ref"].rpartition("/")[2]]
    content = response.get("content")
    if not content:
        return None
    media = content.get("application/json") or content["application/problem+json"]
    ref: str = media["schema"]["$ref"]
    return ref.rpartition("/")[2]


def _parameters(path: str, method: str) -> tuple[str, list[dict[str, Any]]]:
    """The owner document and the operation's parameters, each ``$ref`` resolved."""
    found = _find_operation(path, method)
    if found is None:
        raise KeyError(f"{method.upper()} {path} is not in the vendored spec")
    owner, op = found
    # Equivalent mutants of the two defaults: the vendored path items declare only `in: path`
    # parameters (query_problems skips them), and a document without named parameters has no `$ref`.
    shared = document(owner)["paths"][path].get("parameters", [])  # pragma: no mutate
    named = document(owner)["components"].get("parameters", {})  # pragma: no mutate
    declared = [*shared, *op.get("parameters", [])]
    return owner, [named[p["$ref"].rpartition("/")[2]] if "$ref" in p else p for p in declared]


def _query_value(schema: dict[str, Any], raw: list[str]) -> Any:
    """A query parameter as the spec's ``style: form, explode: false`` reads it: an array is
    comma-separated; an integer or boolean that does not parse stays text (the schema says why)."""
    if schema.get("type") == "array":
        return [item for value in raw for item in value.split(",")]
    text = raw[-1]
    if schema.get("type") == "integer" and re.fullmatch(r"[+-]?[0-9]{1,18}", text):
        return int(text)
    if schema.get("type") == "boolean" and text in ("true", "false"):
        return text == "true"
    return text


@cache
def _parameter_validator(owner: str, schema_json: str) -> Draft202012Validator:
    # Local references ("#/components/...") point into the owner document, held in the registry.
    absolute = schema_json.replace('"#/', f'"{_uri(owner)}#/')
    return Draft202012Validator(json.loads(absolute), registry=_registry())


def query_problems(path: str, method: str, query: Iterable[tuple[str, str]]) -> list[str]:
    """Why a query string breaks the operation's declared query parameters (empty: it conforms).

    Only declared parameters are checked: the spec does not say RunPod refuses others, and
    HTTP APIs ignore them. A scalar given twice is refused (which one would count?).
    """
    owner, parameters = _parameters(path, method)
    given: dict[str, list[str]] = {}
    for name, value in query:
        given.setdefault(name, []).append(value)
    found = []
    for parameter in parameters:
        # Equivalent mutants: every vendored parameter has a schema, so the default never applies.
        name, schema = parameter["name"], parameter.get("schema", {})  # pragma: no mutate
        if parameter.get("in") != "query" or name not in given:
            continue
        raw = given[name]
        if schema.get("type") != "array" and len(raw) > 1:
            found.append(f"query parameter {name}: given {len(raw)} times, expected once")
            continue
        # Equivalent mutants: sort_keys only makes the cache key canonical (the files load in one order).
        validator = _parameter_validator(owner, json.dumps(schema, sort_keys=True))  # pragma: no mutate
        for error in validator.iter_errors(_query_value(schema, raw)):
            found.append(f"query parameter {name}: {_short(error.message)}")
    return found


def _short(message: str, limit: int = 160) -> str:
    """A message that may quote the caller's value, cut so a huge value is never echoed whole."""
    return message if len(message) <= limit else message[: limit - 1] + "…"
