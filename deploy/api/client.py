"""A minimal REST v2 client with the interface of engineer B's (stand-in until api9 merges)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import requests

from deploy.api.errors import Conflict, NotFound
from deploy.errors import ApiError, UsageError


@dataclass
class CallCount:
    reads: int = 0
    writes: int = 0

    def to_json(self) -> dict[str, int]:
        return {"reads": self.reads, "writes": self.writes}


class RunPodApi:
    def __init__(
        self, base_url: str, api_key: str, *, timeout: float = 30.0, retries: int = 4, backoff: float = 0.5
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.calls = CallCount()
        self._timeout = timeout
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {api_key}"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> RunPodApi:
        key = environ.get("RUNPOD_API_KEY")
        if not key:
            raise UsageError("RUNPOD_API_KEY is not set")
        return cls(environ.get("RUNPOD_API_URL") or "https://api.runpod.io", key)

    def _call(self, method: str, path: str, body: Any = None, params: Any = None) -> Any:
        if method in ("GET", "HEAD"):
            self.calls.reads += 1
        else:
            self.calls.writes += 1
        try:
            response = self._session.request(
                method, self.base_url + path, json=body, params=params, timeout=self._timeout
            )
        except requests.RequestException as exc:
            raise ApiError(f"RunPod API at {self.base_url} unreachable: {exc}") from None
        if response.status_code >= 400:
            detail = response.text[:200]
            kind = {404: NotFound, 409: Conflict}.get(response.status_code, ApiError)
            message = f"RunPod API {response.status_code} on {method} {path}: {detail}"
            raise kind(message, status=response.status_code)
        return response.json() if response.content else None

    def list_endpoints(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/v2/serverless")["endpoints"])

    def find_endpoint(self, name: str) -> dict[str, Any] | None:
        found = [e for e in self.list_endpoints() if e["name"] == name]
        if len(found) > 1:
            raise ApiError(f"{len(found)} endpoints are named {name!r}")
        return found[0] if found else None

    def get_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/v2/serverless/{endpoint_id}"))

    def create_endpoint(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", "/v2/serverless", body))

    def update_endpoint(self, endpoint_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("PATCH", f"/v2/serverless/{endpoint_id}", body))

    def delete_endpoint(self, endpoint_id: str) -> None:
        self._call("DELETE", f"/v2/serverless/{endpoint_id}")

    def releases(self, endpoint_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/v2/serverless/{endpoint_id}/releases"))

    def workers(self, endpoint_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/v2/serverless/{endpoint_id}/workers"))

    def find_secret(self, name: str) -> dict[str, Any] | None:
        found = self._call("GET", "/v2/account/secrets", params={"name": name})["secrets"]
        return dict(found[0]) if found else None

    def list_secrets(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/v2/account/secrets")["secrets"])

    def gpu_types(self, *, serverless: bool = False) -> list[dict[str, Any]]:
        params = {"include": "AVAILABILITY", "product": "SERVERLESS"} if serverless else None
        return list(self._call("GET", "/v2/catalog/gpus", params=params)["gpus"])

    def data_centers(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/v2/catalog/datacenters")["dataCenters"])

    def cpu_types(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/v2/catalog/cpus")["cpus"])

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> RunPodApi:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
