"""Rules that relate several config fields, each reported with its exact path.

Pydantic checks each value on its own; these checks need the whole picture
(``workers.max >= workers.min``, exactly one of ``gpu``/``cpu``, …) and mirror the 400
answers RunPod's REST v2 gives, so a bad config fails here instead of at deploy time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from deploy.config.schema import Config, EndpointConfig
from deploy.config.yaml_source import PathKey


@dataclass(frozen=True)
class Problem:
    path: PathKey
    message: str


def check(config: Config, root: Path) -> list[Problem]:
    """Every cross-field and filesystem problem of ``config`` (empty when fine)."""
    return [
        *_endpoint_problems(config.endpoint),
        *_secret_problems(config),
        *_file_problems(config, root),
    ]


def _endpoint_problems(ep: EndpointConfig) -> Iterator[Problem]:
    base: PathKey = ("endpoint",)
    if ep.gpu is not None and ep.cpu is not None:
        yield Problem((*base, "cpu"), "set either gpu or cpu, not both")
    if ep.gpu is None and ep.cpu is None:
        yield Problem(base, "set either gpu (pools) or cpu (flavors): RunPod needs exactly one")
    if ep.workers.max < ep.workers.min:
        yield Problem(
            (*base, "workers", "max"),
            f"must be >= workers.min ({ep.workers.max} < {ep.workers.min})",
        )
    if ep.gpu is not None and ep.gpu.allowed_cuda_versions and ep.gpu.min_cuda_version:
        yield Problem(
            (*base, "gpu", "minCudaVersion"),
            "cannot be combined with a non-empty allowedCudaVersions (pick an exact set or a floor)",
        )
    yield from _scaling_problems(ep)


def _scaling_problems(ep: EndpointConfig) -> Iterator[Problem]:
    path: PathKey = ("endpoint", "scaling")
    scaling = ep.scaling
    if scaling.type == "QUEUE_DELAY":
        if ep.type == "LOAD_BALANCER":
            yield Problem((*path, "type"), "LOAD_BALANCER endpoints must scale on REQUEST_COUNT")
        if scaling.queue_delay is None:
            yield Problem(path, "QUEUE_DELAY scaling needs queueDelay (seconds, >= 0.5)")
        if scaling.request_count is not None:
            yield Problem((*path, "requestCount"), "only valid with type REQUEST_COUNT")
    else:
        if scaling.request_count is None:
            yield Problem(path, "REQUEST_COUNT scaling needs requestCount (>= 1)")
        if scaling.queue_delay is not None:
            yield Problem((*path, "queueDelay"), "only valid with type QUEUE_DELAY")
        if ep.type == "QUEUE" and "idle_timeout" in ep.workers.model_fields_set:
            yield Problem(
                ("endpoint", "workers", "idleTimeout"),
                "not applicable to QUEUE endpoints scaling on REQUEST_COUNT (RunPod rejects it)",
            )


def _secret_problems(config: Config) -> Iterator[Problem]:
    seen: dict[str, int] = {}
    for index, secret in enumerate(config.secrets):
        path: PathKey = ("secrets", index, "name")
        if secret.name in seen:
            yield Problem(path, f"{secret.name} is listed twice (also secrets[{seen[secret.name]}])")
        seen.setdefault(secret.name, index)
        if secret.name in config.endpoint.env:
            yield Problem(
                path, f"{secret.name} is also set in endpoint.env; a secret must be set in one place"
            )
        if secret.mode == "inline" and secret.secret is not None:
            yield Problem(("secrets", index, "secret"), "only valid with mode runpod-secret")


def _file_problems(config: Config, root: Path) -> Iterator[Problem]:
    handler_dir = root / config.handler.path
    if not handler_dir.is_dir():
        yield Problem(("handler", "path"), f"directory {config.handler.path!r} does not exist")
    elif not (handler_dir / config.handler.file).is_file():
        yield Problem(("handler", "file"), f"{config.handler.path}/{config.handler.file} does not exist")
    if not (root / config.runtime.requirements).is_file():
        yield Problem(("runtime", "requirements"), f"file {config.runtime.requirements!r} does not exist")
