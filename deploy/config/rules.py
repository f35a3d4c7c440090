"""Rules that relate several config fields, each reported with its exact path.

Pydantic checks each value on its own; these checks need the whole picture. The
``endpoint`` section is checked by `deploy.runpod.endpoint`, the same code the emulator
and render use, on the REST v2 body the section spells (``workers.max >= workers.min``,
exactly one of ``gpu``/``cpu``, numeric ranges, …), so a bad config fails here instead of
at deploy time. Rules that read the vendored hardware catalog (an unknown GPU pool) are
warnings: RunPod's live catalog may be newer.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.config.runtime_bounds import NUMBERS, number_problem
from deploy.config.schema import IMAGE_SHAPING_KEYS, RUNTIME_ENV_SHADOWS, Config, EndpointConfig
from deploy.config.yaml_source import PathKey
from deploy.runpod import endpoint as runpod_endpoint
from deploy.runpod import secrets as runpod_secrets
from deploy.runpod.defaults import idle_timeout_applies


@dataclass(frozen=True)
class Problem:
    path: PathKey
    message: str
    #: The other place a conflict involves; the message line names it with its ``file:line``.
    also: PathKey | None = None


def check(config: Config, root: Path) -> list[Problem]:
    """Every cross-field and filesystem problem of ``config`` (empty when fine)."""
    return [
        *_endpoint_problems(config),
        *_secret_problems(config),
        *_runtime_env_problems(config),
        *_bootstrap_setting_problems(config),
        *_deploy_resource_problems(config),
        *_file_problems(config, root),
    ]


def warnings(config: Config) -> list[Problem]:
    """What may be wrong but cannot be decided offline (empty when nothing): unknown catalog ids."""
    if list(_scaling_problems(config.endpoint)):
        return []
    return [_under_endpoint(p) for p in _runpod_problems(config) if p.catalog]


def _endpoint_problems(config: Config) -> Iterator[Problem]:
    shape = list(_scaling_problems(config.endpoint))
    yield from shape
    if not shape:  # the REST v2 body needs a complete scaling block
        yield from (_under_endpoint(p) for p in _runpod_problems(config) if not p.catalog)


def _runpod_problems(config: Config) -> list[runpod_endpoint.Problem]:
    ep = config.endpoint
    return runpod_endpoint.create_problems(
        _runpod_body(config), idle_timeout_given="idle_timeout" in ep.workers.model_fields_set
    )


def _under_endpoint(problem: runpod_endpoint.Problem) -> Problem:
    return Problem(("endpoint", *problem.path), problem.message)


def _runpod_body(config: Config) -> dict[str, Any]:
    """The `CreateEndpointRequest` the ``endpoint`` section spells, for checking only.

    The section uses REST v2 names, so its JSON dump is the body; what only render knows
    stands in with a value of the right kind: the image (a tag is added at build time)
    and env values of secrets (references or masked values, always strings).
    """
    ep = config.endpoint
    # The section holds only JSON types, so a python-mode dump is the same (equivalent mutants).
    body: dict[str, Any] = ep.model_dump(mode="json", by_alias=True, exclude_none=True)  # pragma: no mutate
    body["name"] = config.endpoint_name(None)
    body["image"] = f"{config.image.registry}/{config.image.repository}"
    # Any string stands for a secret's value here: the schema only asks that env values are strings.
    derived = {name: value for name, (value, _) in config.runtime_env().items()}
    body["env"] = {**derived, **body["env"], **{secret.name: "***" for secret in config.secrets}}
    # Volumes given by name get their ids at deploy time (deploy.release.volumes).
    body["networkVolumes"] = ep.volume_ids()
    if not idle_timeout_applies(ep.type, ep.scaling.type):
        del body["workers"]["idleTimeout"]  # always there: the field has a default
    return body


def _scaling_problems(ep: EndpointConfig) -> Iterator[Problem]:
    path: PathKey = ("endpoint", "scaling")
    scaling = ep.scaling
    if scaling.type == "QUEUE_DELAY":
        if scaling.queue_delay is None:
            yield Problem(path, "QUEUE_DELAY scaling needs queueDelay (seconds, >= 0.5)")
        if scaling.request_count is not None:
            yield Problem((*path, "requestCount"), "only valid with type REQUEST_COUNT")
    else:
        if scaling.request_count is None:
            yield Problem(path, "REQUEST_COUNT scaling needs requestCount (>= 1)")
        if scaling.queue_delay is not None:
            yield Problem((*path, "queueDelay"), "only valid with type QUEUE_DELAY")


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
        if secret.mode == "runpod-secret" and secret.secret is None:
            problem = runpod_secrets.name_problem(config.secret_name(secret))
            if problem is not None:
                yield Problem(path, f"the default RunPod secret name fails: {problem}; set secret:")


def _runtime_env_problems(config: Config) -> Iterator[Problem]:
    """``runtime:`` is the one source of the bootstrap's run-time settings (`Config.runtime_env`):
    an endpoint.env value that disagrees, or a secret of the same name, is a conflict; so is one
    of a name the bootstrap reads first (`RUNTIME_ENV_SHADOWS`: AWS_REGION before
    RPDEPLOY_S3_REGION), which would win over ``runtime:`` without a word."""
    for name, (value, source) in config.runtime_env().items():
        where, also = _setting_source(config, source, value)
        for variable in (name, *RUNTIME_ENV_SHADOWS.get(name, ())):
            # A shadow wins over the setting in the bootstrap: the message says so, or the
            # conflict would look like none.
            after = "" if variable == name else f", which the bootstrap reads only when {variable} is unset"
            if variable in config.endpoint.env and config.endpoint.env[variable] != value:
                yield Problem(
                    ("endpoint", "env", variable),
                    f"conflicts with {where}, which render puts into the endpoint env as {name}{after}:"
                    " set it in one place",
                    also=also,
                )
            for index, secret in enumerate(config.secrets):
                if secret.name == variable:
                    how = "" if variable == name else f" as {name}{after}"
                    yield Problem(
                        ("secrets", index, "name"),
                        f"{variable} is also set by {where} (render puts it into the endpoint env{how}):"
                        " set it in one place",
                        also=also,
                    )


def _setting_source(config: Config, path: tuple[str, ...], value: str) -> tuple[str, PathKey | None]:
    """How a conflict names the ``runtime:`` setting at ``path``, and where it is written: a
    setting the file leaves out is its default, which no line holds (``runtime.installer (its
    default, 'pip')``; defaults are never secrets)."""
    owner: Any = config
    for part in path[:-1]:
        owner = getattr(owner, part)
    dotted = ".".join(path)
    if path[-1] in owner.model_fields_set:
        return dotted, path
    return f"{dotted} (its default, {value!r})", None


def image_override_problems(
    config: Config, override: Mapping[str, Any], env: str, base: Mapping[str, Any]
) -> Iterator[Problem]:
    """An environment's keys that shape the image (`IMAGE_SHAPING_KEYS`), one problem each:
    every environment deploys the image of one build under one commit tag, so an override
    would make two environments' images collide (or one run the other's settings).

    ``override`` and ``base`` are the document as written (the environment's block, and the
    file without ``environments:``): a key written in both with the same value changes
    nothing and is accepted, so that a config that repeated it keeps working."""
    strategy = config.image.strategy
    shaping = IMAGE_SHAPING_KEYS[strategy]
    # As written (the override's own order), so that the lines follow the file.
    for section, block in override.items():
        if section not in shaping or not isinstance(block, Mapping):
            continue
        written = base.get(section)
        same = written if isinstance(written, Mapping) else {}
        for key in [key for key in block if key in shaping[section]]:
            if key in same and same[key] == block[key]:
                continue
            yield Problem(
                ("environments", env, section, key),
                f"cannot be overridden per environment: it is built into the {strategy} image, and"
                " every environment deploys the image of one build (one tag per commit); set it in"
                f" {section}: for all of them",
            )


def _bootstrap_setting_problems(config: Config) -> Iterator[Problem]:
    """A number the slim bootstrap reads from endpoint.env (RPDEPLOY_LOCK_WAIT_S, ...) that it
    would refuse at every cold start (exit 1) is refused here, by the same rules. Those that
    ``runtime:`` sets (RPDEPLOY_MIN_FREE_*_MB, and RPDEPLOY_INSTALLER) are its to check: an
    endpoint.env value either equals the checked one or is a conflict (`_runtime_env_problems`)."""
    if config.image.strategy != "slim":
        return  # no bootstrap reads them
    derived = config.runtime_env()
    for name, value in config.endpoint.env.items():
        # A `{{ RUNPOD_SECRET_... }}` value is only known once RunPod fills it in.
        if "{{" in value or name in derived or name not in NUMBERS:
            continue
        problem = number_problem(name, value)
        if problem is not None:
            yield Problem(("endpoint", "env", name), f"{problem} (read by the slim bootstrap)")


def _deploy_resource_problems(config: Config) -> Iterator[Problem]:
    """Registry credentials and named network volumes (created at deploy time)."""
    ep = config.endpoint
    if config.image.registry_auth is not None and ep.registry is not None:
        yield Problem(
            ("endpoint", "registry"),
            "set either endpoint.registry (an existing credential id) or image.registry_auth, not both",
        )
    seen: set[str] = set()
    for index, volume in enumerate(ep.network_volumes):
        if isinstance(volume, str):
            continue
        path: PathKey = ("endpoint", "networkVolumes", index)
        if volume.name in seen:
            yield Problem((*path, "name"), f"volume {volume.name!r} is listed twice")
        seen.add(volume.name)
        if ep.data_center_ids and volume.data_center not in ep.data_center_ids:
            # A volume pins the workers that mount it to its data center.
            yield Problem(
                (*path, "dataCenter"),
                f"{volume.data_center} is not in endpoint.dataCenterIds ({', '.join(ep.data_center_ids)}):"
                " workers could run nowhere that mounts the volume",
            )


def _file_problems(config: Config, root: Path) -> Iterator[Problem]:
    handler_dir = root / config.handler.path
    if not handler_dir.is_dir():
        yield Problem(("handler", "path"), f"directory {config.handler.path!r} does not exist")
    elif not (handler_dir / config.handler.file).is_file():
        yield Problem(("handler", "file"), f"{config.handler.path}/{config.handler.file} does not exist")
    if not (root / config.runtime.requirements).is_file():
        yield Problem(("runtime", "requirements"), f"file {config.runtime.requirements!r} does not exist")
