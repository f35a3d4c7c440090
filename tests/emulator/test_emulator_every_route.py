"""Undeliverable JSON on every route the emulator serves, the list taken from the app itself.

test_emulator_bad_input.py sends the samples to hand-written lists of routes; a route added
later would not be in them. Here the routes come from the app's own OpenAPI document, each
must be classified in `EXPECTED` (a new route fails `test_every_route_is_classified` until it
is), and each sample goes to each route of a running emulator: never a 5xx, the answer its
class promises, and no job stored or lost.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from deploy.emulator import build_app
from deploy.emulator.settings import EmulatorSettings
from tests.emulator.helpers import API_KEY, Api
from tests.emulator.test_emulator_bad_input import SAMPLES

#: A JSON body is read and checked: a 400 naming the JSON fault.
CHECKED = "checked"
#: The route takes no body (RunPod's REST v2 GET/DELETE): it is ignored and the call succeeds.
IGNORED = "ignored"
#: The worker protocol: without the worker's own key, a 401 before any body is read (the
#: bodies a live SDK worker sends are checked in test_emulator_sdk.py).
WORKER = "worker"

EXPECTED = {
    ("GET", "/_emulator/health"): IGNORED,
    ("GET", "/v2/catalog/datacenters"): IGNORED,
    ("GET", "/v2/catalog/gpus"): IGNORED,
    ("GET", "/v2/catalog/cpus"): IGNORED,
    ("GET", "/v2/catalog/cpus/{cpu_id}"): IGNORED,
    ("GET", "/v2/account/secrets"): IGNORED,
    ("POST", "/v2/account/secrets"): CHECKED,
    ("GET", "/v2/account/secrets/{secret_id}"): IGNORED,
    ("PATCH", "/v2/account/secrets/{secret_id}"): CHECKED,
    ("DELETE", "/v2/account/secrets/{secret_id}"): IGNORED,
    ("GET", "/v2/network-volumes"): IGNORED,
    ("POST", "/v2/network-volumes"): CHECKED,
    ("GET", "/v2/network-volumes/{volume_id}"): IGNORED,
    ("PATCH", "/v2/network-volumes/{volume_id}"): CHECKED,
    ("DELETE", "/v2/network-volumes/{volume_id}"): IGNORED,
    ("GET", "/v2/registries"): IGNORED,
    ("POST", "/v2/registries"): CHECKED,
    ("GET", "/v2/registries/{registry_id}"): IGNORED,
    ("DELETE", "/v2/registries/{registry_id}"): IGNORED,
    ("GET", "/v2/serverless"): IGNORED,
    ("POST", "/v2/serverless"): CHECKED,
    ("GET", "/v2/serverless/{endpoint_id}"): IGNORED,
    ("PATCH", "/v2/serverless/{endpoint_id}"): CHECKED,
    ("DELETE", "/v2/serverless/{endpoint_id}"): IGNORED,
    ("GET", "/v2/serverless/{endpoint_id}/releases"): IGNORED,
    ("GET", "/v2/serverless/{endpoint_id}/workers"): IGNORED,
    ("GET", "/v2/templates"): IGNORED,
    ("POST", "/v2/templates"): CHECKED,
    ("GET", "/v2/templates/{template_id}"): IGNORED,
    ("PATCH", "/v2/templates/{template_id}"): CHECKED,
    ("DELETE", "/v2/templates/{template_id}"): IGNORED,
    ("POST", "/graphql"): CHECKED,
    ("POST", "/v2/{endpoint_id}/run"): CHECKED,
    ("POST", "/v2/{endpoint_id}/runsync"): CHECKED,
    ("GET", "/v2/{endpoint_id}/status/{job_id}"): CHECKED,
    ("POST", "/v2/{endpoint_id}/status/{job_id}"): CHECKED,
    ("GET", "/v2/{endpoint_id}/stream/{job_id}"): CHECKED,
    ("POST", "/v2/{endpoint_id}/stream/{job_id}"): CHECKED,
    ("POST", "/v2/{endpoint_id}/cancel/{job_id}"): CHECKED,
    ("POST", "/v2/{endpoint_id}/retry/{job_id}"): CHECKED,
    ("POST", "/v2/{endpoint_id}/purge-queue"): CHECKED,
    ("GET", "/v2/{endpoint_id}/health"): IGNORED,
    ("GET", "/v2/{endpoint_id}/job-take/{worker_id}"): WORKER,
    ("GET", "/v2/{endpoint_id}/job-take-batch/{worker_id}"): WORKER,
    ("GET", "/v2/{endpoint_id}/job-stop/{worker_id}"): WORKER,
    ("POST", "/v2/{endpoint_id}/job-done/{worker_id}/{job_id}"): WORKER,
    ("POST", "/v2/{endpoint_id}/job-stream/{worker_id}/{job_id}"): WORKER,
    ("GET", "/v2/{endpoint_id}/ping/{worker_id}"): WORKER,
}


def served_routes(state: Path) -> set[tuple[str, str]]:
    """Every (method, path) the real app serves, from its OpenAPI document (no server started)."""
    app, parts = build_app(EmulatorSettings(state_dir=state, api_key=API_KEY))
    try:
        return {(method.upper(), path) for path, ops in app.openapi()["paths"].items() for method in ops}
    finally:
        parts.store.close()


def test_every_route_is_classified(tmp_path: Path) -> None:
    assert served_routes(tmp_path) == set(EXPECTED)


def _fill(path: str, ids: dict[str, str]) -> str:
    for name, value in ids.items():
        path = path.replace("{" + name + "}", value)
    return path


@pytest.mark.parametrize("sample", SAMPLES.values(), ids=SAMPLES.keys())
def test_every_route_answers_undeliverable_json_by_its_class(api: Api, sample: bytes) -> None:
    endpoint_id = str(api.create_endpoint(name="every-route")["id"])
    job_id = api.submit(endpoint_id, {"kept": True})
    template = api.rest("POST", "/v2/templates", {"name": f"every-route-{endpoint_id}", "image": "img:1"})
    assert template.status_code in (200, 201), template.text
    secret = api.rest("POST", "/v2/account/secrets", {"name": f"every_route_{endpoint_id}", "value": "v"})
    volume = api.rest(
        "POST", "/v2/network-volumes", {"name": "every-route", "size": 10, "dataCenter": "EU-RO-1"}
    )
    registry = api.rest("POST", "/v2/registries", {"name": "every-route", "username": "u", "password": "p"})
    ids = {
        "endpoint_id": endpoint_id,
        "job_id": job_id,
        "template_id": str(template.json()["id"]),
        "worker_id": "no-such-worker",
        "cpu_id": "cpu5c",
        "secret_id": str(secret.json()["id"]),
        "volume_id": str(volume.json()["id"]),
        "registry_id": str(registry.json()["id"]),
    }
    before = api.job("GET", f"/{endpoint_id}/health").json()["jobs"]
    wrong = []
    # DELETE last: the other routes need the endpoint and template to exist.
    for method, path in sorted(EXPECTED, key=lambda route: route[0] == "DELETE"):
        response = httpx.request(
            method,
            api.base + _fill(path, ids),
            content=sample.replace(b'"input"', b'"name"') if "serverless" in path else sample,
            headers={"Authorization": f"Bearer {api.key}", "Content-Type": "application/json"},
            timeout=30,
        )
        expected = EXPECTED[(method, path)]
        if expected == CHECKED:
            ok = response.status_code == 400 and "not valid JSON" in response.text
        elif expected == WORKER:
            ok = response.status_code == 401
        else:
            ok = response.status_code in (200, 204)
        if not ok:
            wrong.append(f"{method} {path}: {response.status_code} {response.text[:120]}")
        if method == "DELETE" and path.startswith("/v2/serverless"):
            continue
        if "{endpoint_id}" in path and not path.startswith("/v2/serverless"):
            assert api.job("GET", f"/{endpoint_id}/health").json()["jobs"] == before, (method, path)
    assert wrong == []
