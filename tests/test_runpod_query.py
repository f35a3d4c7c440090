"""Query strings checked against the spec's declared parameters (deploy.runpod.schemas).

Found by schemathesis (tests/emulator/test_emulator_schemathesis.py): the emulator's catalog
routes answered 200 to filters the spec does not allow (an unknown ``cloud``, a malformed
``minCudaVersion``, a ``countryCodes`` entry of three letters).
"""

from __future__ import annotations

import pytest

from deploy.runpod.schemas import query_problems

GPUS = "/v2/catalog/gpus"
DATACENTERS = "/v2/catalog/datacenters"


@pytest.mark.parametrize(
    ("path", "query"),
    [
        (GPUS, []),
        (GPUS, [("include", "AVAILABILITY"), ("product", "POD,SERVERLESS")]),
        (GPUS, [("count", "2"), ("minCudaVersion", "12.1"), ("countryCodes", "FR,DE")]),
        (GPUS, [("cudaVersions", "12.8,12.6"), ("cloud", "SECURE")]),
        (DATACENTERS, [("regions", "EUROPE,ASIA"), ("globalNetwork", "true")]),
        (GPUS, [("unknown", "ignored")]),  # undeclared parameters are not the spec's to refuse
    ],
)
def test_what_the_spec_allows_passes(path: str, query: list[tuple[str, str]]) -> None:
    assert query_problems(path, "get", query) == []


@pytest.mark.parametrize(
    ("path", "query", "fragment"),
    [
        (GPUS, [("cloud", "MOON")], "query parameter cloud: 'MOON' is not one of"),
        (GPUS, [("minCudaVersion", "twelve")], "query parameter minCudaVersion: 'twelve' does not match"),
        (GPUS, [("countryCodes", "FR,DEU")], "query parameter countryCodes: 'DEU' does not match"),
        (GPUS, [("count", "0")], "query parameter count: 0 is less than the minimum of 1"),
        (GPUS, [("count", "two")], "query parameter count: 'two' is not of type 'integer'"),
        (GPUS, [("count", "1"), ("count", "2")], "query parameter count: given 2 times, expected once"),
        (DATACENTERS, [("networkVolumeTypes", "FAST")], "query parameter networkVolumeTypes: 'FAST'"),
        (DATACENTERS, [("globalNetwork", "maybe")], "query parameter globalNetwork: 'maybe' is not of type"),
    ],
)
def test_what_the_spec_refuses_is_named(path: str, query: list[tuple[str, str]], fragment: str) -> None:
    problems = query_problems(path, "get", query)
    assert len(problems) == 1, problems
    assert problems[0].startswith(fragment), problems


def test_a_huge_value_is_never_echoed_whole() -> None:
    (problem,) = query_problems(GPUS, "get", [("minCudaVersion", "9" * 10_000 + "x")])
    assert len(problem) < 250


def test_an_operation_the_spec_lacks_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        query_problems("/v2/nope", "get", [])
