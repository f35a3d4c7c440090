"""schemathesis against a running emulator, with RunPod's vendored REST v2 spec.

Requests are generated from the official document (deploy/runpod/spec) and the vendored
secrets document (`/v2/account/secrets`), filtered to the routes the emulator serves, in
both of schemathesis's modes: POSITIVE (what the spec allows) and NEGATIVE (what it
refuses). Every response goes through schemathesis's checks: no 5xx, a declared status,
the declared content type and response schema, refused input refused. Then explicit
sequences (create -> get -> patch -> releases -> delete -> get, and the same for secrets,
network volumes and registry credentials): the vendored spec declares no OpenAPI links,
which schemathesis's stateful runner needs.

Bounded here (`make test`): ``RPDEPLOY_FUZZ_EXAMPLES`` examples per operation and mode
(default 15), and a new seed every run unless ``RPDEPLOY_FUZZ_SEED`` is set. The seed is
printed and named in every failure, so a failure replays with ``RPDEPLOY_FUZZ_SEED=<seed>``.
`make fuzz` runs the same tests with many more examples and a random seed.

One check is left out: ``positive_data_acceptance`` (a schema-valid request must not get a
4xx). RunPod's rules go beyond its schema (deploy.runpod.endpoint: exactly one of gpu and
cpu, workers.min <= workers.max, known pools; catalog ``include`` only with ``product``), so
schema-valid bodies are refused by the real API too; the emulator applies those rules.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from deploy.runpod import schemas
from deploy.runpod.text import hidden_char
from tests.conftest import FUZZ_SEED, VENDORED_SPEC
from tests.emulator.helpers import API_KEY, EmulatorProcess
from tests.emulator.test_emulator_every_route import EXPECTED

#: A new seed every run unless RPDEPLOY_FUZZ_SEED is set (tests/conftest.py).
SEED = FUZZ_SEED
EXAMPLES = int(os.environ.get("RPDEPLOY_FUZZ_EXAMPLES") or 15)
REPLAY = f"replay with RPDEPLOY_FUZZ_SEED={SEED} RPDEPLOY_FUZZ_EXAMPLES={EXAMPLES}"

#: The REST v2 routes the emulator serves, in the spec's path templates (`{id}`).
SERVED = sorted(
    {
        (method, template)
        for method, path in EXPECTED
        if schemas.operation(template := re.sub(r"\{[^}]+\}", "{id}", path), method) is not None
    }
)
#: Generated query strings hold only declared parameters: the spec does not say RunPod
#: refuses others, and the emulator ignores them as HTTP APIs do (schemas.query_problems).
#: Formats are not checked in responses because the spec is wrong there: it declares every
#: `requestUrls` entry `format: uri`, yet its own examples (and RunPod's answers) are URI
#: templates such as `https://api.runpod.ai/v2/4m7x2k9q/status/{job_id}`, and `{` is not
#: a URI character (RFC 3986). Types, required fields, enums and patterns are still checked.
CONFIG = {
    "generation": {"allow-extra-parameters": False},
    "checks": {"response_schema_conformance": {"validate-formats": False}},
}
#: One schemathesis schema per vendored document, each filtered to the served routes.
SCHEMAS = [
    schemathesis.openapi.from_path(
        VENDORED_SPEC / file_name, config=schemathesis.Config.from_dict(CONFIG)
    ).include(lambda ctx: (ctx.operation.method.upper(), ctx.operation.path) in SERVED)
    for file_name in schemas.DOCUMENTS.values()
]
AUTH = {"Authorization": f"Bearer {API_KEY}"}
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def operation(method: str, path: str) -> Any:
    for schema in SCHEMAS:
        found = schema.find_operation_by_label(f"{method.upper()} {path}")
        if found is not None:
            return found
    raise KeyError(f"{method} {path} is in no vendored document")


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    """A real emulator process of its own. Its Docker engine is absent on purpose: generated
    endpoints may ask for workers, and this fuzzes the control plane, not the shared engine."""
    proc = EmulatorProcess(
        tmp_path_factory.mktemp("fuzzed"), env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    ).start()
    yield proc
    proc.stop()
    assert "unhandled error" not in proc.log(), proc.log()[-3000:]


@pytest.fixture(scope="module", autouse=True)
def _announce_seed(pytestconfig: pytest.Config) -> None:
    """The seed on the terminal (not captured), so a red CI log says how to replay it."""
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    reporter = pytestconfig.pluginmanager.getplugin("terminalreporter")
    if capture is not None and reporter is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"schemathesis: seed {SEED}, {EXAMPLES} examples ({REPLAY})")


def test_the_served_routes_are_all_fuzzed() -> None:
    labels = {
        (op.method.upper(), op.path)
        for schema in SCHEMAS
        for op in (r.ok() for r in schema.get_all_operations())
    }
    assert labels == set(SERVED)
    # 14 endpoint/template/catalog routes, CPU catalog 2, network volumes 5, registries 4, secrets 5.
    assert len(SERVED) == 30


def _call_and_validate(case: Any, base: str) -> Any:
    """Send ``case`` and run every check but positive_data_acceptance on the answer."""
    response = case.call(base_url=base, headers=AUTH)
    try:
        case.validate_response(response, headers=AUTH, excluded_checks=[positive_data_acceptance])
    except BaseException as exc:
        exc.add_note(REPLAY)
        raise
    return response


#: Operations with nothing a NEGATIVE example could break: the secrets document declares no
#: security scheme, and these take no body, no query constraint and a plain string id.
NOTHING_TO_NEGATE = {
    ("GET", "/v2/account/secrets"),
    ("GET", "/v2/account/secrets/{id}"),
    ("DELETE", "/v2/account/secrets/{id}"),
}
FUZZED = [
    (method, path, mode)
    for method, path in SERVED
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode == GenerationMode.POSITIVE or (method, path) not in NOTHING_TO_NEGATE
]


@pytest.mark.parametrize(("method", "path", "mode"), FUZZED, ids=[f"{m} {p}-{g}" for m, p, g in FUZZED])
def test_generated_requests_get_answers_the_spec_declares(
    fuzzed: EmulatorProcess, method: str, path: str, mode: GenerationMode
) -> None:
    strategy = operation(method, path).as_strategy(generation_mode=mode)

    @SETTINGS
    @seed(SEED)
    @given(case=strategy)
    def run(case: Any) -> None:
        _call_and_validate(case, fuzzed.api.base)

    run()


#: A body RunPod accepts: the sequence needs an endpoint to exist before it patches it.
CREATE = {
    "type": "QUEUE",
    "image": "127.0.0.1:5000/rpdeploy-test/none:0",
    "gpu": {"pools": ["ADA_24"]},
    "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4},
    "workers": {"min": 0, "max": 1, "idleTimeout": 5},
}


#: Letters and digits that show (Hangul fillers are letters that do not: deploy.runpod.text).
NAMES = st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=20).filter(
    lambda name: hidden_char(name) is None
)


@SETTINGS
@seed(SEED)
@given(data=st.data(), name=NAMES)
def test_create_get_patch_releases_delete_sequences(
    fuzzed: EmulatorProcess, data: st.DataObject, name: str
) -> None:
    base = fuzzed.api.base
    created = operation("POST", "/v2/serverless").Case(body={**CREATE, "name": name})
    response = _call_and_validate(created, base)
    assert response.status_code == 201, f"{response.text} ({REPLAY})"
    path = {"id": str(response.json()["id"])}
    got = _call_and_validate(operation("GET", "/v2/serverless/{id}").Case(path_parameters=path), base)
    assert got.json() == response.json(), REPLAY
    mode = data.draw(st.sampled_from([GenerationMode.POSITIVE, GenerationMode.NEGATIVE]))
    patch = data.draw(operation("PATCH", "/v2/serverless/{id}").as_strategy(mode, path_parameters=path))
    _call_and_validate(patch, base)
    _call_and_validate(operation("GET", "/v2/serverless/{id}/releases").Case(path_parameters=path), base)
    deleted = _call_and_validate(operation("DELETE", "/v2/serverless/{id}").Case(path_parameters=path), base)
    assert deleted.status_code == 204, REPLAY
    gone = _call_and_validate(operation("GET", "/v2/serverless/{id}").Case(path_parameters=path), base)
    assert gone.status_code == 404, REPLAY


#: Account resources: a body RunPod accepts (the name made unique per example where it must
#: be), the collection path, and whether the spec has a PATCH for one item.
ACCOUNT = {
    "secret": ("/v2/account/secrets", {"value": "fuzzed-value"}, True),
    "network-volume": ("/v2/network-volumes", {"size": 10, "dataCenter": "EU-RO-1"}, True),
    "registry": ("/v2/registries", {"username": "u", "password": "p"}, False),
}
#: Secret names are unique and follow deploy.runpod.secrets' rule; the others take any name.
SERIAL = itertools.count()
SECRET_NAMES = st.from_regex(r"\Afz_[A-Za-z0-9_]{1,30}\Z")


@pytest.mark.parametrize("kind", sorted(ACCOUNT))
def test_account_create_get_patch_delete_sequences(fuzzed: EmulatorProcess, kind: str) -> None:
    collection, fixed, patchable = ACCOUNT[kind]
    item = f"{collection}/{{id}}"

    @SETTINGS
    @seed(SEED)
    @given(data=st.data(), name=SECRET_NAMES if kind == "secret" else NAMES)
    def run(data: st.DataObject, name: str) -> None:
        base = fuzzed.api.base
        # Secret names are unique: a serial suffix (not drawn, so the draws never depend on the store).
        unique = f"{name}_{next(SERIAL)}" if kind == "secret" else name
        created = _call_and_validate(operation("POST", collection).Case(body={**fixed, "name": unique}), base)
        assert created.status_code == 201, f"{created.text} ({REPLAY})"
        path = {"id": str(created.json()["id"])}
        got = _call_and_validate(operation("GET", item).Case(path_parameters=path), base)
        assert got.json() == created.json(), REPLAY
        if patchable:
            mode = data.draw(st.sampled_from([GenerationMode.POSITIVE, GenerationMode.NEGATIVE]))
            _call_and_validate(
                data.draw(operation("PATCH", item).as_strategy(mode, path_parameters=path)), base
            )
        listed = _call_and_validate(operation("GET", collection).Case(), base)
        assert path["id"] in listed.text, REPLAY
        deleted = _call_and_validate(operation("DELETE", item).Case(path_parameters=path), base)
        assert deleted.status_code == 204, REPLAY
        gone = _call_and_validate(operation("GET", item).Case(path_parameters=path), base)
        assert gone.status_code == 404, REPLAY

    run()
