"""GraphQL `POST /graphql`: the legacy secret mutations (`secretCreate`, `secretDelete`).

REST v2 now has `/v2/account/secrets` (account_secrets.py); both go through the same
`SecretService`, so a secret made either way is one row with one name rule.

Parsed and executed by graphql-core against a small SDL, so selections, variables
and error shapes are real GraphQL. Introspection is refused, as in production
(runpod-mcp `src/server.ts`). Secret values are stored, never logged, never returned.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from graphql import GraphQLError, build_schema, graphql_sync, parse, validate
from graphql.validation import NoSchemaIntrospectionCustomRule, specified_rules

from deploy.emulator.account_secrets import SecretService
from deploy.emulator.httputil import MB, HttpError, parse_json, read_body

SDL = """
type Secret { id: String! name: String! description: String }
input SecretCreateInput { name: String!, value: String!, description: String }
type Query { myself: User }
type User { id: String! }
type Mutation {
  secretCreate(input: SecretCreateInput!): Secret
  secretDelete(id: String!): Boolean
}
"""
SCHEMA = build_schema(SDL)
RULES = (*specified_rules, NoSchemaIntrospectionCustomRule)


class Resolvers:
    def __init__(self, secrets: SecretService) -> None:
        self.secrets = secrets

    def secretCreate(self, _info: Any, input: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        try:
            return self.secrets.create(input["name"], input["value"], input.get("description"))
        except HttpError as exc:  # the REST answer's one line, as GraphQL's error message
            raise GraphQLError(exc.detail) from None

    def secretDelete(self, _info: Any, id: str) -> None:  # noqa: N802
        try:
            self.secrets.delete(id)
        except HttpError as exc:
            raise GraphQLError(exc.detail) from None

    def myself(self, _info: Any) -> dict[str, str]:
        return {"id": "emulator-user"}


def execute(secrets: SecretService, body: Any) -> tuple[int, dict[str, Any]]:
    """Run one GraphQL request; (HTTP status, response body)."""
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        raise HttpError(400, "GraphQL request must be a JSON object with a 'query' string")
    variables = body.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise HttpError(400, "GraphQL 'variables' must be an object")
    try:
        document = parse(body["query"])
    except GraphQLError as exc:
        return 400, {"errors": [_error(exc, "GRAPHQL_PARSE_FAILED")]}
    invalid = validate(SCHEMA, document, RULES)
    if invalid:
        return 400, {"errors": [_error(exc, "GRAPHQL_VALIDATION_FAILED") for exc in invalid]}
    result = graphql_sync(
        SCHEMA,
        body["query"],
        root_value=Resolvers(secrets),
        variable_values=variables,
        operation_name=body.get("operationName"),
    )
    out: dict[str, Any] = {}
    if result.errors:
        out["errors"] = [_error(exc, "INTERNAL_SERVER_ERROR") for exc in result.errors]
    out["data"] = result.data
    return 200, out


def _error(exc: GraphQLError, code: str) -> dict[str, Any]:
    error: dict[str, Any] = {"message": exc.message}
    if exc.path:
        error["path"] = list(exc.path)
    error["extensions"] = {"code": code}
    return error


def router(secrets: SecretService) -> APIRouter:
    api = APIRouter()

    @api.post("/graphql")
    async def graphql_endpoint(request: Request) -> Response:
        status, payload = execute(secrets, parse_json(await read_body(request, 1 * MB)))
        return JSONResponse(payload, status_code=status)

    return api
