"""Load, interpolate, merge and validate ``rpdeploy.yaml``.

Every problem becomes one line ``file:line: dotted.path: message``; all problems of
a file are reported together (fixing one at a time is tedious), as one `ConfigError`.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from deploy.config.interpolate import UnsetVariable, interpolate
from deploy.config.patterns import describe
from deploy.config.rules import Problem, check, warnings
from deploy.config.schema import OVERRIDABLE, Config
from deploy.config.yaml_source import PathKey, YamlDocument, dotted, parse_yaml
from deploy.errors import ConfigError

DEFAULT_FILE = "rpdeploy.yaml"


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config plus where it came from."""

    path: Path
    environment: str | None
    config: Config
    document: YamlDocument = field(repr=False, compare=False)
    #: ``file:line: path: message`` lines for what may be wrong (e.g. a GPU pool the vendored
    #: catalog does not know; RunPod's may be newer). Never blocks loading.
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def root(self) -> Path:
        """The project directory: paths in the config are relative to it."""
        return self.path.parent

    @cached_property
    def config_hash(self) -> str:
        """sha256 of the resolved config (canonical JSON), for image labels and drift checks."""
        payload = {
            "environment": self.environment,
            "config": self.config.model_dump(mode="json", by_alias=True),
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    @cached_property
    def lock_hash(self) -> str | None:
        """sha256 of the runtime requirements/lock file, or None if it cannot be read."""
        try:
            return hashlib.sha256((self.root / self.config.runtime.requirements).read_bytes()).hexdigest()
        except OSError:
            return None


def load_config(
    path: Path | str = DEFAULT_FILE,
    env: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> LoadedConfig:
    """Load ``path`` resolved for environment ``env`` (None: the base config).

    >>> load_config("rpdeploy.yaml", env="staging").config.endpoint.workers.max  # doctest: +SKIP
    1
    """
    file = Path(path).absolute()
    document = read_document(file)
    environ = os.environ if environ is None else environ
    config, problems = _resolve(document, env, environ)
    if problems or config is None:
        raise ConfigError(problems)
    return LoadedConfig(file, env, config, document, _warnings(config, document, env))


def validate_all(
    path: Path | str = DEFAULT_FILE, environ: Mapping[str, str] | None = None
) -> list[LoadedConfig]:
    """Validate the base config and every environment; raise one error listing all problems."""
    file = Path(path).absolute()
    document = read_document(file)
    environ = os.environ if environ is None else environ
    envs = list(document.data.get("environments") or {}) if isinstance(document.data, dict) else []
    problems: list[str] = []
    loaded: list[LoadedConfig] = []
    for env in [None, *envs]:
        config, env_problems = _resolve(document, env, environ)
        problems.extend(p for p in env_problems if p not in problems)
        if config is not None:
            loaded.append(LoadedConfig(file, env, config, document, _warnings(config, document, env)))
    problems.extend(_duplicate_endpoint_names(loaded, document))
    if problems:
        raise ConfigError(problems)
    return loaded


def read_document(file: Path) -> YamlDocument:
    if not file.exists():
        raise ConfigError(
            f"{file}: config file not found", hint="run in the project directory or pass -c FILE"
        )
    if not file.is_file():
        raise ConfigError(f"{file}: not a file")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{file.name}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read ({exc.strerror})") from None
    document = parse_yaml(text, file)
    if document.data is None:
        raise ConfigError(f"{file.name}: the file is empty (expected a mapping with project, image, ...)")
    if not isinstance(document.data, dict):
        kind = type(document.data).__name__
        raise ConfigError(f"{file.name}:1: the top level must be a mapping of keys, got a {kind}")
    return document


def _resolve(
    document: YamlDocument, env: str | None, environ: Mapping[str, str]
) -> tuple[Config | None, list[str]]:
    data: dict[str, Any] = document.data
    problems: list[Problem] = []
    override = _environment_block(data, env, problems)
    if problems:
        return None, _format(problems, document, env)
    try:
        base = interpolate({k: v for k, v in data.items() if k != "environments"}, environ)
        overlay = interpolate(override, environ, ("environments", env)) if env else {}
    except UnsetVariable as exc:
        return None, [f"{document.where(exc.path)}: {dotted(exc.path)}: {exc.message}"]
    merged = _deep_merge(base, overlay)
    merged["environments"] = data.get("environments") or {}
    try:
        config = Config.model_validate(merged)
    except ValidationError as exc:
        return None, _format([_problem(e) for e in exc.errors()], document, env)
    problems = check(config, document.file.parent)
    if problems:
        return None, _format(problems, document, env)
    return config, []


def _warnings(config: Config, document: YamlDocument, env: str | None) -> tuple[str, ...]:
    return tuple(_format(warnings(config), document, env))


def _environment_block(data: dict[str, Any], env: str | None, problems: list[Problem]) -> dict[str, Any]:
    envs = data.get("environments") or {}
    if not isinstance(envs, dict):
        problems.append(Problem(("environments",), "must be a mapping of environment names to overrides"))
        return {}
    if env is None:
        return {}
    if env not in envs:
        known = ", ".join(sorted(envs)) or "none defined"
        problems.append(Problem(("environments",), f"no environment {env!r} (known: {known})"))
        return {}
    block = envs[env] or {}
    if not isinstance(block, dict):
        problems.append(Problem(("environments", env), "must be a mapping of sections to override"))
        return {}
    for key in block:
        if key not in OVERRIDABLE:
            problems.append(
                Problem(
                    ("environments", env, key),
                    "cannot be overridden per environment" + _suggest(key, OVERRIDABLE),
                )
            )
    return block


def _deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; any other value (lists included) replaces."""
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _problem(error: ErrorDetails) -> Problem:
    loc: PathKey = tuple(error["loc"])
    kind = error["type"]
    if kind == "missing":
        return Problem(loc, "required")
    if kind == "extra_forbidden":
        return Problem(loc, "unknown key" + _suggest(str(loc[-1]), _allowed_keys(Config, loc[:-1])))
    message = error["msg"].removeprefix("Value error, ")
    message = message.replace("Input should be", "must be").replace("Input", "value")
    if kind != "value_error" and isinstance(error.get("input"), str | int | float | bool):
        message += f" (got {describe(str(error['input']))!r})"
    return Problem(loc, message)


def _suggest(key: str, allowed: Iterable[str]) -> str:
    match = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _allowed_keys(model: type[BaseModel], loc: PathKey) -> list[str]:
    """The keys a mapping at ``loc`` accepts, for "did you mean" suggestions."""
    target: Any = model
    for part in loc:
        target = _step(target, part)
        if target is None:
            return []
    target = _unwrap(target)
    if isinstance(target, type) and issubclass(target, BaseModel):
        return [f.alias or name for name, f in target.model_fields.items()]
    return []


def _step(annotation: Any, part: str | int) -> Any:
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) and isinstance(part, str):
        for name, info in annotation.model_fields.items():
            if part in (name, info.alias):
                return info.annotation
        return None
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is list and isinstance(part, int):
        return args[0]
    if origin is dict and isinstance(part, str):
        return args[1]
    return None


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated[...]`` and ``X | None`` down to X."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = members[0]
        else:
            return annotation


def _format(problems: list[Problem], document: YamlDocument, env: str | None) -> list[str]:
    lines = []
    for problem in problems:
        path = _source_path(document, problem.path, env)
        label = f"{dotted(path)}: " if path else ""
        lines.append(f"{document.where(path)}: {label}{problem.message}")
    return lines


def _source_path(document: YamlDocument, path: PathKey, env: str | None) -> PathKey:
    """Where in the file ``path`` of the merged config was written.

    The environment override wins when it set this path (or a deeper part of it
    than the base config did), so the message points at the line to fix.
    """
    if env is None or path[:1] == ("environments",):
        return path
    over: PathKey = ("environments", env, *path)
    for end in range(len(over), 2, -1):
        if over[:end] in document.lines:
            return over if end - 2 >= _known_depth(document, path) else path
    return path


def _known_depth(document: YamlDocument, path: PathKey) -> int:
    for end in range(len(path), 0, -1):
        if path[:end] in document.lines:
            return end
    return 0


def _duplicate_endpoint_names(loaded: list[LoadedConfig], document: YamlDocument) -> list[str]:
    owners: dict[str, str] = {}
    problems: list[str] = []
    for item in loaded:
        if item.environment is None and (document.data.get("environments") or {}):
            continue  # with environments, the base config is a template, not a deploy target
        name = item.config.endpoint_name(item.environment)
        label = item.environment or "(base)"
        if name in owners:
            path: PathKey = ("environments", item.environment or "")
            problems.append(
                f"{document.where(path)}: {dotted(path)}: deploys endpoint {name!r}, "
                f"like environment {owners[name]} (set a distinct endpoint.name)"
            )
        owners.setdefault(name, label)
    return problems
