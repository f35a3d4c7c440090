"""`RunPodApi`: typed calls on RunPod's REST v2 (endpoints, releases, workers, secrets,
registry credentials, network volumes, catalog). Bodies and answers are the official
spec's JSON, unchanged; transport, retries and error lines live in `transport`/`errors`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from deploy.api import errors
from deploy.api.jobs import DEFAULT_JOB_URL, JOB_URL_VARIABLE, JobsApi
from deploy.api.transport import CallCount, Transport, path_of
from deploy.errors import ApiError, UsageError

DEFAULT_API_URL = "https://api.runpod.io"
KEY_VARIABLE = "RUNPOD_API_KEY"
URL_VARIABLE = "RUNPOD_API_URL"

__all__ = ["DEFAULT_API_URL", "CallCount", "RunPodApi", "api_url"]

ENDPOINTS = "/v2/serverless"
ENDPOINT = "/v2/serverless/{id}"
SECRETS = "/v2/account/secrets"
SECRET = "/v2/account/secrets/{id}"  # noqa: S105 - a route, not a password
REGISTRIES = "/v2/registries"
REGISTRY = "/v2/registries/{id}"
VOLUMES = "/v2/network-volumes"
VOLUME = "/v2/network-volumes/{id}"


def api_url(raw: str) -> str:
    """The API server's root from ``RUNPOD_API_URL``: http(s), no trailing slash, no ``/v2``.

    ``/v2`` is accepted and dropped because `rpdeploy emulator env` (and runpodctl's
    convention) give the REST base with its version; rpdeploy adds ``/v2/...`` itself.
    """
    url = raw.strip().rstrip("/")
    url = url.removesuffix("/v2")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"{URL_VARIABLE} must be an http(s) URL such as {DEFAULT_API_URL}, not {raw!r}",
            hint=f'unset {URL_VARIABLE} to use RunPod, or eval "$(rpdeploy emulator env)"',
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise UsageError(f"{URL_VARIABLE} must be a plain server URL (no query, fragment or user:password@)")
    return url


def _job_url(raw: str) -> str:
    """``RUNPOD_ENDPOINT_BASE_URL`` (the SDK's variable, with ``/v2``): http(s), no trailing slash."""
    url = raw.rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.username:
        raise UsageError(
            f"{JOB_URL_VARIABLE} must be an http(s) URL such as {DEFAULT_JOB_URL}, not {raw!r}",
            hint=f'unset {JOB_URL_VARIABLE} to use RunPod, or eval "$(rpdeploy emulator env)"',
        )
    return url


class RunPodApi:
    """One REST v2 client: one session, one call counter; use as a context manager."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 0.5,
        job_url: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._transport = Transport(self.base_url, api_key, timeout=timeout, retries=retries, backoff=backoff)
        #: The job API (/run, /status, ...): RunPod serves it from api.runpod.ai, the emulator from
        #: its one base; so without ``job_url`` a non-RunPod management URL serves both.
        jobs_base = job_url or (
            DEFAULT_JOB_URL if self.base_url == DEFAULT_API_URL else f"{self.base_url}/v2"
        )
        self.jobs = JobsApi(
            Transport(jobs_base.rstrip("/"), api_key, timeout=timeout, retries=retries, backoff=backoff)
        )
        self.calls: CallCount = self._transport.calls
        #: The one HTTP session (tests hook it to check every answer against the spec).
        self.session = self._transport.session

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> RunPodApi:
        """The client ``RUNPOD_API_KEY`` and ``RUNPOD_API_URL`` describe; UsageError without a key."""
        key = environ.get(KEY_VARIABLE, "").strip()
        if not key:
            raise UsageError(
                f"{KEY_VARIABLE} is not set: the RunPod API needs an API key",
                hint=f"export {KEY_VARIABLE}=... (RunPod console: Settings > API Keys), "
                'or use --target local with a running emulator (eval "$(rpdeploy emulator env)")',
            )
        job_url = environ.get(JOB_URL_VARIABLE, "").strip()
        return cls(
            api_url(environ.get(URL_VARIABLE) or DEFAULT_API_URL),
            key,
            job_url=_job_url(job_url) if job_url else None,
        )

    def __repr__(self) -> str:
        return f"RunPodApi(base_url={self.base_url!r}, calls={self.calls.to_json()})"

    def close(self) -> None:
        self._transport.close()
        self.jobs.close()

    def __enter__(self) -> RunPodApi:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------

    def _object(self, method: str, template: str, **kwargs: Any) -> dict[str, Any]:
        answer = self._transport.call(method, template, **kwargs)
        if not isinstance(answer, dict):
            path = path_of(template, **kwargs.get("args", {}))
            raise errors.unexpected(method, path, "a JSON object", 200)
        return answer

    def _list(self, template: str, key: str, params: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        answer = self._object("GET", template, params=params)
        items = answer.get(key)
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise errors.unexpected("GET", template, f"the {key!r} list", 200)
        return items

    def _delete(self, template: str, resource_id: str) -> None:
        self._transport.call("DELETE", template, args={"id": resource_id})

    @staticmethod
    def _one(
        items: list[dict[str, Any]], name: str, kind: str, match: Callable[[str], bool]
    ) -> dict[str, Any] | None:
        found = [item for item in items if match(str(item.get("name", "")))]
        if len(found) > 1:
            ids = ", ".join(str(item.get("id")) for item in found)
            raise ApiError(
                f"{len(found)} {kind}s are named {name!r} ({ids}): rpdeploy cannot tell which one is meant",
                hint="names identify resources: rename or delete all but one",
            )
        return found[0] if found else None

    # -- endpoints --------------------------------------------------------------------------

    def list_endpoints(self) -> list[dict[str, Any]]:
        return self._list(ENDPOINTS, "endpoints")

    def find_endpoint(self, name: str) -> dict[str, Any] | None:
        """The endpoint with exactly this name, or None; ApiError when two or more share it."""
        return self._one(self.list_endpoints(), name, "endpoint", lambda other: other == name)

    def get_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        return self._object("GET", ENDPOINT, args={"id": endpoint_id})

    def create_endpoint(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create; when the answer is lost (timeout, 5xx, reset) the create may have gone through,
        so the endpoint is looked up by name instead of being created twice."""
        return self._create(ENDPOINTS, body, lambda: self.find_endpoint(str(body.get("name", ""))))

    def update_endpoint(self, endpoint_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._object("PATCH", ENDPOINT, args={"id": endpoint_id}, body=body)

    def delete_endpoint(self, endpoint_id: str) -> None:
        self._delete(ENDPOINT, endpoint_id)

    def releases(self, endpoint_id: str) -> dict[str, Any]:
        return self._object("GET", ENDPOINT + "/releases", args={"id": endpoint_id})

    def workers(self, endpoint_id: str) -> dict[str, Any]:
        return self._object("GET", ENDPOINT + "/workers", args={"id": endpoint_id})

    def _create(
        self, template: str, body: dict[str, Any], lookup: Callable[[], dict[str, Any] | None], **kwargs: Any
    ) -> dict[str, Any]:
        try:
            return self._object("POST", template, body=body, **kwargs)
        except ApiError as exc:
            if not _maybe_done(exc):
                raise
            found = lookup()
            if found is None:
                raise
            return found

    # -- secrets ----------------------------------------------------------------------------

    def list_secrets(self) -> list[dict[str, Any]]:
        return self._list(SECRETS, "secrets")

    def find_secret(self, name: str) -> dict[str, Any] | None:
        """The secret named ``name`` (RunPod compares names case-insensitively), or None."""
        found = self._list(SECRETS, "secrets", params={"name": name})
        folded = name.casefold()
        return self._one(found, name, "secret", lambda other: other.casefold() == folded)

    def create_secret(self, name: str, value: str, description: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "value": value}
        if description is not None:
            body["description"] = description
        return self._create(SECRETS, body, lambda: self.find_secret(name), secrets=(value,))

    def update_secret(
        self, secret_id: str, *, value: str | None = None, description: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if value is not None:
            body["value"] = value
        if description is not None:
            body["description"] = description
        secrets = (value,) if value is not None else ()
        return self._object("PATCH", SECRET, args={"id": secret_id}, body=body, secrets=secrets)

    def delete_secret(self, secret_id: str) -> None:
        self._delete(SECRET, secret_id)

    # -- registry credentials (no update route: delete + create) -----------------------------

    def list_registries(self) -> list[dict[str, Any]]:
        return self._list(REGISTRIES, "registries")

    def find_registry(self, name: str) -> dict[str, Any] | None:
        return self._one(self.list_registries(), name, "registry credential", lambda other: other == name)

    def create_registry(self, name: str, username: str, password: str) -> dict[str, Any]:
        body = {"name": name, "username": username, "password": password}
        return self._create(REGISTRIES, body, lambda: self.find_registry(name), secrets=(password,))

    def delete_registry(self, registry_id: str) -> None:
        self._delete(REGISTRY, registry_id)

    # -- network volumes --------------------------------------------------------------------

    def list_network_volumes(self) -> list[dict[str, Any]]:
        return self._list(VOLUMES, "networkVolumes")

    def find_network_volume(self, name: str) -> dict[str, Any] | None:
        """The volume with exactly this name, or None; ApiError when two or more share it."""
        return self._one(self.list_network_volumes(), name, "network volume", lambda other: other == name)

    def create_network_volume(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._create(VOLUMES, body, lambda: self.find_network_volume(str(body.get("name", ""))))

    def delete_network_volume(self, volume_id: str) -> None:
        self._delete(VOLUME, volume_id)

    # -- catalog ----------------------------------------------------------------------------

    def gpu_types(self, *, serverless: bool = False) -> list[dict[str, Any]]:
        """The GPU catalog; ``serverless`` adds each type's CUDA versions and data centers for
        serverless placement (include=AVAILABILITY&product=SERVERLESS), what preflight checks."""
        params = {"include": "AVAILABILITY", "product": "SERVERLESS"} if serverless else None
        return self._list("/v2/catalog/gpus", "gpus", params)

    def data_centers(self) -> list[dict[str, Any]]:
        return self._list("/v2/catalog/datacenters", "dataCenters")

    def cpu_types(self) -> list[dict[str, Any]]:
        return self._list("/v2/catalog/cpus", "cpus")


def _maybe_done(exc: ApiError) -> bool:
    """Whether a failed create may still have been carried out: no answer, or a 5xx (a gateway
    that lost the origin's answer). A 4xx (including 429, refused unprocessed) was not carried out."""
    return exc.status is None or exc.status >= 500
