"""The request side of the contract: which official schema checks each body the client sends."""

from __future__ import annotations

import pytest

from deploy.api.transport import request_problems
from deploy.runpod import schemas


@pytest.mark.parametrize(
    ("method", "path", "schema"),
    [
        ("POST", "/v2/serverless", "CreateEndpointRequest"),
        ("PATCH", "/v2/serverless/{id}", "UpdateEndpointRequest"),
        ("POST", "/v2/account/secrets", "CreateSecretRequest"),
        ("PATCH", "/v2/account/secrets/{id}", "UpdateSecretRequest"),
        ("POST", "/v2/registries", "CreateRegistryRequest"),
        ("POST", "/v2/network-volumes", "CreateNetworkVolumeRequest"),
        ("GET", "/v2/serverless", None),
        ("DELETE", "/v2/account/secrets/{id}", None),
    ],
)
def test_request_schema_names_the_body_schema_of_both_documents(
    method: str, path: str, schema: str | None
) -> None:
    assert schemas.request_schema(path, method) == schema


def test_request_schema_refuses_an_operation_the_spec_lacks() -> None:
    with pytest.raises(KeyError, match=r"PATCH /v2/registries/\{id\} is not in the vendored spec"):
        schemas.request_schema("/v2/registries/{id}", "PATCH")


def test_problems_name_the_field_not_the_unevaluated_echo() -> None:
    # JSON Schema also reports an invalid property as "unevaluated": only the real reason is shown.
    assert request_problems("/v2/serverless/{id}", "PATCH", {"workers": {"max": -1}}) == [
        "workers.max: -1 is less than the minimum of 0"
    ]
    assert request_problems("/v2/serverless/{id}", "PATCH", {"bogus": 1}) == [
        "$: Unevaluated properties are not allowed ('bogus' was unexpected)"
    ]
    assert request_problems("/v2/network-volumes", "POST", {"name": "v", "size": 5, "dataCenter": "X"}) == [
        "size: 5 is less than the minimum of 10"
    ]
    assert request_problems("/v2/serverless", "GET", {"x": 1}) == ["$: this operation takes no body"]
    assert request_problems("/v2/serverless", "GET", None) == []
