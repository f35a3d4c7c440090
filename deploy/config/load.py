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
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from deploy.config.interpolate import Interpolator, SecretReads, UnsetVariable
from deploy.config.mask import MASKER, Masker
from deploy.config.patterns import FORBIDDEN_CHARS, first_control, hidden_char, quoted
from deploy.config.rules import Problem, check, image_override_problems, warnings
from deploy.config.schema import IMAGE_SHAPING_KEYS, OVERRIDABLE, UNION_TAGS, Config
from deploy.config.yaml_source import PathKey, YamlDocument, dotted, parse_yaml
from deploy.errors import ConfigError

DEFAULT_FILE = "rpdeploy.yaml"

#: Variables whose values are secret even when no `secrets:` entry names them.
ALWAYS_SECRET: frozenset[str] = frozenset({"RUNPOD_API_KEY"})
#: Top-level keys starting with this are ignored: a place for YAML anchors (Docker Compose's
#: convention for extension fields), e.g. ``x-defaults: &defaults {...}``.
EXTENSION_PREFIX = "x-"


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config plus where it came from."""

    path: Path
    environment: str | None
    config: Config
    document: YamlDocument = field(repr=False, compare=False)
    #: The secret values interpolation read into `config`; every output goes through it.
    masker: Masker = field(default_factory=Masker, repr=False, compare=False)
    #: ``file:line: path: message`` lines for what may be wrong (e.g. a GPU pool the vendored
    #: catalog does not know; RunPod's may be newer). Never blocks loading.
    warnings: tuple[str, ...] = field(default=(), compare=False)
    #: Path as written -> the secret variables interpolation built that string from: a value's
    #: provenance, for checks that must not match on values (a literal may equal a secret).
    reads: Mapping[PathKey, SecretReads] = field(default_factory=dict, repr=False, compare=False)

    def secret_reads(self, path: PathKey) -> SecretReads:
        """The secret variables the value at ``path`` of the merged config was interpolated from."""
        return self.reads.get(_source_path(self.document, path, self.environment), SecretReads())

    def where(self, path: PathKey) -> str:
        """``file:line`` where the value at ``path`` of the merged config was written."""
        return self.document.where(_source_path(self.document, path, self.environment))

    @property
    def root(self) -> Path:
        """The project directory: paths in the config are relative to it."""
        return self.path.parent

    @cached_property
    def config_hash(self) -> str:
        """sha256 of what in the resolved config shapes the image (`IMAGE_SHAPING_KEYS` of its
        strategy, as ``{section: {key: value}}``; canonical JSON, secrets masked), for the image's
        ``dev.rpdeploy.config-hash`` label.

        The same for every environment: they all deploy the image of one build under one tag per
        commit, so hashing the environment's name or its endpoint would give each
        ``rpdeploy build --env`` another image id under that tag. Masked so that a label never
        lets anyone test guesses of a secret against it.
        """
        config = self.config.model_dump(mode="json", by_alias=True)
        shaping = IMAGE_SHAPING_KEYS[self.config.image.strategy]
        payload = {section: {key: config[section][key] for key in keys} for section, keys in shaping.items()}
        return hashlib.sha256(json.dumps(self.masker.data(payload), sort_keys=True).encode()).hexdigest()

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
    config, problems, masker, reads = _resolve(document, env, environ)
    if config is None:  # `_resolve` gives a config exactly when it found no problem
        raise ConfigError(problems)
    return _loaded(document, env, config, masker, reads)


def validate_all(
    path: Path | str = DEFAULT_FILE, environ: Mapping[str, str] | None = None
) -> list[LoadedConfig]:
    """Validate the base config and every environment; raise one error listing all problems."""
    file = Path(path).absolute()
    document = read_document(file)
    environ = os.environ if environ is None else environ
    envs = document.data.get("environments") or {}
    problems: list[str] = []
    loaded: list[LoadedConfig] = []
    for env in [None, *(envs if isinstance(envs, dict) else {})]:
        config, env_problems, masker, reads = _resolve(document, env, environ)
        problems.extend(p for p in env_problems if p not in problems)
        if config is not None:
            loaded.append(_loaded(document, env, config, masker, reads))
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
        raw = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")  # pragma: no mutate - codec names are case-insensitive ("UTF-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{file.name}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x})") from None
    document = parse_yaml(text, file)
    if document.data is None:
        # Line 1, like every config error: editors and CI annotations jump to a line.
        raise ConfigError(f"{file.name}:1: the file is empty (expected a mapping with project, image, ...)")
    if not isinstance(document.data, dict):
        kind = type(document.data).__name__
        raise ConfigError(f"{file.name}:1: the top level must be a mapping of keys, got a {kind}")
    document.data = {k: v for k, v in document.data.items() if not k.startswith(EXTENSION_PREFIX)}
    return document


def _resolve(
    document: YamlDocument, env: str | None, environ: Mapping[str, str]
) -> tuple[Config | None, list[str], Masker, dict[PathKey, SecretReads]]:
    """The config for ``env``, or the problem lines; plus the secrets interpolation read, by value
    (a `Masker`) and by path as written (`Interpolator.reads`)."""
    data: dict[str, Any] = document.data
    problems: list[Problem] = []
    override = _environment_block(data, env, problems)
    if problems:
        # Each is under environments:, where it was written: no override to look through.
        return None, _format(problems, document, None, Masker()), Masker(), {}
    interpolator = Interpolator(environ, _secret_variables(data))
    try:
        base = interpolator.apply({k: v for k, v in data.items() if k != "environments"})
        # Without env the override is {} and interpolates to {}: `if env` only skips the call.
        overlay = interpolator.apply(override, ("environments", env)) if env else {}  # pragma: no mutate
    except UnsetVariable as exc:
        masker = Masker(interpolator.secrets)
        return None, _format([Problem(exc.path, exc.message)], document, None, masker), masker, {}
    masker = Masker(interpolator.secrets)
    merged = _deep_merge(base, overlay)
    merged["environments"] = data.get("environments") or {}
    problems = list(_text_problems(merged, masker))
    try:
        config = Config.model_validate(merged, context={MASKER: masker})
    except ValidationError as exc:
        # Report the schema's problems too, but not a second one where a text problem stands.
        seen = [p.path for p in problems]
        problems += [
            p
            for p in (_problem(e, masker) for e in exc.errors())
            if not any(p.path[: len(s)] == s for s in seen)
        ]
        return None, _format(problems, document, env, masker), masker, {}
    if problems:
        return None, _format(problems, document, env, masker), masker, {}
    problems = check(config, document.file.parent)
    if env:
        problems += image_override_problems(config, override, env, data)
    if problems:
        return None, _format(problems, document, env, masker), masker, {}
    return config, [], masker, interpolator.reads


def _secret_variables(data: dict[str, Any]) -> frozenset[str]:
    """Every variable a `secrets:` entry (base or any environment) reads: ``name`` and ``from_env``;
    and the registry password's variable.

    Taken from the raw document, before validation, so that a value is masked even in
    the error that says its entry is wrong.
    """
    envs = data.get("environments")
    blocks = [data, *(b for b in envs.values() if isinstance(b, dict))] if isinstance(envs, dict) else [data]
    names = set(ALWAYS_SECRET)
    for block in blocks:
        entries = block.get("secrets")
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict):
                names.update(v for k, v in entry.items() if k in ("name", "from_env") and isinstance(v, str))
        # The registry password a deploy reads (image.registry_auth.password_env) is a secret too.
        image = block.get("image")
        auth = image.get("registry_auth") if isinstance(image, dict) else None
        password = auth.get("password_env") if isinstance(auth, dict) else None
        if isinstance(password, str):
            names.add(password)
    return frozenset(names)


def _text_problems(data: Any, masker: Masker, path: PathKey = ()) -> Iterator[Problem]:
    """Control, format and invisible characters anywhere (keys too); env values may span lines."""
    if isinstance(data, dict):
        for key, value in data.items():
            bad = hidden_char(key)
            if bad:
                yield Problem((*path, key), f"key contains a newline, control or invisible character ({bad})")
            else:
                yield from _text_problems(value, masker, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _text_problems(value, masker, (*path, index))
    elif isinstance(data, str):
        bad = first_control(data, FORBIDDEN_CHARS) if _is_env_value(path) else hidden_char(data)
        if bad:
            shown = quoted(masker.reference(data))
            yield Problem(path, f"{shown} contains a newline, control or invisible character ({bad})")


def _is_env_value(path: PathKey) -> bool:
    """Endpoint env values may span lines (a PEM certificate); nothing else may."""
    if path[:1] == ("environments",):
        path = path[2:]
    return len(path) == 3 and path[:2] == ("endpoint", "env")


def _loaded(
    document: YamlDocument,
    env: str | None,
    config: Config,
    masker: Masker,
    reads: Mapping[PathKey, SecretReads],
) -> LoadedConfig:
    return LoadedConfig(
        path=document.file,
        environment=env,
        config=config,
        document=document,
        masker=masker,
        warnings=tuple(_format(warnings(config), document, env, masker)),
        reads=reads,
    )


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


def _problem(error: ErrorDetails, masker: Masker) -> Problem:
    loc: PathKey = tuple(part for part in error["loc"] if part not in UNION_TAGS)
    kind = error["type"]
    if kind == "missing":
        return Problem(loc, "required")
    if kind == "extra_forbidden":
        return Problem(loc, "unknown key" + _suggest(str(loc[-1]), _allowed_keys(Config, loc[:-1])))
    if kind in _MAPPING_TYPES:
        # Pydantic's text names the model class ("... instance of EndpointConfig").
        return Problem(loc, f"must be a mapping of keys to values, got {_kind(error.get('input'))}")
    message = error["msg"].removeprefix("Value error, ")
    message = message.replace("Input should be", "must be")
    # Pydantic's other "Input ..." messages are for dates, times and strict modes, which no config
    # field uses: a guard for later fields (its mutants are equivalent today).
    message = message.replace("Input", "value")  # pragma: no mutate
    value = error.get("input")
    if kind == "string_type" and value is None:
        message = "must be a string (write '' for an empty value)"
    elif kind == "string_type":
        message = "must be a string: quote the value, and drop any !! tag"
    elif kind != "value_error" and isinstance(value, str | int | float | bool):
        message += f" (got {quoted(masker.reference(str(value)))})"
    return Problem(loc, message)


#: Pydantic error types that mean "a mapping was expected here".
_MAPPING_TYPES = frozenset({"model_type", "dict_type", "model_attributes_type"})


def _kind(value: Any) -> str:
    """What YAML wrote, in YAML's words (the loader gives str, list, dict or None)."""
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    return "a text value" if isinstance(value, str) else type(value).__name__


