"""REST v2 control plane over HTTP. Every answer here also passes the official response schemas
(`Api.rest` checks each one against runpod-openapi-v2.json: the contract test)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.emulator.helpers import Api

GPU_BODY: dict[str, Any] = {
    "name": "contract",
    "type": "QUEUE",
    "image": "127.0.0.1:5000/rpdeploy-test/none:1",
    "gpu": {"pools": ["ADA_24", "AMPERE_48"], "excludedTypes": ["NVIDIA A40"], "minCudaVersion": "12.4"},
    "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4},
    "workers": {"min": 0, "max": 0},
    "env": {"A": "1", "HF_TOKEN": "{{ RUNPOD_SECRET_hf }}"},
}


def test_endpoint_lifecycle_status_codes_and_shapes(api: Api) -> None:
    volume = api.rest(
        "POST", "/v2/network-volumes", {"name": "contract", "size": 10, "dataCenter": "US-KS-2"}
    )
    created = api.rest("POST", "/v2/serverless", {**GPU_BODY, "networkVolumes": [volume.json()["id"]]})
    assert created.status_code == 201
    endpoint = created.json()
    assert endpoint["workers"] == {"min": 0, "max": 0, "idleTimeout": 10}
    assert endpoint["gpu"] == {
        "pools": ["ADA_24", "AMPERE_48"],
        "excludedTypes": ["NVIDIA A40"],
        "count": 1,
        "allowedCudaVersions": [],
        "minCudaVersion": "12.4",
    }
    assert endpoint["env"]["HF_TOKEN"] == "{{ RUNPOD_SECRET_hf }}"  # stored literally
    assert endpoint["requestUrls"]["run"] == f"{api.base}/v2/{endpoint['id']}/run"
    assert "RateLimit" in created.headers
    assert "RateLimit-Policy" in created.headers

    path = f"/v2/serverless/{endpoint['id']}"
    assert api.rest("GET", path).json() == endpoint
    listed = api.rest("GET", "/v2/serverless").json()["endpoints"]
    assert endpoint["id"] in [e["id"] for e in listed]

    renamed = api.rest("PATCH", path, {"name": "renamed", "workers": {"max": 2}})
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "renamed"
    assert renamed.json()["workers"] == {"min": 0, "max": 2, "idleTimeout": 10}

    workers = api.rest("GET", f"{path}/workers").json()
    assert workers["workers"] == []
    assert workers["summary"]["total"] == 0
    deleted = api.rest("DELETE", path)
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert api.rest("GET", path).status_code == 404
    assert api.rest("DELETE", path).status_code == 404
    assert api.rest("PATCH", path, {"name": "x"}).status_code == 404
    assert api.rest("DELETE", f"/v2/network-volumes/{volume.json()['id']}").status_code == 204


def test_releases_record_container_changes_with_diffs(api: Api) -> None:
    endpoint = api.create_endpoint(env={"TAG": "v1"})
    path = f"/v2/serverless/{endpoint['id']}"
    first = api.rest("GET", f"{path}/releases").json()
    assert first["endpointVersion"] == 1
    assert len(first["releases"]) == 1
    assert {"field": "image", "old": None, "new": endpoint["image"]} in first["releases"][0]["diff"]

    api.rest("PATCH", path, {"workers": {"max": 1}})  # not restart-requiring: applied in place
    assert api.rest("GET", f"{path}/releases").json()["endpointVersion"] == 1

    api.rest(
        "PATCH", path, {"image": "127.0.0.1:5000/rpdeploy-test/none:2", "env": {"TAG": "v2"}, "timeout": 9000}
    )
    releases = api.rest("GET", f"{path}/releases").json()
    assert releases["endpointVersion"] == 2
    newest = releases["releases"][0]
    assert newest["version"] == 2
    assert newest["source"] == "MANUAL"
    assert newest["diff"] == [
        {"field": "env", "old": {"TAG": "v1"}, "new": {"TAG": "v2"}},
        {"field": "image", "old": endpoint["image"], "new": "127.0.0.1:5000/rpdeploy-test/none:2"},
        {"field": "timeout", "old": 300000, "new": 9000},
    ]
    assert releases["rollout"] == {
        "inProgress": False,
        "workersOnLatest": 0,
        "workersTotal": 0,
        "percentOnLatest": 0,
    }


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"cpu": [{"id": "cpu3c", "vcpuCount": 2}]}, "set either gpu or cpu, not both"),
        ({"gpu": None}, "set either gpu (pools) or cpu"),
        (
            {"gpu": {"pools": ["ADA_24"], "allowedCudaVersions": ["12.4"], "minCudaVersion": "12.1"}},
            "cannot be combined with a non-empty allowedCudaVersions",
        ),
        ({"gpu": {"pools": ["NOPE_99"]}}, "gpu.pools[0]: unknown GPU pool NOPE_99"),
        ({"gpu": {"pools": ["ADA_24"], "excludedTypes": ["NVIDIA A40"]}}, "not in the selected pools"),
        ({"gpu": {"pools": ["ADA_24"], "excludedTypes": ["NVIDIA GeForce RTX 4090"]}}, "leave no GPU type"),
        ({"workers": {"min": 3, "max": 1}}, "workers.max: must be >= workers.min (1 < 3)"),
        (
            {"scaling": {"type": "REQUEST_COUNT", "requestCount": 2}, "workers": {"idleTimeout": 5}},
            "workers.idleTimeout: not applicable to QUEUE endpoints scaling on REQUEST_COUNT",
        ),
    ],
)
def test_semantic_rules_give_400(api: Api, change: dict[str, Any], fragment: str) -> None:
    body = {**GPU_BODY, **change}
    body = {k: v for k, v in body.items() if v is not None}
    response = api.rest("POST", "/v2/serverless", body)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({**GPU_BODY, "bogus": 1}, "bogus"),
        ({**GPU_BODY, "scaling": {"type": "QUEUE_DELAY", "queueDelay": 0.1}}, "$.scaling"),
        ({k: v for k, v in GPU_BODY.items() if k != "image"}, "'image' is a required property"),
        ({**GPU_BODY, "type": "LOAD_BALANCER"}, "$.scaling.type: LOAD_BALANCER endpoints must scale on"),
        ({**GPU_BODY, "workers": {"idleTimeout": 0}}, "$.workers"),
        ([1, 2], "$"),
    ],
)
def test_schema_violations_give_422_problem_details(api: Api, body: Any, fragment: str) -> None:
    response = api.rest("POST", "/v2/serverless", body)
    assert response.status_code == 422
    problem = response.json()
    assert problem["title"] == "Unprocessable Entity"
    assert problem["detail"] == "Request validation failed."
    assert any(fragment in error for error in problem["errors"]), problem


def test_patch_rules(api: Api) -> None:
    endpoint = api.create_endpoint(gpu={"pools": ["AMPERE_48"], "excludedTypes": ["NVIDIA A40"]})
    path = f"/v2/serverless/{endpoint['id']}"
    assert api.rest("PATCH", path, {"cpu": [{"id": "cpu3c", "vcpuCount": 2}]}).status_code == 400
    assert api.rest("PATCH", path, {"gpu": {"excludedTypes": ["NVIDIA A40"]}}).status_code == 422
    # New pools clear the exclusions unless restated.
    patched = api.rest("PATCH", path, {"gpu": {"pools": ["AMPERE_48", "ADA_24"]}}).json()
    assert "excludedTypes" not in patched["gpu"]
    # Setting a floor next to a non-empty set is refused; clearing the set in the same patch is fine.
    assert api.rest("PATCH", path, {"gpu": {"allowedCudaVersions": ["12.4"]}}).status_code == 200
    assert api.rest("PATCH", path, {"gpu": {"minCudaVersion": "12.1"}}).status_code == 400
    both = api.rest("PATCH", path, {"gpu": {"minCudaVersion": "12.1", "allowedCudaVersions": []}}).json()
    assert both["gpu"]["minCudaVersion"] == "12.1"
    assert both["gpu"]["allowedCudaVersions"] == []
    cleared = api.rest("PATCH", path, {"gpu": {"minCudaVersion": ""}}).json()
    assert cleared["gpu"]["minCudaVersion"] is None
    switched = api.rest("PATCH", path, {"scaling": {"type": "REQUEST_COUNT", "requestCount": 2}}).json()
    assert "idleTimeout" not in switched["workers"]


def test_templates_apply_once_and_bind_to_their_endpoint(api: Api) -> None:
    created = api.rest(
        "POST",
        "/v2/templates",
        {"name": "tpl", "image": "img:1", "env": {"A": "t", "B": "t"}, "serverless": True, "disk": 7},
    )
    assert created.status_code == 201
    template = created.json()
    assert template["category"] == "NVIDIA"
    assert template["startSsh"] is True
    endpoint = api.create_endpoint(image=None, templateId=template["id"], env={"B": "body"})
    assert endpoint["image"] == "img:1"
    assert endpoint["disk"] == 7
    assert endpoint["env"] == {"A": "t", "B": "body"}

    tpath = f"/v2/templates/{template['id']}"
    assert api.rest("PATCH", tpath, {"image": "img:2", "mounts": {}}).json()["image"] == "img:2"
    assert api.rest("GET", f"/v2/serverless/{endpoint['id']}").json()["image"] == "img:1"
    in_use = api.rest("DELETE", tpath)
    assert in_use.status_code == 400
    assert "in use" in in_use.json()["detail"]
    assert api.rest("DELETE", f"/v2/serverless/{endpoint['id']}").status_code == 204
    assert api.rest("GET", tpath).status_code == 404  # deleted with its bound endpoint

    pod_template = api.rest("POST", "/v2/templates", {"name": "pod", "image": "img:1"}).json()
    refused = api.rest("POST", "/v2/serverless", {**GPU_BODY, "templateId": pod_template["id"]})
    assert refused.status_code == 422
    assert api.rest("POST", "/v2/serverless", {**GPU_BODY, "templateId": "missing"}).status_code == 404
    assert api.rest("DELETE", f"/v2/templates/{pod_template['id']}").status_code == 204
    assert api.rest("GET", "/v2/templates").status_code == 200
    assert api.rest("POST", "/v2/templates", {"name": "no-image"}).status_code == 422


def test_authentication_is_bearer_only(api: Api) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": api.key}):
        response = httpx.get(f"{api.base}/v2/serverless", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["title"] == "Unauthorized"
    assert api.rest("GET", "/v2/serverless", key="wrong").status_code == 401


def test_malformed_json_and_unknown_routes(api: Api) -> None:
    headers = {"Authorization": f"Bearer {api.key}", "Content-Type": "application/json"}
    broken = httpx.post(f"{api.base}/v2/serverless", content=b'{"name": ', headers=headers)
    assert broken.status_code == 400
    assert broken.headers["content-type"].startswith("application/problem+json")
    assert "not valid JSON" in broken.json()["detail"]
    assert api.rest("GET", "/v2/serverless/nope/releases").status_code == 404
    assert api.rest("GET", "/v2/serverless/nope/workers").status_code == 404
    assert api.rest("GET", "/v2/templates/nope").status_code == 404


def test_cpu_endpoint_memory_and_request_count(api: Api) -> None:
    endpoint = api.create_endpoint(
        gpu=None,
        cpu=[{"id": "cpu5c", "vcpuCount": 4}],
        scaling={"type": "REQUEST_COUNT", "requestCount": 3},
        workers={"min": 0, "max": 0},
    )
    assert endpoint["cpu"] == [{"id": "cpu5c", "vcpuCount": 4, "memory": 8}]
    assert "gpu" not in endpoint
    assert "idleTimeout" not in endpoint["workers"]
    bad = {**GPU_BODY, "cpu": [{"id": "cpu5c", "vcpuCount": 3}]}
    bad.pop("gpu")
    assert api.rest("POST", "/v2/serverless", bad).status_code == 400


def test_catalog_routes_serve_the_vendored_catalog_in_the_spec_shapes(api: Api) -> None:
    gpus = api.rest("GET", "/v2/catalog/gpus")  # Api.rest checks the answer against the spec
    assert gpus.status_code == 200
    pools = {gpu["pool"] for gpu in gpus.json()["gpus"]}
    assert {"ADA_32_PRO", "BLACKWELL_96", "BLACKWELL_180", "HOPPER_141"} <= pools
    rtx_5090 = next(gpu for gpu in gpus.json()["gpus"] if gpu["pool"] == "ADA_32_PRO")
    assert rtx_5090["id"] == "NVIDIA GeForce RTX 5090"
    assert "cudaVersions" not in rtx_5090
    detailed = api.rest("GET", "/v2/catalog/gpus?include=AVAILABILITY&product=SERVERLESS").json()["gpus"]
    assert {"version": "12.8", "available": True} in detailed[0]["cudaVersions"]
    centers = api.rest("GET", "/v2/catalog/datacenters")
    assert centers.status_code == 200
    assert "US-KS-2" in {dc["id"] for dc in centers.json()["dataCenters"]}


@pytest.mark.parametrize("query", ["include=AVAILABILITY", "product=POD", "include=NOPE&product=POD"])
def test_catalog_query_the_spec_refuses_is_400(api: Api, query: str) -> None:
    assert api.rest("GET", f"/v2/catalog/gpus?{query}").status_code == 400


@pytest.mark.parametrize("pool", ["ADA_32_PRO", "BLACKWELL_96", "BLACKWELL_180"])
def test_newer_pools_from_the_catalog_are_accepted(api: Api, pool: str) -> None:
    response = api.rest("POST", "/v2/serverless", {**GPU_BODY, "gpu": {"pools": [pool]}})
    assert response.status_code == 201, response.text
    assert response.json()["gpu"]["pools"] == [pool]
    api.rest("DELETE", f"/v2/serverless/{response.json()['id']}")


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"timeout": -1}, "$.timeout: must be 5000 to 604800000 ms"),
        ({"timeout": 0}, "$.timeout: must be 5000"),
        (
            {"timeout": int("9" * 4000)},
            "$.timeout: must be 5000 to 604800000 ms (5 s to 7 days), got an integer of",
        ),
        ({"workers": {"min": 0, "max": 2**31}}, "$.workers.max:"),
        ({"gpu": {"pools": ["ADA_24"], "count": 10**40}}, "$.gpu.count:"),
        ({"disk": 2**63}, "$.disk:"),
    ],
)
def test_absurd_numbers_are_422_on_create_and_update(api: Api, change: dict[str, Any], fragment: str) -> None:
    created = api.rest("POST", "/v2/serverless", {**GPU_BODY, **change})
    assert created.status_code == 422, created.text
    assert any(fragment in line for line in created.json()["errors"]), created.json()
    endpoint = api.create_endpoint()
    updated = api.rest("PATCH", f"/v2/serverless/{endpoint['id']}", change)
    assert updated.status_code == 422, updated.text
    assert api.rest("GET", f"/v2/serverless/{endpoint['id']}").json()["timeout"] == endpoint["timeout"]
    api.rest("DELETE", f"/v2/serverless/{endpoint['id']}")


@pytest.mark.parametrize(
    ("create", "patch", "detail"),
    [
        (
            {},
            {"cpu": [{"id": "cpu3c", "vcpuCount": 2}]},
            "cpu: cpu given for a GPU endpoint; the compute family",
        ),
        (
            {"gpu": None, "cpu": [{"id": "cpu3c", "vcpuCount": 2}]},
            {"gpu": {"pools": ["ADA_24"]}},
            "gpu: gpu given for a CPU endpoint; the compute family",
        ),
        (
            {},
            {"gpu": {"pools": ["ADA_24"]}, "cpu": [{"id": "cpu3c", "vcpuCount": 2}]},
            "cpu: set either gpu or cpu",
        ),
        (
            {"type": "LOAD_BALANCER", "scaling": {"type": "REQUEST_COUNT", "requestCount": 1}},
            {"scaling": {"type": "QUEUE_DELAY", "queueDelay": 2}},
            "scaling.type: LOAD_BALANCER endpoints must scale on REQUEST_COUNT",
        ),
        (
            {},
            {"scaling": {"type": "REQUEST_COUNT", "requestCount": 2}, "workers": {"idleTimeout": 9}},
            "workers.idleTimeout: not applicable to QUEUE endpoints scaling on REQUEST_COUNT",
        ),
        ({}, {"workers": {"min": 5}}, "workers.max: must be >= workers.min (0 < 5)"),
        ({}, {"gpu": {"pools": ["NOPE_1"]}}, "gpu.pools[0]: unknown GPU pool NOPE_1"),
        (
            {"gpu": None, "cpu": [{"id": "cpu3c", "vcpuCount": 2}]},
            {"cpu": [{"id": "cpu9z", "vcpuCount": 2}]},
            "cpu[0].id: unknown CPU flavor cpu9z",
        ),
    ],
)
def test_update_rules_are_the_contract_rules(
    api: Api, create: dict[str, Any], patch: dict[str, Any], detail: str
) -> None:
    endpoint = api.create_endpoint(**create)
    path = f"/v2/serverless/{endpoint['id']}"
    response = api.rest("PATCH", path, patch)
    assert response.status_code == 400, response.text
    assert response.json()["detail"].startswith(detail)
    assert api.rest("GET", path).json() == endpoint  # nothing of a refused PATCH is kept
    api.rest("DELETE", path)
