"""Every typed call of `RunPodApi` against the real emulator over HTTP; every answer is checked
against RunPod's official spec as it arrives (the `contract` fixture)."""

from __future__ import annotations

import uuid

import pytest

from deploy.api import ApiError, NotFound, RunPodApi
from tests.api.conftest import ContractLog
from tests.emulator.helpers import endpoint_body


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_endpoint_lifecycle_through_every_endpoint_call(runpod_api: RunPodApi, contract: ContractLog) -> None:
    name = unique("api-life")
    created = runpod_api.create_endpoint(endpoint_body(name))
    endpoint_id = created["id"]
    assert created["name"] == name
    assert runpod_api.find_endpoint(name) == runpod_api.get_endpoint(endpoint_id)
    assert endpoint_id in {e["id"] for e in runpod_api.list_endpoints()}

    updated = runpod_api.update_endpoint(endpoint_id, {"image": "127.0.0.1:5000/rpdeploy-test/none:1"})
    assert updated["image"].endswith("none:1")
    releases = runpod_api.releases(endpoint_id)
    assert [r["version"] for r in releases["releases"]] == [2, 1]
    change = {"field": "image", "old": created["image"], "new": updated["image"]}
    assert change in releases["releases"][0]["diff"]
    assert runpod_api.workers(endpoint_id)["workers"] == []

    runpod_api.delete_endpoint(endpoint_id)
    assert runpod_api.find_endpoint(name) is None
    with pytest.raises(NotFound, match=f"RunPod API 404 on GET /v2/serverless/{endpoint_id}: "):
        runpod_api.get_endpoint(endpoint_id)
    checked = {(method, path) for method, path, _ in contract.checked}
    assert checked >= {
        ("POST", "/v2/serverless"),
        ("GET", "/v2/serverless"),
        ("GET", "/v2/serverless/{id}"),
        ("PATCH", "/v2/serverless/{id}"),
        ("GET", "/v2/serverless/{id}/releases"),
        ("GET", "/v2/serverless/{id}/workers"),
        ("DELETE", "/v2/serverless/{id}"),
    }


def test_calls_are_counted_as_reads_and_writes(runpod_api: RunPodApi) -> None:
    before = runpod_api.calls.to_json()
    endpoint = runpod_api.create_endpoint(endpoint_body(unique("api-count")))
    runpod_api.get_endpoint(endpoint["id"])
    runpod_api.list_endpoints()
    runpod_api.delete_endpoint(endpoint["id"])
    after = runpod_api.calls.to_json()
    assert after == {"reads": before["reads"] + 2, "writes": before["writes"] + 2}


def test_find_endpoint_matches_the_exact_name_only(runpod_api: RunPodApi) -> None:
    name = unique("api-exact")
    endpoint = runpod_api.create_endpoint(endpoint_body(name))
    try:
        assert runpod_api.find_endpoint(name.upper()) is None
        assert runpod_api.find_endpoint(name[:-1]) is None
        assert runpod_api.find_endpoint(name) is not None
    finally:
        runpod_api.delete_endpoint(endpoint["id"])


def test_two_endpoints_sharing_a_name_are_refused_not_guessed(runpod_api: RunPodApi) -> None:
    name = unique("api-twin")
    first = runpod_api.create_endpoint(endpoint_body(name))
    second = runpod_api.create_endpoint(endpoint_body(name))
    try:
        with pytest.raises(ApiError, match=rf"^2 endpoints are named '{name}' \(.*{second['id']}"):
            runpod_api.find_endpoint(name)
    finally:
        runpod_api.delete_endpoint(first["id"])
        runpod_api.delete_endpoint(second["id"])


def test_catalog_calls_return_the_lists(runpod_api: RunPodApi, contract: ContractLog) -> None:
    gpus = runpod_api.gpu_types()
    assert any(gpu["pool"] == "ADA_24" for gpu in gpus)
    centers = runpod_api.data_centers()
    assert all({"id", "name"} <= set(center) for center in centers)
    assert centers
    assert {path for _, path, _ in contract.checked} == {"/v2/catalog/gpus", "/v2/catalog/datacenters"}


def test_ids_are_quoted_into_one_path_segment(runpod_api: RunPodApi, contract: ContractLog) -> None:
    # An id with a slash must not reach another route (../catalog/gpus would answer 200).
    with pytest.raises(NotFound):
        runpod_api.get_endpoint("../catalog/gpus")
    assert contract.checked == [("GET", "/v2/serverless/{id}", 404)]
