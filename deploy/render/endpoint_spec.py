"""The RunPod REST v2 endpoint bodies (create and update) for a config.

Built as plain data in Python, then passed to the spec templates: logic stays out
of templates, and ``{{ RUNPOD_SECRET_name }}`` references are data Jinja never
evaluates. Each body is checked with `deploy.runpod.endpoint` (the vendored schema, the
range rules and the endpoint rules, as config validation and the emulator check them)
before anything is written: a body RunPod would refuse is a `RenderError`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from deploy.config import Config, LoadedConfig
from deploy.config.mask import MASK
from deploy.config.schema import EndpointConfig, SecretConfig
from deploy.errors import RenderError
from deploy.runpod import endpoint as rules
from deploy.runpod import secrets as runpod_secrets
from deploy.runpod.defaults import idle_timeout_applies

#: Resolves an inline secret to its value at deploy time; rendering uses `masked`.
SecretResolver = Callable[[SecretConfig], str]


def masked(_secret: SecretConfig) -> str:
    return MASK


def endpoint_env(
    config: Config, resolve_inline: SecretResolver = masked, source: LoadedConfig | None = None
) -> dict[str, str]:
    """The endpoint's env: plain values, the bootstrap's settings from ``runtime:``
    (`Config.runtime_env`), plus secret references (or inline values).

    ``source`` (the loaded config ``config`` is) says which values interpolation built
    from a secret's variable: such a copy is resolved by `_secret_copy`, so a deployable
    body never carries a secret, nor the ``***`` that masking would leave in its place.
    """
    env = {
        key: _secret_copy(config, ("endpoint", "env", key), value, source)
        for key, value in config.endpoint.env.items()
    }
    # The bootstrap's run-time settings, from `runtime:` (their one source; config validation
    # refuses an endpoint.env value that disagrees).
    for key, (value, path) in config.runtime_env().items():
        env.setdefault(key, _secret_copy(config, path, value, source))
    for secret in config.secrets:
        if secret.mode == "runpod-secret":
            env[secret.name] = runpod_secrets.reference(config.secret_name(secret))
        else:
            env[secret.name] = resolve_inline(secret)
    return dict(sorted(env.items()))


def _secret_copy(config: Config, path: tuple[str, ...], value: str, source: LoadedConfig | None) -> str:
    """``value``, or the RunPod secret reference it copies exactly; RenderError for any
    other copy of a secret (inside other text, or of an inline or undeclared secret),
    which no deployable file may hold.

    A copy is a value interpolated from a secret's variable (``${AWS_…}`` in the file):
    provenance, not the value's look. A literal that happens to equal a secret is no copy,
    and saying it was would tell that the secret equals it (masking of output stays
    value-based: a secret value is never printed, whatever its origin).
    """
    if source is None:
        return value
    reads = source.secret_reads(path)
    if not reads.variables:
        return value
    where = f"{source.where(path)}: {'.'.join(path)}"
    variable = reads.exact
    if variable is None:
        named = reads.variables[0]
        raise RenderError(
            f"{where}: holds the secret ${{{named}}} inside other text, which a deployable"
            f' file cannot carry: set it to exactly "${{{named}}}" (a RunPod secret reference)'
            " or build the text in the worker"
        )
    for secret in config.secrets:
        if secret.mode == "runpod-secret" and variable in {secret.name, secret.from_env}:
            return runpod_secrets.reference(config.secret_name(secret))
    raise RenderError(
        f"{where}: copies ${{{variable}}}, which is not a runpod-secret: only a"
        " runpod-secret can be copied (it becomes its {{ RUNPOD_SECRET_… }} reference);"
        f" read {variable} itself in the worker, or declare it with mode: runpod-secret"
    )


def create_request(
    config: Config,
    environment: str | None,
    image: str,
    resolve_inline: SecretResolver = masked,
    source: LoadedConfig | None = None,
) -> dict[str, Any]:
    """A `CreateEndpointRequest` body; RenderError if RunPod would refuse it.

    ``source``: the loaded config ``config`` is, whose interpolation provenance tells which
    env values copy a secret (`_secret_copy`); None treats every value as written.
    """
    body = _create_body(config, environment, image, resolve_inline, source)
    # Catalog rules only warn: RunPod's live catalog may know a pool ours does not.
    given = "idle_timeout" in config.endpoint.workers.model_fields_set
    problems = rules.create_problems(body, idle_timeout_given=given)
    _check("endpoint.create.json", [p for p in problems if not p.catalog])
    return body


def _create_body(
    config: Config,
    environment: str | None,
    image: str,
    resolve_inline: SecretResolver,
    source: LoadedConfig | None,
) -> dict[str, Any]:
    ep = config.endpoint
    body: dict[str, Any] = {
        "name": config.endpoint_name(environment),
        "type": ep.type,
        "image": image,
        **_compute(ep),
        "workers": _workers(ep),
        "scaling": _scaling(ep),
        "timeout": ep.timeout,
        "flashboot": ep.flashboot,
        # Volumes given by name get their ids at deploy time (deploy.release.volumes).
        "networkVolumes": ep.volume_ids(),
        "dataCenterIds": list(ep.data_center_ids),
        "env": endpoint_env(config, resolve_inline, source),
    }
    if ep.disk is not None:
        body["disk"] = ep.disk
    if ep.ports:
        body["ports"] = list(ep.ports)
    if ep.registry is not None:
        body["registry"] = ep.registry
    return body


def update_request(create_body: Mapping[str, Any]) -> dict[str, Any]:
    """The `UpdateEndpointRequest` body for a `create_request` body: everything but ``type``.

    Takes the create body (already built and checked) instead of the config, so a render
    builds the endpoint document once; RenderError if RunPod would refuse the update.
    """
    body = {key: value for key, value in create_body.items() if key != "type"}
    _check("endpoint.update.json", rules.request_problems("UpdateEndpointRequest", body))
    return body


def _check(name: str, problems: list[rules.Problem]) -> None:
    if problems:
        shown = "; ".join(problem.line() for problem in problems)
        raise RenderError(f"{name}: RunPod would refuse this body: {shown}")


def _compute(ep: EndpointConfig) -> dict[str, Any]:
    """`gpu` and/or `cpu` exactly as configured; the RunPod rules then refuse both or neither."""
    compute: dict[str, Any] = {}
    if ep.cpu is not None:
        compute["cpu"] = [{"id": c.id, "vcpuCount": c.vcpu_count} for c in ep.cpu]
    if ep.gpu is not None:
        gpu: dict[str, Any] = {"pools": list(ep.gpu.pools), "count": ep.gpu.count}
        if ep.gpu.excluded_types:
            gpu["excludedTypes"] = list(ep.gpu.excluded_types)
        if ep.gpu.allowed_cuda_versions is not None:
            gpu["allowedCudaVersions"] = list(ep.gpu.allowed_cuda_versions)
        if ep.gpu.min_cuda_version is not None:
            gpu["minCudaVersion"] = ep.gpu.min_cuda_version
        compute["gpu"] = gpu
    return compute


def _workers(ep: EndpointConfig) -> dict[str, int]:
    workers = {"min": ep.workers.min, "max": ep.workers.max}
    if idle_timeout_applies(ep.type, ep.scaling.type):
        workers["idleTimeout"] = ep.workers.idle_timeout
    return workers


def _scaling(ep: EndpointConfig) -> dict[str, Any]:
    """The scaling block exactly as configured; the RunPod schema refuses a missing or stray field."""
    scaling: dict[str, Any] = {"type": ep.scaling.type}
    delay = ep.scaling.queue_delay
    if delay is not None:
        scaling["queueDelay"] = int(delay) if delay.is_integer() else delay
    if ep.scaling.request_count is not None:
        scaling["requestCount"] = ep.scaling.request_count
    return scaling
