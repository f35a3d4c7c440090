"""REST v2 account resources over HTTP: secrets, network volumes, registry credentials, the CPU catalog.

Every answer passes through `Api.rest`, which validates it against the vendored spec
(runpod-openapi-v2.json, and runpod-openapi-v2-secrets.json for `/v2/account/secrets`):
the status must be one the operation declares and the body its schema.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from deploy.emulator import store as store_module
from deploy.emulator.account_secrets import MAX_VALUE_BYTES
from deploy.emulator.store import Store
from deploy.runpod.catalog import catalog
from tests.emulator.helpers import Api, EmulatorProcess, contract_problems

ENDPOINT: dict[str, Any] = {"workers": {"min": 0, "max": 0}}


def _secret(api: Api, name: str, value: str = "s3cr3t-value", **extra: Any) -> dict[str, Any]:
    created = api.rest("POST", "/v2/account/secrets", {"name": name, "value": value, **extra})
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def _volume(api: Api, data_center: str = "EU-RO-1", **extra: Any) -> dict[str, Any]:
    body = {"name": "data", "size": 10, "dataCenter": data_center, **extra}
    created = api.rest("POST", "/v2/network-volumes", body)
    assert created.status_code == 201, created.text
    volume: dict[str, Any] = created.json()
    return volume


# -- secrets -------------------------------------------------------------------------------------


def test_secret_lifecycle_never_returns_the_value(api: Api, emulator: EmulatorProcess) -> None:
    value = "canary-secret-value-41c7"
    created = _secret(api, "acct_life", value, description="first")
    assert set(created) == {"id", "name", "description", "createdAt", "valueLastUpdatedAt"}
    assert created["name"] == "acct_life"
    assert created["description"] == "first"
    assert created["valueLastUpdatedAt"] == created["createdAt"]
    path = f"/v2/account/secrets/{created['id']}"
    assert api.rest("GET", path).json() == created
    assert created in api.rest("GET", "/v2/account/secrets").json()["secrets"]

    # The description alone leaves the value time alone; "" clears the description.
    described = api.rest("PATCH", path, {"description": ""}).json()
    assert described["description"] is None
    assert described["valueLastUpdatedAt"] == created["valueLastUpdatedAt"]
    rotated = api.rest("PATCH", path, {"value": "rotated-canary-77"})
    assert rotated.status_code == 200
    assert rotated.json()["valueLastUpdatedAt"] >= created["valueLastUpdatedAt"]
    assert rotated.json()["createdAt"] == created["createdAt"]

    deleted = api.rest("DELETE", path)
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert api.rest("GET", path).status_code == 404
    assert api.rest("PATCH", path, {"value": "x"}).status_code == 404
    assert api.rest("DELETE", path).status_code == 404
    assert value not in emulator.log()
    assert "rotated-canary-77" not in emulator.log()


def test_a_rotation_stamps_value_last_updated_at(tmp_path: Any) -> None:
    # Second-resolution timestamps: the store is driven directly to give two distinct times.
    store = Store(tmp_path / "emulator.sqlite3")
    assert store.add_secret("s1", "rot", "v1", None, "2026-11-29T10:00:00Z")
    store.update_secret("s1", value="v2", description="d", at="2026-11-29T11:00:00Z")
    assert store.secret("s1") == {
        "id": "s1",
        "name": "rot",
        "description": "d",
        "createdAt": "2026-11-29T10:00:00Z",
        "valueLastUpdatedAt": "2026-11-29T11:00:00Z",
    }
    assert store.secret_values() == {"rot": "v2"}
    store.close()


def test_secret_names_filter_case_insensitively_and_are_unique_ignoring_case(api: Api) -> None:
    created = _secret(api, "Acct_Mixed")
    found = api.rest("GET", "/v2/account/secrets?name=acct_MIXED").json()
    assert found == {"secrets": [created]}
    assert api.rest("GET", "/v2/account/secrets?name=acct_mixe").json() == {"secrets": []}
    duplicate = api.rest("POST", "/v2/account/secrets", {"name": "ACCT_MIXED", "value": "v"})
    assert duplicate.status_code == 409
    assert duplicate.json()["detail"] == "A secret named ACCT_MIXED already exists"


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"name": "RunPod_token", "value": "v"}, 400, "must not start with RUNPOD"),
        ({"name": "9lives", "value": "v"}, 422, "$.name: '9lives' does not match"),
        ({"name": "a" * 192, "value": "v"}, 422, "$.name: "),
        ({"name": "ok_name", "value": ""}, 422, "$.value: '' should be non-empty"),
        ({"name": "ok_name"}, 422, "'value' is a required property"),
        ({"name": "ok_name", "value": "v", "bogus": 1}, 422, "'bogus' was unexpected"),
        ({"name": "ok_name", "value": "v", "description": "d" * 65_536}, 422, "$.description"),
        ([1], 422, "$: [1] is not of type 'object'"),
    ],
)
def test_bad_secret_bodies_are_refused_with_one_clear_line(
    api: Api, body: Any, status: int, fragment: str
) -> None:
    response = api.rest("POST", "/v2/account/secrets", body)
    assert response.status_code == status, response.text
    problem = response.json()
    assert fragment in " ".join([problem["detail"], *problem.get("errors", [])])
    assert api.rest("GET", "/v2/account/secrets?name=ok_name").json() == {"secrets": []}


def test_a_value_over_16_mib_of_utf8_is_refused(api: Api) -> None:
    # 16,777,215 bytes is the limit; "é" is two bytes, so half as many characters pass the schema.
    value = "é" * (MAX_VALUE_BYTES // 2 + 1)
    body = json.dumps({"name": "too_big", "value": value}, ensure_ascii=False).encode()
    response = api.client.post(
        f"{api.base}/v2/account/secrets",
        content=body,
        headers={"Authorization": f"Bearer {api.key}", "Content-Type": "application/json"},
    )
    assert contract_problems("POST", "/v2/account/secrets", response) == []
    assert response.status_code == 422
    assert response.json()["errors"] == [
        f"$.value: {MAX_VALUE_BYTES + 1} bytes of UTF-8, at most {MAX_VALUE_BYTES} allowed"
    ]


def test_secret_patch_bodies(api: Api) -> None:
    path = f"/v2/account/secrets/{_secret(api, 'acct_patch')['id']}"
    assert api.rest("PATCH", path, {}).status_code == 422
    assert api.rest("PATCH", path, {"name": "renamed"}).status_code == 422  # names are immutable
    assert api.rest("PATCH", path, {"value": ""}).status_code == 422
    assert api.rest("GET", path).json()["name"] == "acct_patch"


def test_rest_and_graphql_share_one_secret_store(api: Api) -> None:
    made = httpx.post(
        f"{api.base}/graphql",
        json={"query": 'mutation { secretCreate(input: {name: "acct_gql", value: "v"}) { id } }'},
        headers={"Authorization": f"Bearer {api.key}"},
    ).json()["data"]["secretCreate"]
    listed = api.rest("GET", "/v2/account/secrets?name=acct_gql").json()["secrets"]
    assert [s["id"] for s in listed] == [made["id"]]
    assert api.rest("POST", "/v2/account/secrets", {"name": "acct_gql", "value": "v"}).status_code == 409
    assert api.rest("DELETE", f"/v2/account/secrets/{made['id']}").status_code == 204


def test_store_migration_gives_older_secrets_a_creation_time(tmp_path: Any) -> None:
    path = tmp_path / "emulator.sqlite3"
    legacy = sqlite3.connect(path)
    legacy.executescript(store_module.SCHEMA_V1 + "PRAGMA user_version = 1;")
    legacy.execute("INSERT INTO secrets (id, name, value, description) VALUES ('s1', 'old', 'v', NULL)")
    legacy.commit()
    legacy.close()
    store = Store(path)
    migrated = store.secret("s1")
    assert migrated is not None
    assert migrated["createdAt"].endswith("Z")
    assert migrated["valueLastUpdatedAt"] is None  # unknown: written before values were dated
    assert store.registries() == []
    assert store.volumes() == []
    store.close()


# -- network volumes -----------------------------------------------------------------------------


def test_network_volume_lifecycle(api: Api) -> None:
    volume = _volume(api, "US-KS-2", name="train", size=20)
    # The tier defaults to the data center's primary (first) one.
    assert volume == {
        "id": volume["id"],
        "name": "train",
        "size": 20,
        "dataCenter": "US-KS-2",
        "type": "STANDARD",
    }
    path = f"/v2/network-volumes/{volume['id']}"
    assert api.rest("GET", path).json() == volume
    assert volume in api.rest("GET", "/v2/network-volumes").json()["networkVolumes"]
    grown = api.rest("PATCH", path, {"size": 30, "name": "train-2"}).json()
    assert grown == {**volume, "size": 30, "name": "train-2"}
    shrunk = api.rest("PATCH", path, {"size": 25})
    assert shrunk.status_code == 400
    assert shrunk.json()["detail"] == (
        f"size: network volume storage cannot be reduced ({volume['id']} is 30 GB, asked 25)"
    )
    assert api.rest("PATCH", path, {}).status_code == 422
    assert api.rest("PATCH", path, {"dataCenter": "EU-RO-1"}).status_code == 422  # immutable
    assert api.rest("GET", path).json()["size"] == 30
    assert api.rest("DELETE", path).status_code == 204
    assert api.rest("GET", path).status_code == 404
    assert api.rest("PATCH", path, {"size": 40}).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"dataCenter": "XX-NOWHERE-1"}, 400, "dataCenter: unknown data center XX-NOWHERE-1 (known: US-KS-2"),
        (
            {"dataCenter": "US-CA-2", "type": "HIGH_PERFORMANCE"},
            400,
            "dataCenter: US-CA-2 offers no HIGH_PERFORMANCE network volumes (offers: STANDARD)",
        ),
        ({"size": 9}, 422, "$.size: 9 is less than the minimum of 10"),
        ({"size": 4097}, 422, "$.size: 4097 is greater than the maximum of 4096"),
        ({"type": "FAST"}, 422, "$.type"),
        ({"bogus": True}, 422, "'bogus' was unexpected"),
    ],
)
def test_bad_network_volume_bodies(api: Api, body: dict[str, Any], status: int, fragment: str) -> None:
    response = api.rest(
        "POST", "/v2/network-volumes", {"name": "bad", "size": 10, "dataCenter": "EU-RO-1", **body}
    )
    assert response.status_code == status, response.text
    problem = response.json()
    assert fragment in " ".join([problem["detail"], *problem.get("errors", [])])


def test_an_endpoint_names_only_existing_volumes_and_an_attached_one_is_not_deleted(api: Api) -> None:
    unknown = api.rest("POST", "/v2/serverless", _endpoint_body(networkVolumes=["novol123"]))
    assert unknown.status_code == 400
    assert unknown.json()["detail"] == "networkVolumes[0]: network volume novol123 does not exist"
    volume = _volume(api)
    endpoint = api.create_endpoint(name="with-volume", networkVolumes=[volume["id"]], **ENDPOINT)
    path = f"/v2/serverless/{endpoint['id']}"
    patched = api.rest("PATCH", path, {"networkVolumes": [volume["id"], "gone456"]})
    assert patched.status_code == 400
    assert patched.json()["detail"] == "networkVolumes[1]: network volume gone456 does not exist"
    refused = api.rest("DELETE", f"/v2/network-volumes/{volume['id']}")
    assert refused.status_code == 400
    assert refused.json()["detail"] == (
        f"network volume {volume['id']} is attached to endpoint {endpoint['id']} and cannot be deleted"
    )
    assert api.rest("PATCH", path, {"networkVolumes": []}).status_code == 200
    assert api.rest("DELETE", f"/v2/network-volumes/{volume['id']}").status_code == 204
    api.rest("DELETE", path)


def test_a_volume_outside_the_endpoints_data_centers_leaves_it_without_workers(api: Api) -> None:
    volume = _volume(api, "EU-RO-1")
    pinned = api.create_endpoint(
        name="pinned-elsewhere", networkVolumes=[volume["id"]], dataCenterIds=["US-KS-2"], **ENDPOINT
    )
    reason = (
        "no worker can be placed: dataCenterIds [US-KS-2] exclude the data center of every attached "
        f"network volume ({volume['id']} in EU-RO-1); a network volume pins workers to its data center"
    )
    workers = _wait_for_placement_error(api, pinned["id"])
    assert workers["placementError"] == reason
    assert workers["workers"] == []
    health = api.job("GET", f"/{pinned['id']}/health").json()
    assert health["placementError"] == reason
    assert health["workers"]["initializing"] == 0
    # Allowing the volume's data center lifts it.
    api.rest("PATCH", f"/v2/serverless/{pinned['id']}", {"dataCenterIds": ["US-KS-2", "EU-RO-1"]})
    _wait_until(
        lambda: "placementError" not in api.rest("GET", f"/v2/serverless/{pinned['id']}/workers").json()
    )
    api.rest("DELETE", f"/v2/serverless/{pinned['id']}")
    api.rest("DELETE", f"/v2/network-volumes/{volume['id']}")


# -- registries ----------------------------------------------------------------------------------


def test_registry_lifecycle_credentials_are_write_only(api: Api, emulator: EmulatorProcess) -> None:
    created = api.rest(
        "POST", "/v2/registries", {"name": "private", "username": "bob", "password": "pw-canary-93"}
    )
    assert created.status_code == 201
    registry = created.json()
    assert set(registry) == {"id", "name"}
    path = f"/v2/registries/{registry['id']}"
    assert api.rest("GET", path).json() == registry
    assert registry in api.rest("GET", "/v2/registries").json()["registries"]
    assert "pw-canary-93" not in api.rest("GET", "/v2/registries").text
    assert "pw-canary-93" not in emulator.log()
    # The spec has no PATCH for registries (outside the spec, so not through the contract check).
    assert (
        api.client.patch(
            api.base + path, json={"name": "x"}, headers={"Authorization": f"Bearer {api.key}"}
        ).status_code
        == 405
    )
    assert api.rest("DELETE", path).status_code == 204
    assert api.rest("GET", path).status_code == 404
    assert api.rest("DELETE", path).status_code == 404


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"name": "r", "username": "u"}, "'password' is a required property"),
        ({"name": "", "username": "u", "password": "p"}, "$.name: '' should be non-empty"),
        ({"name": "r", "username": "u", "password": "p", "server": "x"}, "'server' was unexpected"),
    ],
)
def test_bad_registry_bodies_give_422(api: Api, body: dict[str, Any], fragment: str) -> None:
    response = api.rest("POST", "/v2/registries", body)
    assert response.status_code == 422
    assert fragment in " ".join(response.json()["errors"])


def test_an_endpoint_names_only_an_existing_registry_and_loses_a_deleted_one(api: Api) -> None:
    unknown = api.rest("POST", "/v2/serverless", _endpoint_body(registry="noreg999"))
    assert unknown.status_code == 400
    assert unknown.json()["detail"] == "registry: registry credential noreg999 does not exist"
    registry = api.rest("POST", "/v2/registries", {"name": "gone", "username": "u", "password": "p"}).json()
    endpoint = api.create_endpoint(name="with-registry", registry=registry["id"], **ENDPOINT)
    assert endpoint["registry"] == registry["id"]
    path = f"/v2/serverless/{endpoint['id']}"
    assert api.rest("PATCH", path, {"registry": "noreg999"}).status_code == 400
    # spec deleteRegistry: templates (an endpoint's container settings) silently lose the reference.
    assert api.rest("DELETE", f"/v2/registries/{registry['id']}").status_code == 204
    assert api.rest("GET", path).json()["registry"] is None
    api.rest("DELETE", path)


# -- CPU catalog ---------------------------------------------------------------------------------


def test_cpu_catalog_serves_the_data_file_with_prices(api: Api) -> None:
    cpus = api.rest("GET", "/v2/catalog/cpus").json()["cpus"]
    assert [cpu["id"] for cpu in cpus] == list(catalog().cpu_flavors)
    cpu3c = next(cpu for cpu in cpus if cpu["id"] == "cpu3c")
    # The spec's listCpuTypes example prices cpu3c; catalog.json records the rest as indicative.
    assert cpu3c["price"] == {"securePerVcpu": 0.04, "serverlessPerVcpu": 0.03}
    assert cpu3c["ramGbPerVcpu"] == catalog().cpu_flavors["cpu3c"].memory_gb_per_vcpu
    assert all("availability" not in cpu for cpu in cpus)
    one = api.rest("GET", "/v2/catalog/cpus/cpu5g?include=AVAILABILITY&product=SERVERLESS&vcpuCount=8").json()
    assert one["id"] == "cpu5g"
    assert one["availability"] == "HIGH"
    assert {dc["id"] for dc in one["dataCenters"]} == set(catalog().data_center_ids())
    assert api.rest("GET", "/v2/catalog/cpus/cpu9x").status_code == 404


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("include=AVAILABILITY", "only valid together"),
        ("product=SERVERLESS", "only valid together"),
        ("include=AVAILABILITY&product=CLUSTER", "query parameter product"),
        ("vcpuCount=4", "vcpuCount is only valid with include=AVAILABILITY"),
        ("include=AVAILABILITY&product=POD&vcpuCount=6", "vcpuCount must be a power of two, got 6"),
        ("include=AVAILABILITY&product=POD&vcpuCount=1", "query parameter vcpuCount"),
    ],
)
def test_cpu_catalog_query_rules(api: Api, query: str, fragment: str) -> None:
    response = api.rest("GET", f"/v2/catalog/cpus?{query}")
    assert response.status_code == 400
    assert fragment in response.json()["detail"]


# -- helpers -------------------------------------------------------------------------------------


def _endpoint_body(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "refs",
        "type": "QUEUE",
        "image": "127.0.0.1:5000/rpdeploy-test/none:0",
        "gpu": {"pools": ["ADA_24"]},
        "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4},
        **ENDPOINT,
        **overrides,
    }


def _wait_until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``check`` (the reconcile loop runs every 0.5 s); fails after a generous bound."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.1)


def _wait_for_placement_error(api: Api, endpoint_id: str) -> dict[str, Any]:
    path = f"/v2/serverless/{endpoint_id}/workers"
    _wait_until(lambda: "placementError" in api.rest("GET", path).json())
    doc: dict[str, Any] = api.rest("GET", path).json()
    return doc
