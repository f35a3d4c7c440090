"""Rendered endpoint specs validate against RunPod's official REST v2 schema."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from deploy.config import load_config
from deploy.render import render_project
from deploy.runpod import endpoint as rules
from tests.conftest import ECHO, REPO, MakeProject, official_spec
from tests.render_scenarios import IMAGE, SCENARIOS, Scenario


@cache
def validator(schema_name: str) -> Draft202012Validator:
    resource = Resource.from_contents(official_spec(), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource("urn:runpod:v2", resource)
    return Draft202012Validator(
        {"$ref": f"urn:runpod:v2#/components/schemas/{schema_name}"}, registry=registry
    )


def errors(schema_name: str, body: dict[str, Any]) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in validator(schema_name).iter_errors(body)]


def specs(make_project: MakeProject, scenario: Scenario) -> tuple[dict[str, Any], dict[str, Any]]:
    root = make_project(scenario.config, name=scenario.name, files=scenario.files)
    files = render_project(load_config(root / "rpdeploy.yaml", scenario.environment), IMAGE).files
    create = next(v for k, v in files.items() if k.endswith("endpoint.create.json"))
    update = next(v for k, v in files.items() if k.endswith("endpoint.update.json"))
    return json.loads(create), json.loads(update)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_specs_validate_against_official_schema(make_project: MakeProject, scenario: Scenario) -> None:
    create, update = specs(make_project, scenario)
    assert errors("CreateEndpointRequest", create) == []
    assert errors("UpdateEndpointRequest", update) == []
    # And the endpoint rules the emulator applies (one implementation: deploy.runpod.endpoint).
    assert rules.create_problems(create) == []


@pytest.mark.parametrize("project", [REPO, ECHO], ids=["reference", "echo"])
def test_bundled_project_specs_validate(project: Path) -> None:
    for env in (None, "staging", "production"):
        files = render_project(load_config(project / "rpdeploy.yaml", env), IMAGE).files
        for name, content in files.items():
            if name.endswith("endpoint.create.json"):
                assert errors("CreateEndpointRequest", json.loads(content)) == []
            if name.endswith("endpoint.update.json"):
                assert errors("UpdateEndpointRequest", json.loads(content)) == []


def test_schema_check_really_rejects_bad_bodies() -> None:
    """Guard against a validator that accepts anything (e.g. a broken $ref)."""
    assert errors("CreateEndpointRequest", {"name": "x"})  # no type, no scaling, no image
    bad = {
        "name": "x",
        "type": "QUEUE",
        "image": "a:b",
        "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4},
        "gpu": {"pools": ["ADA_24"]},
        "bogus": 1,
    }
    assert any("bogus" in e for e in errors("CreateEndpointRequest", bad))
    update_with_type = {"type": "QUEUE"}
    assert errors("UpdateEndpointRequest", update_with_type)


def test_secret_references_survive_byte_for_byte(make_project: MakeProject) -> None:
    create, _ = specs(make_project, SCENARIOS[0])
    assert create["env"]["AWS_ACCESS_KEY_ID"] == "{{ RUNPOD_SECRET_demo_aws_access_key_id }}"
    assert create["env"]["AWS_SECRET_ACCESS_KEY"] == "{{ RUNPOD_SECRET_demo_aws_secret_access_key }}"