def _suggest(key: str, allowed: Iterable[str]) -> str:
    # Equivalent mutants: only the best match is used and 0.6 is difflib's default cutoff.
    match = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)  # pragma: no mutate
    return f" (did you mean {match[0]!r}?)" if match else ""


def _allowed_keys(model: type[BaseModel], loc: PathKey) -> list[str]:
    """The keys a mapping at ``loc`` accepts, for "did you mean" suggestions."""
    target: Any = model
    for part in loc:
        target = _step(target, part)
        if target is None:
            return []
    target = _unwrap(target)
    # Equivalent mutant ("or"): pydantic reports unknown keys only on models, so the target
    # reached here is always a model class.
    if isinstance(target, type) and issubclass(target, BaseModel):  # pragma: no mutate
        return [f.alias or name for name, f in target.model_fields.items()]
    return []


def _step(annotation: Any, part: str | int) -> Any:
    # Equivalent mutants ("and" to "or" below): pydantic's error locations mirror the types,
    # so a str part only follows a model or a dict and an int part only follows a list.
    annotation = _unwrap(annotation)
    is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)  # pragma: no mutate
    if is_model and isinstance(part, str):  # pragma: no mutate
        for name, info in annotation.model_fields.items():
            if part in (name, info.alias):
                return info.annotation
        return None
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is list and isinstance(part, int):  # pragma: no mutate
        return args[0]
    # No model field is a dict of models, so no unknown key lies under a dict: this branch only
    # keeps suggestions right should one appear (its mutants are equivalent today).
    if origin is dict and isinstance(part, str):  # pragma: no mutate
        return args[1]  # pragma: no mutate
    return None


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated[...]`` and ``X | None`` down to X."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            # Equivalent mutants: no model-typed field is Annotated, so what an Annotated
            # leaf unwraps to never reaches a model lookup.
            annotation = typing.get_args(annotation)[0]  # pragma: no mutate
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            # A union of a value and a model (a volume id or a volume): the model has the keys.
            annotation = next((m for m in members if _is_model(_unwrap(m))), members[0])
        else:
            return annotation


