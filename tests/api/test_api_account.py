"""Secrets, registry credentials, network volumes and the CPU catalog through `RunPodApi`,
against the real emulator over HTTP; every answer is checked against the vendored spec."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from deploy.api import ApiError, Conflict, NotFound, RunPodApi
from tests.api.conftest import ContractLog
from tests.emulator.helpers import EmulatorProcess, endpoint_body


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def volume_body(name: str) -> dict[str, Any]:
    return {"name": name, "size": 10, "dataCenter": "US-KS-2"}


def test_secret_lifecycle(runpod_api: RunPodApi, contract: ContractLog, emulator: EmulatorProcess) -> None:
    name, value, rotated = unique("API_SECRET"), "canary-" + uuid.uuid4().hex, "canary-" + uuid.uuid4().hex
    created = runpod_api.create_secret(name, value, description="first")
    assert created["name"] == name
    assert created["description"] == "first"
    # RunPod compares secret names ignoring case; the ?name= filter does too.
    assert runpod_api.find_secret(name.lower()) == created
    assert created in runpod_api.list_secrets()

    updated = runpod_api.update_secret(created["id"], value=rotated, description="second")
    assert updated["description"] == "second"
    assert runpod_api.update_secret(created["id"], description="third")["description"] == "third"

    runpod_api.delete_secret(created["id"])
    assert runpod_api.find_secret(name) is None
    with pytest.raises(NotFound, match=rf"^RunPod API 404 on DELETE /v2/account/secrets/{created['id']}: "):
        runpod_api.delete_secret(created["id"])
    assert value not in emulator.log()
    assert rotated not in emulator.log()
    assert {(m, p) for m, p, _ in contract.checked} == {
        ("POST", "/v2/account/secrets"),
        ("GET", "/v2/account/secrets"),
        ("PATCH", "/v2/account/secrets/{id}"),
        ("DELETE", "/v2/account/secrets/{id}"),
    }


def test_a_secret_name_taken_ignoring_case_is_a_conflict(runpod_api: RunPodApi) -> None:
    name = unique("API_TWIN")
    created = runpod_api.create_secret(name, "value-one")
    try:
        with pytest.raises(Conflict) as caught:
            runpod_api.create_secret(name.lower(), "value-two")
        assert str(caught.value).startswith("RunPod API 409 on POST /v2/account/secrets: ")
        assert "value-two" not in str(caught.value)
        assert caught.value.status == 409
    finally:
        runpod_api.delete_secret(created["id"])


def test_registry_credential_lifecycle(runpod_api: RunPodApi, contract: ContractLog) -> None:
    name, password = unique("registry"), "pw-" + uuid.uuid4().hex
    created = runpod_api.create_registry(name, "bob", password)
    assert set(created) == {"id", "name"}
    assert runpod_api.find_registry(name) == created
    assert created in runpod_api.list_registries()
    assert runpod_api.find_registry(name.upper()) is None
    runpod_api.delete_registry(created["id"])
    assert runpod_api.find_registry(name) is None
    with pytest.raises(NotFound):
        runpod_api.delete_registry(created["id"])
    assert {p for _, p, _ in contract.checked} == {"/v2/registries", "/v2/registries/{id}"}


def test_network_volume_lifecycle(runpod_api: RunPodApi, contract: ContractLog) -> None:
    name = unique("volume")
    created = runpod_api.create_network_volume(volume_body(name))
    assert {key: created[key] for key in ("name", "size", "dataCenter")} == {
        "name": name,
        "size": 10,
        "dataCenter": "US-KS-2",
    }
    assert runpod_api.find_network_volume(name) == created
    assert created in runpod_api.list_network_volumes()
    runpod_api.delete_network_volume(created["id"])
    assert runpod_api.find_network_volume(name) is None
    assert {p for _, p, _ in contract.checked} == {"/v2/network-volumes", "/v2/network-volumes/{id}"}


def test_two_volumes_sharing_a_name_are_refused_not_guessed(runpod_api: RunPodApi) -> None:
    name = unique("volume-twin")
    volumes = [runpod_api.create_network_volume(volume_body(name))]
    volumes.append(runpod_api.create_network_volume(volume_body(name)))
    try:
        with pytest.raises(ApiError, match=rf"^2 network volumes are named '{name}'"):
            runpod_api.find_network_volume(name)
    finally:
        for volume in volumes:
            runpod_api.delete_network_volume(volume["id"])


def test_a_volume_attached_to_an_endpoint_is_found_by_id(runpod_api: RunPodApi) -> None:
    volume = runpod_api.create_network_volume(volume_body(unique("attached")))
    endpoint = runpod_api.create_endpoint(
        endpoint_body(unique("with-volume"), networkVolumes=[volume["id"]], dataCenterIds=["US-KS-2"])
    )
    try:
        assert runpod_api.get_endpoint(endpoint["id"])["networkVolumes"] == [volume["id"]]
    finally:
        runpod_api.delete_endpoint(endpoint["id"])
        runpod_api.delete_network_volume(volume["id"])


def test_cpu_catalog(runpod_api: RunPodApi, contract: ContractLog) -> None:
    cpus = runpod_api.cpu_types()
    assert cpus
    assert all("serverlessPerVcpu" in cpu["price"] for cpu in cpus)
    assert contract.checked == [("GET", "/v2/catalog/cpus", 200)]


def test_serverless_gpu_catalog_asks_for_availability(runpod_api: RunPodApi, contract: ContractLog) -> None:
    plain = runpod_api.gpu_types()
    serverless = runpod_api.gpu_types(serverless=True)
    assert {gpu["id"] for gpu in serverless} <= {gpu["id"] for gpu in plain}
    assert any(gpu.get("dataCenters") for gpu in serverless)
    assert [status for _, _, status in contract.checked] == [200, 200]
