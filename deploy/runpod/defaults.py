"""Field defaults the RunPod REST v2 server fills in, and which fields belong to the container.

Sources: the spec's `default` values (`CreateEndpointRequest`: `timeout` 300000 ms,
`flashboot` OFF, `workers` {min 0, max 3, idleTimeout 10}) and runpod-platform.md §2.3/§2.4
(`disk` 5 GB for an endpoint, `args` "", empty lists); template defaults from
`CreateTemplateRequest` and §2.9.
"""

from __future__ import annotations

from typing import Any, Final

ENDPOINT_DEFAULTS: Final[dict[str, Any]] = {
    "args": "",
    "disk": 5,
    "ports": [],
    "env": {},
    "registry": None,
    "dataCenterIds": [],
    "networkVolumes": [],
    "timeout": 300_000,
    "flashboot": "OFF",
}
WORKERS_DEFAULTS: Final[dict[str, int]] = {"min": 0, "max": 3, "idleTimeout": 10}
TEMPLATE_DEFAULTS: Final[dict[str, Any]] = {
    "args": "",
    "disk": 50,
    "mounts": {},
    "ports": [],
    "env": {},
    "registry": None,
    "serverless": False,
    "public": False,
    "category": "NVIDIA",
    "startSsh": True,
    "startJupyter": True,
    "allowedCudaVersions": [],
}
#: Container settings (`ContainerConfig`), shared by endpoints and templates.
CONTAINER_FIELDS: Final = ("image", "args", "disk", "ports", "env", "registry")


def idle_timeout_applies(endpoint_type: str, scaling_type: str) -> bool:
    """Whether `workers.idleTimeout` exists for this combination.

    `EndpointWorkers.idleTimeout` (spec): "Not applicable to queue-based endpoints scaling
    on `requestCount` — rejected on create/update and omitted from responses".
    """
    return not (endpoint_type == "QUEUE" and scaling_type == "REQUEST_COUNT")