def _format(problems: list[Problem], document: YamlDocument, env: str | None, masker: Masker) -> list[str]:
    """One ``file:line: path: message`` line per problem; secret values shown as ``${NAME}``."""
    lines = []
    for problem in problems:
        path = _source_path(document, problem.path, env)
        # No problem is at the root today (each names a key), so the `else` is never taken and
        # its mutants are equivalent; kept for a future model-level validator (loc ()).
        label = f"{dotted(path)}: " if path else ""  # pragma: no mutate
        message = problem.message
        if problem.also is not None:
            also = _source_path(document, problem.also, env)
            message += f" ({dotted(also)} is at {document.where(also)})"
        lines.append(masker.reference(f"{document.where(path)}: {label}{message}"))
    return list(dict.fromkeys(lines))  # one fault seen twice (merged and as written) is one line


def _source_path(document: YamlDocument, path: PathKey, env: str | None) -> PathKey:
    """Where in the file ``path`` of the merged config was written.

    The environment's override when the merge took the value at ``path`` from it (it
    set the key, or replaced a mapping above it), so the message points at the line to fix.
    """
    # A path under environments: is where it was written already. Only a shortcut: the walk
    # below finds the same (no overlay can hold environments:), so its mutants are equivalent.
    if env is None or path[:1] == ("environments",):  # pragma: no mutate
        return path
    base: Any = document.data
    overlay: Any = (document.data.get("environments") or {}).get(env)
    for part in path:
        if not isinstance(overlay, dict) or part not in overlay:
            return path  # the base config (or a default) set it
        overlay = overlay[part]
        base = base.get(part)  # a mapping: the walk stops below where either side is not one
        if not (isinstance(overlay, dict) and isinstance(base, dict)):
            break  # the override replaced everything below here
    return ("environments", env, *path)


def _duplicate_endpoint_names(loaded: list[LoadedConfig], document: YamlDocument) -> list[str]:
    owners: dict[str, str] = {}
    problems: list[str] = []
    for item in loaded:
        if item.environment is None:
            # With environments, the base config is a template, not a deploy target; without
            # them it is the only target, so it can clash with nothing.
            continue
        name = item.config.endpoint_name(item.environment)
        if name in owners:
            path: PathKey = ("environments", item.environment)
            problems.append(
                item.masker.reference(
                    f"{document.where(path)}: {dotted(path)}: deploys endpoint {name!r}, "
                    f"like environment {owners[name]} (set a distinct endpoint.name)"
                )
            )
        owners.setdefault(name, item.environment)
    return problems
