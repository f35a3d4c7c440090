"""RunPod contract behaviour (deploy/runpod) that mutation testing (`make mutation`,
docs/quality.md) showed no test pinned: catalog parsing and its documents, the endpoint
rules' exact problems, the spec look-ups, text rules and release diffs.

`catalog()` and the spec documents are cached per process, so mutants of the parsing code
are reached only by calling `parse` on data given here, which these tests do.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from typing import Any

import pytest

from deploy.runpod import endpoint, release, schemas, secrets, text
from deploy.runpod.catalog import Catalog, CpuFlavor, DataCenter, GpuType, Pool, catalog, cuda_key, parse
from deploy.runpod.defaults import idle_timeout_applies
from deploy.runpod.endpoint import Problem

SMALL: dict[str, Any] = {
    "pools": [
        {"id": "P1", "serverless_price_per_second": 0.00016},
        {"id": "P2", "serverless_price_per_second": 0.001},
        {"id": "EMPTY", "serverless_price_per_second": 0.5},
    ],
    "gpu_types": [
        {"id": "G-A", "name": "A", "pool": "P1", "manufacturer": "NVIDIA", "memory_gb": 16,
         "cuda_versions": ["12.4", "12.11"]},
        {"id": "G-B", "name": "B", "pool": "P2", "manufacturer": "AMD", "memory_gb": 80,
         "cuda_versions": ["12.9"]},
        {"id": "G-C", "name": "C", "pool": "P1", "manufacturer": "NVIDIA", "memory_gb": 24,
         "cuda_versions": ["12.6"]},
    ],
    "data_centers": [
        {"id": "DC-1", "name": "One", "region": "EUROPE", "global_network": True,
         "network_volume_types": ["STANDARD"], "compliance": ["GDPR"]},
        {"id": "DC-2", "name": "Two", "region": "ASIA", "global_network": False,
         "network_volume_types": [], "compliance": []},
    ],
    "cpu_flavors": [{"id": "cpu3c", "name": "Compute", "memory_gb_per_vcpu": 2, "group": "Gen 3",
                     "vcpu_min": 2, "vcpu_max": 32, "secure_price_per_vcpu_hour": 0.04,
                     "serverless_price_per_vcpu_hour": 0.03},
                    {"id": "cpu3m", "name": "Memory", "memory_gb_per_vcpu": 8, "group": "Gen 3",
                     "vcpu_min": 2, "vcpu_max": 16, "secure_price_per_vcpu_hour": 0.07,
                     "serverless_price_per_vcpu_hour": 0.06}],
}  # fmt: skip


def small() -> Catalog:
    return parse(SMALL)


# --- catalog ----------------------------------------------------------------------------


def test_parse_keeps_every_field_and_groups_types_by_pool_in_order() -> None:
    parsed = small()
    a = GpuType("G-A", "A", "P1", "NVIDIA", 16, ("12.4", "12.11"))
    b = GpuType("G-B", "B", "P2", "AMD", 80, ("12.9",))
    c = GpuType("G-C", "C", "P1", "NVIDIA", 24, ("12.6",))
    assert parsed.pools == {
        "P1": Pool("P1", 0.00016, (a, c)),
        "P2": Pool("P2", 0.001, (b,)),
        "EMPTY": Pool("EMPTY", 0.5, ()),
    }
    assert list(parsed.pools) == ["P1", "P2", "EMPTY"]
    assert parsed.data_centers == (
        DataCenter("DC-1", "One", "EUROPE", True, ("STANDARD",), ("GDPR",)),
        DataCenter("DC-2", "Two", "ASIA", False, (), ()),
    )
    assert parsed.cpu_flavors == {
        "cpu3c": CpuFlavor("cpu3c", "Compute", 2, "Gen 3", 2, 32, 0.04, 0.03),
        "cpu3m": CpuFlavor("cpu3m", "Memory", 8, "Gen 3", 2, 16, 0.07, 0.06),
    }
    # Tuples, not lists: the catalog is frozen data shared by every caller.
    assert isinstance(parsed.pools["P1"].gpu_types[0].cuda_versions, tuple)
    assert isinstance(parsed.data_centers[0].network_volume_types, tuple)
    assert isinstance(parsed.data_centers[0].compliance, tuple)


def test_parse_refuses_malformed_data_with_a_key_error() -> None:
    with pytest.raises(KeyError):
        parse({**SMALL, "gpu_types": [{"id": "x"}]})


def test_catalog_queries() -> None:
    parsed = small()
    assert [gpu.id for gpu in parsed.gpu_types()] == ["G-A", "G-C", "G-B"]
    assert parsed.cards(["P2", "NOPE", "P1"]) == ["G-B", "G-A", "G-C"]
    assert parsed.cards([]) == []
    # Numeric order: 12.11 is newer than 12.9.
    assert parsed.cuda_versions() == ["12.4", "12.6", "12.9", "12.11"]
    assert parsed.data_center_ids() == ["DC-1", "DC-2"]
    assert parsed.cpu_memory_gb("cpu3m", 4) == 32
    with pytest.raises(KeyError):
        parsed.cpu_memory_gb("cpu9", 1)
    assert parsed.placement_gpu(["P1"], []) == "G-A"
    assert parsed.placement_gpu(["P1", "P2"], [" G-A ", "G-C"]) == "G-B"
    assert parsed.placement_gpu(["P1"], ["G-A", "G-C"]) is None


def test_cuda_key_and_hourly_price() -> None:
    assert cuda_key("12.11") == (12, 11)
    assert cuda_key("9") == (9,)
    assert Pool("P", 0.00016, ()).price_per_hour == 0.576
    # Rounded to 4 places (1.23456789 * 3600 would carry float noise).
    assert Pool("P", 0.000123456789, ()).price_per_hour == 0.4444


def test_gpus_response_without_and_with_availability() -> None:
    parsed = small()
    plain = parsed.gpus_response()
    assert [doc["id"] for doc in plain["gpus"]] == ["G-A", "G-C", "G-B"]
    assert plain["gpus"][2] == {
        "id": "G-B",
        "name": "B",
        "pool": "P2",
        "manufacturer": "AMD",
        "memory": 80,
        "secure": True,
        "community": False,
        "price": {"secure": 3.6, "community": 3.6, "serverless": 3.6},
        "maxCount": {"secure": 8, "community": 0},
    }
    full = parsed.gpus_response(availability=True)["gpus"][0]
    assert full["availability"] == "HIGH"
    assert full["dataCenters"] == [
        {"id": "DC-1", "name": "One", "availability": "HIGH"},
        {"id": "DC-2", "name": "Two", "availability": "HIGH"},
    ]
    assert full["cudaVersions"] == [
        {"version": "12.4", "available": True},
        {"version": "12.11", "available": True},
    ]
    assert {k: v for k, v in full.items() if k not in {"availability", "dataCenters", "cudaVersions"}} == (
        plain["gpus"][0]
    )


def test_datacenters_response() -> None:
    assert small().datacenters_response() == {
        "dataCenters": [
            {"id": "DC-1", "name": "One", "region": "EUROPE", "globalNetwork": True,
             "networkVolumeTypes": ["STANDARD"], "compliance": ["GDPR"]},
            {"id": "DC-2", "name": "Two", "region": "ASIA", "globalNetwork": False,
             "networkVolumeTypes": [], "compliance": []},
        ]
    }  # fmt: skip


def test_the_vendored_catalog_parses_as_the_cached_one() -> None:
    data = json.loads(resources.files("deploy.runpod").joinpath("catalog.json").read_text("utf-8"))
    assert parse(data) == catalog()


# --- endpoint rules ---------------------------------------------------------------------


def test_problem_spellings() -> None:
    assert Problem((), "m").dotted() == "$"
    assert Problem((), "m").line() == "$: m"
    assert Problem((), "m").json_line() == "$: m"
    assert Problem(("workers", "max"), "m").json_line() == "$.workers.max: m"
    assert Problem(("cpu", 0, "id"), "bad").line() == "cpu[0].id: bad"
    assert Problem(("cpu", 0, "id"), "bad").json_line() == "$.cpu[0].id: bad"
    assert Problem((0,), "m").json_line() == "$[0]: m"
    assert Problem(("Xa", "X"), "m").dotted() == "Xa.X"
    assert Problem(("x",), "m").status == 400
    assert Problem(("x",), "m").catalog is False


def test_range_problems_bounds() -> None:
    low, high = endpoint.TIMEOUT_MS
    ok = {"timeout": low, "t": [high, 2**31 - 1, -(2**31 - 1), 1e9, True, None, "x"], "timeout2": 1}
    assert list(endpoint.range_problems(ok)) == []
    assert list(endpoint.range_problems({"timeout": high})) == []
    found = list(
        endpoint.range_problems(
            {"timeout": low - 1, "w": {"max": 2**31}, "a": [math.inf, 3e9, -3e9, math.nan, -(2**31)]}
        )
    )
    assert found == [
        Problem(("timeout",), "must be 5000 to 604800000 ms (5 s to 7 days), got 4999", 422),
        Problem(("w", "max"), "2147483648 is out of range (at most 2147483647)", 422),
        Problem(("a", 0), "must be a finite number", 422),
        Problem(("a", 1), "3e+09 is out of range (at most 2147483647)", 422),
        Problem(("a", 2), "-3e+09 is out of range (at most 2147483647)", 422),
        Problem(("a", 3), "must be a finite number", 422),
        Problem(("a", 4), "-2147483648 is out of range (at most 2147483647)", 422),
    ]
    # True is an int to Python, but never a number of milliseconds here: the schema refuses it.
    assert list(endpoint.range_problems({"timeout": True, "x": False})) == []
    assert list(endpoint.range_problems({"f": float(2**31 - 1), "g": -float(2**31 - 1)})) == []
    assert [p.message for p in endpoint.range_problems({"timeout": high + 1})] == [
        "must be 5000 to 604800000 ms (5 s to 7 days), got 604800001"
    ]


def test_huge_integers_are_described_not_printed() -> None:
    assert endpoint._short(10**20 - 1) == "99999999999999999999"
    assert endpoint._short(10**20) == "an integer of about 21 digits"
    assert endpoint._short(-(10**30)) == "an integer of about 31 digits"


GOOD: dict[str, Any] = {"name": "e", "image": "i", "type": "QUEUE", "gpu": {"pools": ["AMPERE_16"]},
                        "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4}}  # fmt: skip


def test_request_problems_schema_first_then_range_and_text_in_path_order() -> None:
    # Schema problems hide range problems (timeout 1) until the schema is met.
    bad_schema = {**GOOD, "name": 1, "timeout": 1, "workers": {"max": -1}}
    assert endpoint.request_problems("CreateEndpointRequest", bad_schema) == [
        Problem(("name",), "1 is not of type 'string'", 422),
        Problem(("workers", "max"), "-1 is less than the minimum of 0", 422),
        Problem(
            (),
            "Unevaluated properties are not allowed "
            "('gpu', 'name', 'scaling', 'timeout', 'type', 'workers' were unexpected)",
            422,
        ),
    ]
    bad_values = {**GOOD, "name": "x\x00", "timeout": 1, "workers": {"max": 2**31}}
    assert endpoint.request_problems("CreateEndpointRequest", bad_values) == [
        Problem(("name",), "contains an invisible or control character (U+0000)", 422),
        Problem(("timeout",), "must be 5000 to 604800000 ms (5 s to 7 days), got 1", 422),
        Problem(("workers", "max"), "2147483648 is out of range (at most 2147483647)", 422),
    ]
    lb = {**GOOD, "type": "LOAD_BALANCER", "timeout": 1}
    assert endpoint.request_problems("CreateEndpointRequest", lb) == [
        Problem(("scaling", "type"), endpoint.LB_SCALING, 422)
    ]
    assert endpoint.request_problems("CreateEndpointRequest", GOOD) == []


def test_a_load_balancer_on_queue_delay_is_said_once() -> None:
    assert endpoint._load_balancer_on_queue_delay([]) is False
    assert endpoint._load_balancer_on_queue_delay({"type": "LOAD_BALANCER", "scaling": "x"}) is False
    assert (
        endpoint._load_balancer_on_queue_delay({"type": "QUEUE", "scaling": {"type": "QUEUE_DELAY"}}) is False
    )
    body = {"type": "LOAD_BALANCER", "scaling": {"type": "QUEUE_DELAY"}}
    assert endpoint._load_balancer_on_queue_delay(body) is True


def test_state_problems_each_rule() -> None:
    gpu = {"pools": ["AMPERE_16"]}
    assert endpoint.state_problems({"gpu": gpu}, idle_timeout_given=False) == []
    assert (
        endpoint.state_problems({"gpu": gpu, "workers": None, "scaling": None}, idle_timeout_given=False)
        == []
    )
    assert (
        endpoint.state_problems({"gpu": gpu, "workers": {"min": 3, "max": 3}}, idle_timeout_given=False) == []
    )
    # Defaults fill a missing bound: min 0, max 3.
    assert endpoint.state_problems({"gpu": gpu, "workers": {"min": 4}}, idle_timeout_given=False) == [
        Problem(("workers", "max"), "must be >= workers.min (3 < 4)")
    ]
    assert endpoint.state_problems({"gpu": gpu, "workers": {"max": 0}}, idle_timeout_given=False) == []
    lb = {
        "gpu": gpu,
        "type": "LOAD_BALANCER",
        "scaling": {"type": "QUEUE_DELAY"},
        "workers": {"min": 3, "max": 2},
    }
    assert endpoint.state_problems(lb, idle_timeout_given=False) == [
        Problem(("workers", "max"), "must be >= workers.min (2 < 3)"),
        Problem(("scaling", "type"), endpoint.LB_SCALING),
    ]
    idle = Problem(
        ("workers", "idleTimeout"),
        "not applicable to QUEUE endpoints scaling on REQUEST_COUNT (RunPod rejects it)",
    )
    request_count = {"gpu": gpu, "scaling": {"type": "REQUEST_COUNT"}}
    assert endpoint.state_problems(request_count, idle_timeout_given=True) == [idle]
    assert endpoint.state_problems(request_count, idle_timeout_given=False) == []
    assert endpoint.state_problems({**request_count, "type": "LOAD_BALANCER"}, idle_timeout_given=True) == []
    assert (
        endpoint.state_problems({"gpu": gpu, "scaling": {"type": "QUEUE_DELAY"}}, idle_timeout_given=True)
        == []
    )
    assert endpoint.state_problems({}, idle_timeout_given=False) == [
        Problem((), "set either gpu (pools) or cpu (flavors): RunPod needs exactly one")
    ]


def test_cpu_and_data_center_rules() -> None:
    doc = {"cpu": [{"id": "cpu3c", "vcpuCount": 4}, {"id": "cpu9x", "vcpuCount": 6}],
           "dataCenterIds": ["US-KS-2", "MARS-1"]}  # fmt: skip
    flavors = ", ".join(catalog().cpu_flavors)
    centers = ", ".join(catalog().data_center_ids())
    assert endpoint.state_problems(doc, idle_timeout_given=False) == [
        Problem(("cpu", 1, "id"), f"unknown CPU flavor cpu9x (known: {flavors})", catalog=True),
        Problem(("cpu", 1, "vcpuCount"), "must be a power of two, got 6"),
        Problem(("dataCenterIds", 1), f"unknown data center MARS-1 (known: {centers})", catalog=True),
    ]
    for vcpus in (1, 2, 8, 32):
        assert list(endpoint._cpu_problems(0, {"id": "cpu3c", "vcpuCount": vcpus})) == []
    assert endpoint.state_problems(
        {"cpu": [{"id": "cpu3c", "vcpuCount": 2}], "gpu": {"pools": ["AMPERE_16"]}}, idle_timeout_given=False
    ) == [Problem(("cpu",), "set either gpu or cpu, not both")]


def test_gpu_rules() -> None:
    pools = ", ".join(catalog().pools)
    cuda = ", ".join(catalog().cuda_versions())
    newest = catalog().cuda_versions()[-1]
    gpu = {
        "pools": ["AMPERE_16", "NOPE"],
        "excludedTypes": [" NVIDIA RTX A4000 ", "X"],
        "allowedCudaVersions": ["12.4", "11.0"],
        "minCudaVersion": "99.0",
    }
    assert list(endpoint._gpu_problems(gpu)) == [
        Problem(("gpu", "pools", 1), f"unknown GPU pool NOPE (known pools: {pools})", catalog=True),
        Problem(("gpu", "excludedTypes", 1), "X is not in the selected pools", catalog=True),
        Problem(("gpu", "allowedCudaVersions", 1), f"unknown CUDA version 11.0 (known: {cuda})",
                catalog=True),
        Problem(("gpu", "minCudaVersion"), f"no GPU type offers CUDA 99.0 or newer (newest known: {newest})",
                catalog=True),
        Problem(("gpu", "minCudaVersion"),
                "cannot be combined with a non-empty allowedCudaVersions (pick an exact set or a floor)"),
    ]  # fmt: skip
    cards = catalog().cards(["AMPERE_16"])
    assert list(endpoint._gpu_problems({"pools": ["AMPERE_16"], "excludedTypes": [*cards, "Y"]})) == [
        Problem(("gpu", "excludedTypes", len(cards)), "Y is not in the selected pools"),
        Problem(("gpu", "excludedTypes"), "excludedTypes leave no GPU type in the selected pools"),
    ]
    assert list(endpoint._gpu_problems({"pools": ["AMPERE_16"], "excludedTypes": cards})) == [
        Problem(("gpu", "excludedTypes"), "excludedTypes leave no GPU type in the selected pools")
    ]
    # Excluding all but one card leaves a placement; a floor at the newest version is met.
    assert list(endpoint._gpu_problems({"pools": ["AMPERE_16"], "excludedTypes": cards[1:]})) == []
    assert list(endpoint._gpu_problems({"pools": ["AMPERE_16"], "minCudaVersion": newest})) == []
    assert list(endpoint._gpu_problems({"pools": ["AMPERE_16"], "allowedCudaVersions": [newest]})) == []
    assert list(endpoint._gpu_problems({"pools": ["AMPERE_16"], "allowedCudaVersions": [],
                                        "minCudaVersion": newest})) == []  # fmt: skip


def test_update_problems() -> None:
    both = [Problem(("cpu",), "set either gpu or cpu, not both")]
    assert endpoint.update_problems({"gpu": {}}, {"gpu": {}, "cpu": []}) == both
    assert endpoint.update_problems({"gpu": {}}, {"cpu": []}) == [
        Problem(("cpu",), "cpu given for a GPU endpoint; the compute family cannot change")
    ]
    assert endpoint.update_problems({"cpu": []}, {"gpu": {}}) == [
        Problem(("gpu",), "gpu given for a CPU endpoint; the compute family cannot change")
    ]
    assert endpoint.update_problems({"gpu": {}}, {"gpu": {"pools": ["ADA_24"]}}) == []
    assert endpoint.update_problems({"cpu": []}, {"cpu": []}) == []
    assert endpoint.update_problems({"gpu": {}}, {"name": "x"}) == []


def test_create_problems_reads_idle_timeout_from_the_body_unless_told() -> None:
    body = {**GOOD, "scaling": {"type": "REQUEST_COUNT", "requestCount": 1}, "workers": {"idleTimeout": 5}}
    idle = [("workers", "idleTimeout")]
    assert [p.path for p in endpoint.create_problems(body)] == idle
    assert endpoint.create_problems(body, idle_timeout_given=False) == []
    without = {**body, "workers": {}}
    assert endpoint.create_problems(without) == []
    assert [p.path for p in endpoint.create_problems(without, idle_timeout_given=True)] == idle
    # Schema and range problems come alone: no rule is checked on a body that breaks them.
    assert endpoint.create_problems({**body, "timeout": 1}) == [
        Problem(("timeout",), "must be 5000 to 604800000 ms (5 s to 7 days), got 1", 422)
    ]


def test_idle_timeout_applies() -> None:
    assert idle_timeout_applies("QUEUE", "REQUEST_COUNT") is False
    assert idle_timeout_applies("QUEUE", "QUEUE_DELAY") is True
    assert idle_timeout_applies("LOAD_BALANCER", "REQUEST_COUNT") is True


# --- the vendored spec --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "method", "status", "schema"),
    [
        ("/v2/serverless", "post", 201, "Endpoint"),
        ("/v2/serverless", "POST", 400, "ErrorResponse"),  # through components/responses
        ("/v2/serverless", "post", 500, "ErrorResponse"),  # the default answer
        ("/v2/serverless", "get", 200, "ListEndpointsResponse"),
        ("/v2/serverless/{id}", "delete", 204, None),
        ("/v2/account/secrets", "post", 201, "Secret"),  # the secrets document
        ("/v2/account/secrets", "post", 409, "ErrorResponse"),
        ("/v2/registries/delegations/{id}", "delete", 404, "ErrorResponse"),  # problem+json only
    ],
)
def test_response_schema(path: str, method: str, status: int, schema: str | None) -> None:
    assert schemas.response_schema(path, method, status) == schema


def test_response_schema_names_what_is_missing() -> None:
    with pytest.raises(KeyError, match=r"DELETE /v2/account/secrets/\{id\} declares no 500 answer"):
        schemas.response_schema("/v2/account/secrets/{id}", "delete", 500)
    with pytest.raises(KeyError, match=r"PUT /v2/serverless is not in the vendored spec"):
        schemas.response_schema("/v2/serverless", "put", 200)


def test_operation_lookup() -> None:
    assert schemas.operation("/v2/serverless", "POST") is not None
    assert schemas.operation("/v2/serverless", "POST")["operationId"] == "createEndpoint"  # type: ignore[index]
    assert schemas.operation("/v2/account/secrets", "get")["operationId"] == "listSecrets"  # type: ignore[index]
    assert schemas.operation("/v2/serverless", "put") is None
    assert schemas.operation("/v2/nowhere", "get") is None


def test_schema_errors_and_problems() -> None:
    assert list(schemas.errors("CreateEndpointRequest", {"name": 1}))[3] == (
        ("name",),
        "1 is not of type 'string'",
    )
    assert schemas.problems("CreateEndpointRequest", {"name": 1})[0] == "$.name: 1 is not of type 'string'"
    with pytest.raises(KeyError, match="'Nope' is not in the vendored spec"):
        schemas.validator("Nope")
    assert schemas.spec() is schemas.document("v2")


def test_query_values_are_read_as_the_spec_declares() -> None:
    assert schemas._query_value({"type": "integer"}, ["1", "+7"]) == 7
    assert schemas._query_value({"type": "integer"}, ["-7"]) == -7
    assert schemas._query_value({"type": "integer"}, ["x"]) == "x"
    assert schemas._query_value({"type": "integer"}, ["1" * 19]) == "1" * 19
    assert schemas._query_value({"type": "integer"}, ["1" * 18]) == int("1" * 18)
    assert schemas._query_value({"type": "integer"}, ["1 "]) == "1 "
    assert schemas._query_value({"type": "boolean"}, ["false"]) is False
    assert schemas._query_value({"type": "boolean"}, ["true"]) is True
    assert schemas._query_value({"type": "boolean"}, ["True"]) == "True"
    assert schemas._query_value({"type": "array"}, ["a,b", "c"]) == ["a", "b", "c"]
    assert schemas._query_value({}, ["a", "b"]) == "b"


def test_query_problems_name_parameter_and_reason() -> None:
    path = "/v2/catalog/datacenters"
    assert schemas.query_problems(
        path, "get", [("include", "x"), ("include", "GPU_AVAILABILITY"), ("bogus", "1")]
    ) == ["query parameter include: 'x' is not one of ['GPU_AVAILABILITY', 'CPU_AVAILABILITY']"]
    assert schemas.query_problems(path, "get", [("globalNetwork", "maybe")]) == [
        "query parameter globalNetwork: 'maybe' is not of type 'boolean'"
    ]
    assert schemas.query_problems(path, "get", [("globalNetwork", "true"), ("globalNetwork", "false")]) == [
        "query parameter globalNetwork: given 2 times, expected once"
    ]
    assert schemas.query_problems(path, "get", [("globalNetwork", "true")]) == []
    # A scalar given twice is named, and the parameters after it are still checked.
    assert schemas.query_problems(
        "/v2/billing", "get", [("startTime", "x"), ("startTime", "y"), ("bucketSize", "z")]
    ) == [
        "query parameter startTime: given 2 times, expected once",
        "query parameter bucketSize: 'z' is not one of ['hour', 'day', 'week', 'month', 'year']",
    ]
    # An operation that declares no parameters takes any query.
    assert schemas.query_problems("/v2/serverless", "post", [("x", "1")]) == []
    # Parameters that live on the path item (`id`) are declared but not in the query.
    assert schemas.query_problems("/v2/catalog/datacenters/{id}", "get", [("id", "x")]) == []
    with pytest.raises(KeyError, match="POST /v2/catalog/datacenters is not in the vendored spec"):
        schemas.query_problems(path, "post", [])


def test_long_messages_are_cut() -> None:
    assert schemas._short("a" * 160) == "a" * 160
    assert schemas._short("a" * 161) == "a" * 159 + "…"
    assert schemas._short("abcdef", 4) == "abc…"


# --- text, secrets, releases --------------------------------------------------------------


def test_escape_char_widths() -> None:
    assert text.escape_char("\x1b") == "\\x1b"
    assert text.escape_char("\xff") == "\\xff"
    assert text.escape_char("\u0100") == "\\u0100"
    assert text.escape_char("\u202e") == "\\u202e"
    assert text.escape_char("\uffff") == "\\uffff"
    assert text.escape_char("\U00010000") == "\\U00010000"
    assert text.escaped("a\u200bb\tc d\u00a0") == "a\\u200bb\\x09c d\\xa0"


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ("plain ascii", None),
        ("tab\there", "U+0009"),
        ("del\x7f", "U+007F"),
        ("café", None),
        ("no\u00a0break", "U+00A0"),
        ("zero\u200bwidth", "U+200B"),
        ("vs\ufe0f", "U+FE0F"),
        ("vs\ufe00", "U+FE00"),
        ("tag\U000e0100", "U+E0100"),
        ("tag\U000e01ef", "U+E01EF"),
        ("mongolian\u180b", "U+180B"),
        ("mongolian\u180f", "U+180F"),
        ("cgj\u034f", "U+034F"),
        ("hangul\u115f", "U+115F"),
        ("hangul\u1160", "U+1160"),
        ("hangul\u3164", "U+3164"),
        ("half\uffa0", "U+FFA0"),
        ("line\u2028", "U+2028"),
        ("é\x00", "U+0000"),
        ("\u180a\u1161\u034e\ufe10", None),  # just outside the ranges
    ],
)
def test_hidden_char(value: str, found: str | None) -> None:
    assert text.hidden_char(value) == found


def test_name_and_env_name_problems() -> None:
    assert text.name_problem("a" * text.NAME_MAX) is None
    assert text.name_problem("a" * (text.NAME_MAX + 1)) == "must be at most 191 characters"
    assert text.name_problem("a\u200bb") == "contains an invisible or control character (U+200B)"
    assert text.env_name_problem("_A1") is None
    assert text.env_name_problem("1A") == (
        "is not a valid environment variable name (letters, digits and '_', not starting with a digit)"
    )
    assert text.env_name_problem("A\nB") == (
        "is not a valid environment variable name (letters, digits and '_', not starting with a digit;"
        " it contains U+000A)"
    )


def test_env_problems_sizes_and_nul() -> None:
    entry = text.ENV_ENTRY_MAX_BYTES
    # "K=" + value + NUL terminator is exactly the limit: accepted; one byte more is not.
    assert list(text.env_problems({"K": "v" * (entry - 3)})) == []
    assert list(text.env_problems({"K": "v" * (entry - 2)})) == [
        ("K", f"is {entry + 1} bytes with its name; a process takes at most {entry}")
    ]
    assert list(text.env_problems({"K": "é" * 2})) == []
    assert list(text.env_problems({"1": "x", "N": "a\x00b", "I": 5, "OK": "y"})) == [
        ("1", text.env_name_problem("1")),
        ("N", "value contains a NUL character (U+0000), which no process environment can hold"),
    ]
    count = text.ENV_TOTAL_MAX_BYTES // 100_000
    big = {f"K{i}": "v" * (100_000 - 3 - len(str(i))) for i in range(count)}  # 100,000 bytes each
    assert list(text.env_problems(big)) == []
    over = {**big, "Z": "v" * (text.ENV_TOTAL_MAX_BYTES - 100_000 * count - 2)}
    total = text.ENV_TOTAL_MAX_BYTES + 1
    assert list(text.env_problems(over)) == [
        ("", f"is {total} bytes in all; at most {text.ENV_TOTAL_MAX_BYTES} fit beside the container's own")
    ]
    # Every entry is checked, whatever comes before it (a non-string, a NUL).
    assert [key for key, _ in text.env_problems({"I": 5, "N": "a\x00", "1": "x"})] == ["N", "1"]
    exact = {**big, "Z": "v" * (text.ENV_TOTAL_MAX_BYTES - 100_000 * count - 3)}
    assert list(text.env_problems(exact)) == []  # exactly the total limit
    # A lone surrogate still counts its bytes (surrogatepass), it does not crash.
    assert list(text.env_problems({"K": "\ud800"})) == []


def test_request_text_problems_by_field() -> None:
    body = {
        "name": "a\x07",
        "env": {"1": "x", "OK": "y"},
        "args": "a\tb\nc",
        "image": "img\u200b",
        "gpu": {"pools": ["P\x00"]},
        "workers": {"min": 1},
    }
    assert list(text.request_text_problems(body)) == [
        (("name",), "contains an invisible or control character (U+0007)"),
        (("env", "1"), text.env_name_problem("1")),
        (("image",), "contains an invisible or control character (U+200B)"),
        (("gpu", "pools", 0), "contains an invisible or control character (U+0000)"),
    ]
    assert list(text.request_text_problems({"args": "a\x00"})) == [
        (("args",), "contains a NUL character (U+0000), which no command line can hold")
    ]
    assert list(text.request_text_problems({"env": {"A": "v" * text.ENV_TOTAL_MAX_BYTES}}))[-1][0] == ("env",)
    assert list(text.request_text_problems({"name": "fine", "args": "fine"})) == []
    assert list(text.request_text_problems({"name": "n" * 192})) == [
        (("name",), "must be at most 191 characters")
    ]
    assert list(text.request_text_problems(["x\x00"])) == []
    # Non-string name/args/env are the schema's to report.
    assert list(text.request_text_problems({"name": 5, "args": 5, "env": "x\x00"})) == [
        (("env",), "contains an invisible or control character (U+0000)")
    ]


def test_secret_reference_and_name_problems() -> None:
    assert secrets.reference("HF_TOKEN") == "{{ RUNPOD_SECRET_HF_TOKEN }}"
    assert secrets.name_problem("a.b-c/d") is None
    assert secrets.name_problem("runpodX") == "secret names must not start with RUNPOD (got 'runpodX')"
    assert (
        secrets.name_problem("RUNPOD" + "x" * 50)
        == f"secret names must not start with RUNPOD (got {('RUNPOD' + 'x' * 34)!r})"
    )
    assert (
        secrets.name_problem("1" * 50)
        == f"{'1' * 40!r} is not a valid RunPod secret name ({secrets.NAME_RULE})"
    )
    assert secrets.name_problem("RUNPO") is None


def test_release_flatten_diff_and_rolls() -> None:
    doc = {
        "id": "e1",
        "createdAt": "t",
        "requestUrls": [],
        "workers": {"max": 3},
        "env": {"A": "1"},
        "name": "n",
    }
    assert release.flatten(doc) == {"workers.max": 3, "env": {"A": "1"}, "name": "n"}
    changes = release.diff({"workers": {"max": 3}, "name": "n"}, {"workers": {"max": 4}, "image": "i"})
    assert changes == [
        {"field": "image", "old": None, "new": "i"},
        {"field": "name", "old": "n", "new": None},
        {"field": "workers.max", "old": 3, "new": 4},
    ]
    assert release.rolls_workers(changes) is True
    assert release.rolls_workers([{"field": "workers.max", "old": 3, "new": 4}]) is False
    assert release.rolls_workers([{"field": "gpu.pools", "old": [], "new": ["X"]}]) is True
    assert release.rolls_workers([]) is False
