"""Control plane: the RunPod REST v2 subset for serverless endpoints and templates.

Request bodies are validated by `deploy.runpod.endpoint` against the vendored official
schemas and range rules (422 with RFC 9457 problem details) and the endpoint rules (400),
the same code config validation and render use; defaults and release diffs are
`deploy.runpod`'s too. A change to the image, env
or another setting that needs new containers creates a release (version + 1,
`diff` of `{field, old, new}`); the worker plane rolls it out. As on RunPod (§2.6: the
spec's example release holds a `workers.max` diff), that diff names every field the PATCH
changed, autoscaler ones included; a PATCH of autoscaler fields alone makes no release.
"""

from __future__ import annotations

import copy
import secrets
import string
from datetime import UTC, datetime
from typing import Any, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from deploy.emulator import catalog as catalog_routes
from deploy.emulator.httputil import MB, HttpError, found, json_body
from deploy.emulator.store import Store
from deploy.runpod import endpoint as rules
from deploy.runpod import schemas
from deploy.runpod.catalog import catalog
from deploy.runpod.defaults import (
    CONTAINER_FIELDS,
    ENDPOINT_DEFAULTS,
    TEMPLATE_DEFAULTS,
    WORKERS_DEFAULTS,
    idle_timeout_applies,
)
from deploy.runpod.release import diff, rolls_workers

BODY_LIMIT = 10 * MB
_ID_ALPHABET = string.ascii_lowercase + string.digits


class WorkerPlaneView(Protocol):
    def endpoint_changed(self, endpoint_id: str) -> None: ...

    def endpoint_deleted(self, endpoint_id: str) -> None: ...

    def worker_versions(self, endpoint_id: str) -> list[int]: ...

    def workers_doc(self, endpoint_id: str, version: int) -> dict[str, Any]: ...


def _cpu_memory(item: dict[str, Any]) -> int:
    # An unknown flavor gets 0 here and is refused by the rules before anything is stored.
    if item["id"] not in catalog().cpu_flavors:
        return 0
    return catalog().cpu_memory_gb(item["id"], item["vcpuCount"])


def _idle_timeout_in(body: dict[str, Any]) -> bool:
    workers = body.get("workers")
    return isinstance(workers, dict) and "idleTimeout" in workers


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id(length: int = 10) -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def validate_body(schema_name: str, body: Any) -> dict[str, Any]:
    """``body`` if it meets the request schema and the range rules; else 422 with every problem."""
    problems = rules.request_problems(schema_name, body)
    if problems:
        raise HttpError(422, "Request validation failed.", [problem.json_line() for problem in problems])
    assert isinstance(body, dict)  # the schemas all require an object
    return body


def validate_schema(schema_name: str, body: Any) -> dict[str, Any]:
    """``body`` if it meets the vendored request schema alone; else 422 with every problem.

    For the account resources (secrets, registries, volumes): the endpoint text rules of
    `validate_body` (no control characters, POSIX env names) are not theirs; a secret value
    may well hold newlines.
    """
    problems = schemas.problems(schema_name, body)
    if problems:
        raise HttpError(422, "Request validation failed.", problems)
    assert isinstance(body, dict)  # the schemas all require an object
    return body


def raise_rule_problems(problems: list[rules.Problem]) -> None:
    """400 naming every broken endpoint rule (the first one is the `detail`)."""
    if problems:
        lines = [problem.line() for problem in problems]
        raise HttpError(400, lines[0], lines)


