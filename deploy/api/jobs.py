"""RunPod's job API (the data plane): ``/run``, ``/runsync``, ``/status``, ``/stream``, ``/cancel``.

Same transport as the REST v2 client (one `requests` session, Bearer auth, urllib3 retries:
a ``POST /run`` is never repeated after a 5xx, so a job is never submitted twice; a ``GET
/status`` is). The base is ``RUNPOD_ENDPOINT_BASE_URL`` as the runpod SDK reads it (default
``https://api.runpod.ai/v2``; the emulator exports its own), and request bodies follow the
SDK's rule (`runpod.Endpoint.run`): a payload with a truthy ``input`` is sent as is, anything
else is wrapped as ``{"input": payload}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from deploy.api import errors
from deploy.api.transport import Transport

DEFAULT_JOB_URL = "https://api.runpod.ai/v2"
JOB_URL_VARIABLE = "RUNPOD_ENDPOINT_BASE_URL"
#: Job states after which nothing changes (`CANCELLED` included, as the SDK's `is_completed`).
FINAL_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"})
#: `/runsync?wait=` bounds (ms) RunPod accepts.
RUNSYNC_WAIT_MS = (1000, 300000)

__all__ = ["DEFAULT_JOB_URL", "FINAL_STATES", "JOB_URL_VARIABLE", "JobsApi", "request_body"]


def request_body(payload: Any) -> dict[str, Any]:
    """The job request the runpod SDK sends for ``payload`` (`Endpoint.run`'s wrapping rule)."""
    if isinstance(payload, dict) and payload.get("input"):
        return dict(payload)
    return {"input": payload}


class JobsApi:
    """Typed calls on one RunPod job API base; answers are RunPod's JSON, unchanged."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self.calls = transport.calls

    @property
    def base_url(self) -> str:
        return self._transport.base_url

    def close(self) -> None:
        self._transport.close()

    def _call(
        self, method: str, path: str, body: Any = None, params: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        response = self._transport.send(method, path, body=body, params=params)
        if response.status_code >= 400:
            # RunPod answers a FAILED /runsync on public endpoints with 400 and the job itself.
            answer = _json_or_none(response)
            if response.status_code == 400 and isinstance(answer, dict) and "status" in answer:
                return answer
            raise errors.http_error(response, method, path)
        answer = errors.decode(response, method, path)
        if not isinstance(answer, dict):
            raise errors.unexpected(method, path, "a JSON object", response.status_code)
        return answer

    @staticmethod
    def _path(endpoint_id: str, route: str, job_id: str | None = None) -> str:
        path = f"/{quote(endpoint_id, safe='')}/{route}"
        return path if job_id is None else f"{path}/{quote(job_id, safe='')}"

    def run(self, endpoint_id: str, payload: Any) -> dict[str, Any]:
        """``POST /run``: ``{"id", "status"}``."""
        answer = self._call("POST", self._path(endpoint_id, "run"), request_body(payload))
        if not isinstance(answer.get("id"), str):
            raise errors.unexpected("POST", self._path(endpoint_id, "run"), "a job id", 200)
        return answer

    def runsync(self, endpoint_id: str, payload: Any, wait_ms: int | None = None) -> dict[str, Any]:
        """``POST /runsync``: the final job, or ``{"id", "status"}`` when it was not done within ``wait``."""
        params = None
        if wait_ms is not None:
            low, high = RUNSYNC_WAIT_MS
            params = {"wait": str(min(max(wait_ms, low), high))}
        return self._call("POST", self._path(endpoint_id, "runsync"), request_body(payload), params)

    def status(self, endpoint_id: str, job_id: str) -> dict[str, Any]:
        return self._call("GET", self._path(endpoint_id, "status", job_id))

    def stream(self, endpoint_id: str, job_id: str) -> dict[str, Any]:
        """``GET /stream``: ``{"status", "stream": [{"output": ...}, ...]}``, each chunk given once."""
        return self._call("GET", self._path(endpoint_id, "stream", job_id))

    def cancel(self, endpoint_id: str, job_id: str) -> dict[str, Any]:
        return self._call("POST", self._path(endpoint_id, "cancel", job_id))

    def health(self, endpoint_id: str) -> dict[str, Any]:
        return self._call("GET", self._path(endpoint_id, "health"))


def _json_or_none(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
