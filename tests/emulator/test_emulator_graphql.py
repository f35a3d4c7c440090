"""GraphQL `secretCreate` / `secretDelete`: real GraphQL parsing, values stored but never shown."""

from __future__ import annotations

from typing import Any

import httpx

from tests.emulator.helpers import Api, EmulatorProcess

CREATE = 'mutation { secretCreate(input: {name: "%s", value: "%s"}) { id name description } }'


def gql(api: Api, query: str, variables: dict[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
    headers = kwargs.pop("headers", {"Authorization": f"Bearer {api.key}"})
    body: dict[str, Any] = {"query": query}
    if variables is not None:
        body["variables"] = variables
    return httpx.post(f"{api.base}/graphql", json=body, headers=headers, timeout=10, **kwargs)


def test_secret_create_and_delete(api: Api, emulator: EmulatorProcess) -> None:
    value = "s3cr3t-value-never-shown"
    created = gql(api, CREATE % ("gql_one", value))
    assert created.status_code == 200
    secret = created.json()["data"]["secretCreate"]
    assert secret["name"] == "gql_one"
    assert secret["description"] is None
    assert value not in created.text

    duplicate = gql(api, CREATE % ("gql_one", "other")).json()
    assert duplicate["data"] == {"secretCreate": None}
    assert "already exists" in duplicate["errors"][0]["message"]
    assert duplicate["errors"][0]["path"] == ["secretCreate"]

    deleted = gql(api, "mutation Del($id: String!) { secretDelete(id: $id) }", {"id": secret["id"]})
    assert deleted.json() == {"data": {"secretDelete": None}}
    gone = gql(api, 'mutation {{ secretDelete(id: "{}") }}'.format(secret["id"])).json()
    assert "not found" in gone["errors"][0]["message"]
    assert value not in emulator.log()


def test_variables_query_param_key_and_errors(api: Api) -> None:
    query = "mutation Make($input: SecretCreateInput!) { secretCreate(input: $input) { name } }"
    made = gql(
        api,
        query,
        {"input": {"name": "gql_two", "value": "v", "description": "d"}},
        headers={},
        params={"api_key": api.key},
    )
    assert made.json() == {"data": {"secretCreate": {"name": "gql_two"}}}
    assert gql(api, CREATE % ("x", "y"), headers={}).status_code == 401
    assert gql(api, CREATE % ("x", "y"), headers={"Authorization": "Bearer wrong"}).status_code == 401
    syntax = gql(api, "mutation { secretCreate(")
    assert syntax.status_code == 400
    assert syntax.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    unknown = gql(api, "mutation { saveTemplate(input: {}) { id } }")
    assert unknown.status_code == 400
    assert "saveTemplate" in unknown.json()["errors"][0]["message"]
    introspection = gql(api, "{ __schema { types { name } } }")
    assert introspection.status_code == 400
    assert "introspection" in introspection.json()["errors"][0]["message"]
    bad_name = gql(api, CREATE % ("has space", "v")).json()
    assert "is not a valid RunPod secret name" in bad_name["errors"][0]["message"]
    # One name rule everywhere (deploy.runpod.secrets): `.` and `/` are allowed, RUNPOD… is not.
    assert "errors" not in gql(api, CREATE % ("hf.token/v1", "v")).json()
    reserved = gql(api, CREATE % ("runpod_key", "v")).json()
    assert "must not start with RUNPOD" in reserved["errors"][0]["message"]
    not_json = httpx.post(f"{api.base}/graphql", content=b"{", headers={"Authorization": f"Bearer {api.key}"})
    assert not_json.status_code == 400