class ControlPlane:
    """The REST v2 control plane: owns endpoint and template documents and their releases.

    Request bodies are checked with `deploy.runpod` (schemas, ranges, endpoint rules);
    defaults are filled in before storing, and a change to a field that rolls workers
    (`deploy.runpod.release.RELEASE_FIELDS`) stores a new release that the worker plane
    rolls out. An endpoint may name only existing network volumes and registry credentials
    (volumes.py, registries.py). Secrets are account_secrets.py's; jobs and workers are other
    services'.
    """

    def __init__(self, store: Store, base_url: str) -> None:
        self.store = store
        self.base_url = base_url
        self.workers: WorkerPlaneView | None = None

    # -- endpoints ---------------------------------------------------------------------------

    def request_urls(self, endpoint_id: str, kind: str) -> dict[str, str]:
        root = f"{self.base_url}/v2/{endpoint_id}"
        if kind == "LOAD_BALANCER":
            return {
                "base": f"{self.base_url}/lb/{endpoint_id}",
                "health": f"{self.base_url}/lb/{endpoint_id}/ping",
            }
        return {
            "run": f"{root}/run",
            "runSync": f"{root}/runsync",
            "status": f"{root}/status/{{job_id}}",
            "stream": f"{root}/stream/{{job_id}}",
            "cancel": f"{root}/cancel/{{job_id}}",
            "retry": f"{root}/retry/{{job_id}}",
            "purgeQueue": f"{root}/purge-queue",
            "health": f"{root}/health",
        }

    def endpoint(self, endpoint_id: str) -> tuple[dict[str, Any], int]:
        return found(self.store.endpoint(endpoint_id), f"endpoint {endpoint_id}")

    def find_endpoint(self, endpoint_id: str) -> dict[str, Any] | None:
        stored = self.store.endpoint(endpoint_id)
        return None if stored is None else stored[0]

    def list_endpoints(self) -> dict[str, Any]:
        return {"endpoints": [doc for doc, _ in self.store.endpoints()]}

    def create_endpoint(self, body: Any) -> dict[str, Any]:
        body = copy.deepcopy(validate_body("CreateEndpointRequest", body))
        template_id = body.pop("templateId", None)
        if template_id is not None:
            body = self._apply_template(template_id, body, on_create=True)
        raise_rule_problems(rules.state_problems(body, idle_timeout_given=_idle_timeout_in(body)))
        raise_rule_problems(self._reference_problems(body))
        endpoint_id = new_id()
        while self.store.endpoint(endpoint_id) is not None:  # pragma: no cover - 36^10 ids
            endpoint_id = new_id()
        doc: dict[str, Any] = {"id": endpoint_id, "name": body["name"], "type": body["type"]}
        doc["requestUrls"] = self.request_urls(endpoint_id, body["type"])
        for name in CONTAINER_FIELDS:
            doc[name] = body.get(name, ENDPOINT_DEFAULTS.get(name))
        if "gpu" in body:
            doc["gpu"] = self._gpu({}, body["gpu"])
        else:
            doc["cpu"] = self._cpu(body["cpu"])
        doc["workers"] = {**WORKERS_DEFAULTS, **body.get("workers", {})}
        doc["scaling"] = body["scaling"]
        for name in ("dataCenterIds", "networkVolumes", "timeout", "flashboot"):
            doc[name] = body.get(name, ENDPOINT_DEFAULTS[name])
        doc["createdAt"] = now_iso()
        self.store.put_endpoint(doc, 1, template_id)
        self._release(doc, 1, diff({}, doc))
        if self.workers is not None:
            self.workers.endpoint_changed(endpoint_id)
        return self.public(doc)

    def update_endpoint(self, endpoint_id: str, body: Any) -> dict[str, Any]:
        current, version = self.endpoint(endpoint_id)
        body = copy.deepcopy(validate_body("UpdateEndpointRequest", body))
        template_id = body.pop("templateId", None)
        if template_id is not None:
            body = self._apply_template(template_id, body, on_create=False)
        raise_rule_problems(rules.update_problems(current, body))
        doc = self._patched(current, body)
        raise_rule_problems(rules.state_problems(doc, idle_timeout_given=_idle_timeout_in(body)))
        raise_rule_problems(self._reference_problems(doc))
        if not idle_timeout_applies(doc["type"], doc["scaling"]["type"]):
            doc["workers"].pop("idleTimeout", None)
        elif "idleTimeout" not in doc["workers"]:
            doc["workers"]["idleTimeout"] = WORKERS_DEFAULTS["idleTimeout"]
        changes = diff(current, doc)
        if rolls_workers(changes):
            version += 1
            self._release(doc, version, changes)
        self.store.put_endpoint(doc, version, self.store.endpoint_template(endpoint_id))
        if self.workers is not None:
            self.workers.endpoint_changed(endpoint_id)
        return self.public(doc)

    def _reference_problems(self, doc: dict[str, Any]) -> list[rules.Problem]:
        """Ids the endpoint names that name nothing: network volumes, the registry credential (400)."""
        found = [
            rules.Problem(("networkVolumes", index), f"network volume {volume} does not exist")
            for index, volume in enumerate(doc.get("networkVolumes") or [])
            if self.store.volume(volume) is None
        ]
        registry = doc.get("registry")
        if registry is not None and self.store.registry(registry) is None:
            found.append(rules.Problem(("registry",), f"registry credential {registry} does not exist"))
        return found

    def _patched(self, current: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        """PATCH semantics: only the fields present change (`workers` merges per key)."""
        doc = copy.deepcopy(current)
        for name, value in body.items():
            if name == "gpu":
                doc["gpu"] = self._gpu(doc["gpu"], value)
            elif name == "cpu":
                doc["cpu"] = self._cpu(value)
            elif name == "workers":
                doc["workers"] = {**doc["workers"], **value}
            else:
                doc[name] = value
        return doc

    def delete_endpoint(self, endpoint_id: str) -> None:
        self.endpoint(endpoint_id)
        template_id = self.store.endpoint_template(endpoint_id)
        self.store.delete_endpoint(endpoint_id)
        # RunPod: deleting an endpoint also deletes its bound template (unless another uses it).
        if template_id is not None and not self.store.endpoints_bound_to(template_id):
            self.store.delete_template(template_id)
        if self.workers is not None:
            self.workers.endpoint_deleted(endpoint_id)

    def public(self, doc: dict[str, Any]) -> dict[str, Any]:
        """The Endpoint object as the API returns it."""
        out = copy.deepcopy(doc)
        if not idle_timeout_applies(out["type"], out["scaling"]["type"]):
            out["workers"].pop("idleTimeout", None)
        return out

    def releases(self, endpoint_id: str) -> dict[str, Any]:
        _, version = self.endpoint(endpoint_id)
        versions = self.workers.worker_versions(endpoint_id) if self.workers is not None else []
        on_latest = sum(1 for v in versions if v == version)
        total = len(versions)
        releases = []
        for release in self.store.releases(endpoint_id):
            release.update(
                source="MANUAL",
                buildId=None,
                createdByUserId=None,
                workerCount=sum(1 for v in versions if v == release["version"]),
            )
            releases.append(dict(sorted(release.items())))
        return {
            "endpointVersion": version,
            "rollout": {
                "inProgress": on_latest < total,
                "workersOnLatest": on_latest,
                "workersTotal": total,
                "percentOnLatest": (on_latest * 100) // total if total else 0,
            },
            "releases": releases,
        }

    def workers_doc(self, endpoint_id: str) -> dict[str, Any]:
        _, version = self.endpoint(endpoint_id)
        if self.workers is None:
            summary = dict.fromkeys(("running", "idle", "initializing", "throttled", "unhealthy", "total"), 0)
            return {"endpointVersion": version, "summary": summary, "workers": []}
        return self.workers.workers_doc(endpoint_id, version)

    def _release(self, doc: dict[str, Any], version: int, changes: list[dict[str, Any]]) -> None:
        self.store.add_release(
            release_id=new_id(8),
            endpoint_id=doc["id"],
            version=version,
            created_at=now_iso(),
            diff=changes,
            snapshot=doc,
        )

    # -- normalisation (the rules are deploy.runpod.endpoint's) --------------------------------

    @staticmethod
    def _gpu(current: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        gpu = {
            "pools": current.get("pools", []),
            "excludedTypes": current.get("excludedTypes", []),
            "count": current.get("count", 1),
            "allowedCudaVersions": current.get("allowedCudaVersions", []),
            "minCudaVersion": current.get("minCudaVersion"),
        }
        if "pools" in request:
            # A new pool selection replaces the old one, exclusions included unless restated.
            gpu["pools"] = request["pools"]
            gpu["excludedTypes"] = [name.strip() for name in request.get("excludedTypes", [])]
        if "count" in request:
            gpu["count"] = request["count"]
        if "allowedCudaVersions" in request:
            gpu["allowedCudaVersions"] = request["allowedCudaVersions"]
        if "minCudaVersion" in request:
            gpu["minCudaVersion"] = request["minCudaVersion"] or None
        if not gpu["excludedTypes"]:
            gpu.pop("excludedTypes")
        return gpu

    @staticmethod
    def _cpu(request: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {"id": item["id"], "vcpuCount": item["vcpuCount"], "memory": _cpu_memory(item)}
            for item in request
        ]

    def _apply_template(self, template_id: str, body: dict[str, Any], *, on_create: bool) -> dict[str, Any]:
        template = found(self.store.template(template_id), f"template {template_id}")
        if not template["serverless"]:
            raise HttpError(422, f"template {template_id} is not a serverless template")
        merged = dict(body)
        for name in CONTAINER_FIELDS:
            if name == "env":
                merged["env"] = {**template["env"], **body.get("env", {})}
            elif name not in body:
                merged[name] = template[name]
        gpu = merged.get("gpu")
        if (
            on_create
            and isinstance(gpu, dict)
            and "allowedCudaVersions" not in gpu
            and "minCudaVersion" not in gpu
        ):
            gpu["allowedCudaVersions"] = list(template["allowedCudaVersions"])
        return merged

    # -- templates -----------------------------------------------------------------------------

    def template(self, template_id: str) -> dict[str, Any]:
        return found(self.store.template(template_id), f"template {template_id}")

    def list_templates(self) -> dict[str, Any]:
        return {"templates": self.store.templates()}

    def create_template(self, body: Any) -> dict[str, Any]:
        body = validate_body("CreateTemplateRequest", body)
        doc = {"id": new_id(), **TEMPLATE_DEFAULTS, **copy.deepcopy(body)}
        self.store.put_template(doc)
        return doc

    def update_template(self, template_id: str, body: Any) -> dict[str, Any]:
        doc = self.template(template_id)
        body = copy.deepcopy(validate_body("UpdateTemplateRequest", body))
        if body.get("mounts") == {}:
            body.pop("mounts")  # `{}` leaves the existing mount unchanged
        doc.update(body)
        self.store.put_template(doc)
        return doc

    def delete_template(self, template_id: str) -> None:
        self.template(template_id)
        users = self.store.endpoints_bound_to(template_id)
        if users:
            raise HttpError(
                400,
                "Template is in use by a pod or serverless endpoint and cannot be deleted",
                [f"bound to endpoint {endpoint}" for endpoint in users],
            )
        self.store.delete_template(template_id)


def router(control: ControlPlane) -> APIRouter:
    """REST v2 routes. Auth, rate-limit headers and problem+json errors are the app's job."""
    api = APIRouter()
    catalog_routes.add_routes(api)

    @api.get("/v2/serverless")
    async def list_endpoints() -> Response:
        return JSONResponse(control.list_endpoints())

    @api.post("/v2/serverless")
    async def create_endpoint(request: Request) -> Response:
        return JSONResponse(control.create_endpoint(await json_body(request, BODY_LIMIT)), status_code=201)

    @api.get("/v2/serverless/{endpoint_id}")
    async def get_endpoint(endpoint_id: str) -> Response:
        return JSONResponse(control.public(control.endpoint(endpoint_id)[0]))

    @api.patch("/v2/serverless/{endpoint_id}")
    async def update_endpoint(endpoint_id: str, request: Request) -> Response:
        control.endpoint(endpoint_id)  # 404 before looking at the body
        return JSONResponse(control.update_endpoint(endpoint_id, await json_body(request, BODY_LIMIT)))

    @api.delete("/v2/serverless/{endpoint_id}")
    async def delete_endpoint(endpoint_id: str) -> Response:
        control.delete_endpoint(endpoint_id)
        return Response(status_code=204)

    @api.get("/v2/serverless/{endpoint_id}/releases")
    async def list_releases(endpoint_id: str) -> Response:
        return JSONResponse(control.releases(endpoint_id))

    @api.get("/v2/serverless/{endpoint_id}/workers")
    async def list_workers(endpoint_id: str) -> Response:
        return JSONResponse(control.workers_doc(endpoint_id))

    @api.get("/v2/templates")
    async def list_templates() -> Response:
        return JSONResponse(control.list_templates())

    @api.post("/v2/templates")
    async def create_template(request: Request) -> Response:
        return JSONResponse(control.create_template(await json_body(request, BODY_LIMIT)), status_code=201)

    @api.get("/v2/templates/{template_id}")
    async def get_template(template_id: str) -> Response:
        return JSONResponse(control.template(template_id))

    @api.patch("/v2/templates/{template_id}")
    async def update_template(template_id: str, request: Request) -> Response:
        control.template(template_id)
        return JSONResponse(control.update_template(template_id, await json_body(request, BODY_LIMIT)))

    @api.delete("/v2/templates/{template_id}")
    async def delete_template(template_id: str) -> Response:
        control.delete_template(template_id)
        return Response(status_code=204)

    return api
