"""rpdeploy.yaml documents generated from the config's own JSON schema load or fail cleanly.

test_config_hostile.py generates documents from YAML fragments; this one generates them
from ``Config.model_json_schema()`` (schemathesis's JSON-schema generator), so every section, alias and
pattern the schema declares is tried with values it allows and values just beside them
(the schema cannot say everything the rules check: pools against the catalog, worker
ranges, secret modes). Whatever comes out, loading ends in a valid config or a ConfigError
whose every line is ``rpdeploy.yaml:LINE: ...``, never another exception.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from typing import Any

import schemathesis
import yaml
from hypothesis import HealthCheck, example, given, seed, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from schemathesis import GenerationMode

from deploy.config import load_config
from deploy.config.schema import Config
from deploy.errors import ConfigError
from tests.conftest import FUZZ_SEED, MakeProject

#: Bounded in `make test`; `make fuzz` raises the count and draws a random seed (see Makefile).
SEED = FUZZ_SEED
EXAMPLES = 10 * int(os.environ.get("RPDEPLOY_FUZZ_EXAMPLES") or 15)
PROBLEM_LINE = re.compile(r"^rpdeploy\.yaml:\d+: \S")


def config_document_strategy(mode: GenerationMode) -> st.SearchStrategy[Any]:
    """Documents drawn from ``Config.model_json_schema()``.

    hypothesis-jsonschema 0.23 (its latest release) no longer runs on current Hypothesis
    (it uses a removed internal), so the schema goes through schemathesis's JSON-schema
    generator instead: as the request body of one OpenAPI operation, the only public door
    to it. POSITIVE draws documents the schema accepts, NEGATIVE ones it refuses.
    """
    schema = Config.model_json_schema()
    # Pydantic's `#/$defs/X` references become OpenAPI's `#/components/schemas/X`.
    moved = json.loads(json.dumps(schema).replace('"#/$defs/', '"#/components/schemas/'))
    definitions = moved.pop("$defs")
    document = {
        "openapi": "3.1.0",
        "info": {"title": "rpdeploy.yaml", "version": "1"},
        "paths": {
            "/rpdeploy.yaml": {
                "post": {
                    "requestBody": {"required": True, "content": {"application/json": {"schema": moved}}},
                    "responses": {"200": {"description": "loaded"}},
                }
            }
        },
        "components": {"schemas": definitions},
    }
    operation = schemathesis.openapi.from_dict(document)["/rpdeploy.yaml"]["POST"]
    return operation.as_strategy(generation_mode=mode).map(lambda case: case.body)


def _load(make_project: MakeProject, document: Any) -> list[str]:
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    root = make_project(text, name=uuid.uuid4().hex)
    try:
        load_config(root / "rpdeploy.yaml", None, environ={"HOME": "/root"})
    except ConfigError as exc:
        return exc.problems
    return []


@seed(SEED)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    document=st.one_of(
        config_document_strategy(GenerationMode.POSITIVE), config_document_strategy(GenerationMode.NEGATIVE)
    )
)
@example(document=None)  # `null`: an empty document
@example(document=[])
@example(document="text")
@example(document=b"\x00")  # YAML's !!binary
@example(document={"project": None, "image": [], "runtime": "x"})
def test_schema_generated_documents_load_or_fail_with_file_line_errors(
    make_project: MakeProject, document: Any
) -> None:
    problems = _load(make_project, document)
    assert all(PROBLEM_LINE.match(line) for line in problems), f"{problems} (RPDEPLOY_FUZZ_SEED={SEED})"
    assert all("\n" not in line for line in problems), problems


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=config_document_strategy(GenerationMode.POSITIVE))
def test_positive_documents_are_what_the_config_schema_accepts(document: Any) -> None:
    """The generator follows the config's own schema: the test above tries documents in its shape."""
    assert list(Draft202012Validator(Config.model_json_schema()).iter_errors(document)) == []
