"""Validation cases: RunPod Hub's ``.runpod/tests.json`` read as the Hub reads it, the extended
cases under ``tests:`` in rpdeploy.yaml, and the Hub's ``.runpod/hub.json`` endpoint settings.

Hub files in the wild are not all strict JSON (worker-vllm's has a trailing comma, and the Hub
lists it), so a file that strict JSON refuses is read again with `json5` (a JSON superset:
trailing commas, comments, single quotes), with a warning naming the file and the position
strict JSON stopped at. json5 is kept to that second try because it is slow (about 3 s for a
63 KB file, where `json` takes milliseconds). What neither reads is one `CasesError` naming the
file, line and column.

Shapes accepted (all found in real repositories): ``{"tests": [...], "config": {...}}``, a
top-level array of tests, no ``tests`` key (nothing to run), a ``config`` inside each test,
tests without a name or a timeout, timeouts under 1000 (seconds, by every sign), and HTTP-style
checks without ``input`` (skipped with a warning: they are not job tests).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import json5
from pydantic import ValidationError

from deploy.config.mask import Masker
from deploy.config.schema import CaseConfig, CaseExpect
from deploy.errors import ExitCode, RpdeployError
from deploy.runpod.text import hidden_char

if TYPE_CHECKING:
    from deploy.config.load import LoadedConfig

#: rpdeploy's own ceiling for one case: a validation job longer than a day is a mistake.
MAX_TIMEOUT_MS = 86_400_000
#: A Hub timeout below this is taken as seconds (worker-vllm-2 writes 600 for ten minutes).
SECONDS_BELOW = 1000
#: Largest case file read: the job API takes at most 20 MB per request.
MAX_FILE_BYTES = 20 * 1024 * 1024
#: Keys a Hub test may carry that rpdeploy reads (the rest are reported and ignored, as the Hub does).
TEST_KEYS = frozenset(
    {
        "name",
        "input",
        "timeout",
        "config",
        "description",
        "expect",
        "mode",
        "expected_output",
        "expected_output_keys",
    }
)

__all__ = [
    "Case",
    "CaseSet",
    "CasesError",
    "HubSettings",
    "load_cases",
    "read_hub",
    "read_tests_file",
    "require_cases",
]


class CasesError(RpdeployError):
    """A case file cannot be read or a case is invalid: one line naming file and case."""

    exit_code = ExitCode.USAGE


@dataclass(frozen=True)
class Case:
    """One validation job: what to send and what the answer must be."""

    name: str
    #: The test's ``input`` as written; `deploy.api.jobs.request_body` wraps it as the SDK does.
    payload: Any
    timeout_ms: int
    mode: Literal["run", "runsync"] = "run"
    expect: CaseExpect = field(default_factory=CaseExpect)
    #: ``worker/tests.json: tests[2]`` or ``rpdeploy.yaml: tests.cases[0]``.
    source: str = ""
    #: The Hub ``config`` that applies (the test's own, else the file's): GPU, env, CUDA.
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CaseSet:
    """The cases of one validation run, with what reading them found and the secrets to mask."""

    cases: list[Case]
    warnings: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    #: The file-level Hub ``config`` block (empty when there is none).
    config: dict[str, Any] = field(default_factory=dict)
    masker: Masker = field(default_factory=Masker, repr=False)

    def mask(self, text: str) -> str:
        return self.masker.text(text)


# -- reading JSON as the Hub does ---------------------------------------------------------


def read_json(path: Path, shown: str, *, missing_hint: str | None = None) -> tuple[Any, list[str]]:
    """The JSON in ``path`` (strict, else json5) and a warning when it was not strict JSON;
    ``missing_hint`` says where the path came from when the file does not exist."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise CasesError(f"{shown}: no such file", hint=missing_hint) from None
    except OSError as exc:
        raise CasesError(f"{shown}: cannot read: {exc.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise CasesError(f"{shown}: {len(raw):,} bytes, more than the job API's 20 MB limit")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CasesError(f"{shown}: not UTF-8 (byte {exc.start})") from None
    try:
        data, warnings = json.loads(text), []
    except json.JSONDecodeError as strict:
        where = f"{shown}:{strict.lineno}:{strict.colno}"
        try:
            data = json5.loads(text)
        except ValueError:
            raise CasesError(f"{where}: not JSON: {strict.msg}", hint=_broken_hint(text)) from None
        warnings = [f"{where}: not strict JSON ({strict.msg}); read leniently, as the Hub does"]
    bad = _non_finite(data)
    if bad is not None:
        # NaN, Infinity and numbers past a double's range (1e400) parse as floats here but are
        # not JSON: the job API cannot be sent them, and no timeout can be infinite.
        raise CasesError(
            f"{shown}: {bad or 'the document'}: a number that is not finite (NaN, Infinity or out of range)"
        )
    return data, warnings


def _non_finite(value: Any, path: str = "") -> str | None:
    """The dotted path of the first non-finite number in ``value`` ("" for the top), else None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else path
    items: Any = ()
    if isinstance(value, dict):
        items = ((f"{path}.{key}" if path else str(key), item) for key, item in value.items())
    elif isinstance(value, list):
        items = ((f"{path}[{index}]", item) for index, item in enumerate(value))
    for where, item in items:
        found = _non_finite(item, where)
        if found is not None:
            return found
    return None


def _broken_hint(text: str) -> str:
    if "\n" not in text.strip() and "\\n" in text:
        # Seen in real repositories: a file written with backslash-n pairs for its line breaks.
        return "the file holds literal \\n pairs instead of line breaks: replace them with real ones"
    return "no JSON reader (the Hub's included) can read this file: fix it at that position"


# -- Hub tests.json -----------------------------------------------------------------------


def read_tests_file(
    path: Path,
    *,
    shown: str | None = None,
    default_timeout_ms: int = 300000,
    missing_hint: str = "check the path given with --cases",
) -> CaseSet:
    """The cases in a Hub tests.json (or a file of the same form with ``expect``/``mode`` keys)."""
    shown = shown or str(path)
    data, warnings = read_json(path, shown, missing_hint=missing_hint)
    tests, config = _tests_and_config(data, shown, warnings)
    cases: list[Case] = []
    for index, entry in enumerate(tests):
        case = _hub_case(
            entry, index, shown=shown, config=config, default_timeout_ms=default_timeout_ms, warnings=warnings
        )
        if case is not None:
            cases.append(case)
    return CaseSet(cases=_unique_names(cases, warnings), warnings=warnings, sources=[shown], config=config)


def _tests_and_config(data: Any, shown: str, warnings: list[str]) -> tuple[list[Any], dict[str, Any]]:
    if isinstance(data, list):  # the older test-runner form, still in use
        return data, {}
    if not isinstance(data, dict):
        raise CasesError(f"{shown}: the top level must be an object with 'tests' or an array of tests")
    config = data.get("config")
    config = {} if config is None else config
    if not isinstance(config, dict):
        raise CasesError(f"{shown}: config must be an object")
    extra = sorted(set(data) - {"tests", "config"})
    if extra:
        warnings.append(f"{shown}: ignored top-level key(s) {', '.join(extra)} (not part of the Hub format)")
    if "tests" not in data:
        warnings.append(f"{shown}: no 'tests' key: the file defines no cases")
        return [], config
    tests = data["tests"]
    if not isinstance(tests, list):
        raise CasesError(f"{shown}: tests must be an array")
    return tests, config


def _hub_case(
    entry: Any,
    index: int,
    *,
    shown: str,
    config: dict[str, Any],
    default_timeout_ms: int,
    warnings: list[str],
) -> Case | None:
    where = f"{shown}: tests[{index}]"
    if not isinstance(entry, dict):
        raise CasesError(f"{where}: a test must be an object")
    name = entry.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise CasesError(f"{where}: name must be a non-empty string")
    hidden = hidden_char(name) if isinstance(name, str) else None
    if hidden is not None:
        # A name is printed on one line of a CI log: a line break could fake a PASS line.
        raise CasesError(f"{where}: name holds {hidden}, a character that does not show: one line of text")
    name = (name or f"test {index + 1}").strip()
    where = f"{where} ({name!r})"
    if "input" not in entry:
        warnings.append(f"{where}: no 'input', so not a job test (an HTTP check?): skipped")
        return None
    extra = sorted(set(entry) - TEST_KEYS)
    if extra:
        warnings.append(f"{where}: ignored key(s) {', '.join(extra)}")
    own = entry.get("config")
    if own is not None and not isinstance(own, dict):
        raise CasesError(f"{where}: config must be an object")
    return Case(
        name=name,
        payload=entry["input"],
        timeout_ms=_timeout(entry.get("timeout"), where, default_timeout_ms, warnings),
        mode=_mode(entry.get("mode", "run"), where),
        expect=_expect(entry, where),
        source=f"{shown}: tests[{index}]",
        config=own if own is not None else config,
    )


def _timeout(value: Any, where: str, default_ms: int, warnings: list[str]) -> int:
    if value is None:
        return default_ms
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_TIMEOUT_MS:
        raise CasesError(
            f"{where}: timeout must be a positive number of milliseconds up to {MAX_TIMEOUT_MS}"
            f" (24 h), not {json.dumps(value)}"
        )
    if value < SECONDS_BELOW:
        warnings.append(f"{where}: timeout {value:g} is under one second as ms: read as {value:g} s")
        return int(value * 1000)
    return int(value)


def _mode(value: Any, where: str) -> Literal["run", "runsync"]:
    if value == "run":
        return "run"
    if value == "runsync":
        return "runsync"
    raise CasesError(f"{where}: mode must be 'run' or 'runsync', not {value!r}")


def _expect(entry: dict[str, Any], where: str) -> CaseExpect:
    """The case's expectations: ``expect`` (extended), else the keys older runners used."""
    raw: dict[str, Any] = {}
    legacy = entry.get("expected_output")
    if isinstance(legacy, dict) and isinstance(legacy.get("status"), str):  # runpod-test-runner's form
        raw["status"] = legacy["status"]
    keys = entry.get("expected_output_keys")
    if keys is not None:
        raw["output_keys"] = keys
    if "expect" in entry:
        if not isinstance(entry["expect"], dict):
            raise CasesError(f"{where}: expect must be an object")
        raw.update(entry["expect"])
    try:
        expect = CaseExpect.model_validate(raw)
    except ValidationError as exc:
        raise CasesError(f"{where}: expect: {_first_problem(exc)}") from None
    if entry.get("mode") == "runsync" and expect.min_stream_chunks is not None:
        raise CasesError(f"{where}: min_stream_chunks reads /stream, which needs mode 'run'")
    return expect


def _first_problem(exc: ValidationError) -> str:
    problem = exc.errors()[0]
    at = ".".join(str(part) for part in problem["loc"])
    message = str(problem["msg"]).removeprefix("Value error, ")
    return f"{at}: {message}" if at else message


def _unique_names(cases: list[Case], warnings: list[str]) -> list[Case]:
    """Names identify results (JUnit, the table): a repeated name gets `` #2``, `` #3``."""
    taken = {case.name for case in cases}  # a suffix must not collide with a name given later
    used: set[str] = set()
    unique: list[Case] = []
    for case in cases:
        if case.name not in used:
            used.add(case.name)
            unique.append(case)
            continue
        count = 2
        while f"{case.name} #{count}" in taken | used:
            count += 1
        new = f"{case.name} #{count}"
        used.add(new)
        warnings.append(f"{case.source}: the name {case.name!r} is used before: reported as {new!r}")
        unique.append(replace(case, name=new))
    return unique


# -- rpdeploy.yaml ------------------------------------------------------------------------


def load_cases(loaded: LoadedConfig) -> CaseSet:
    """Every case of a config: its tests file (``tests.path``), then ``tests.cases``."""
    tests = loaded.config.tests
    config_name = loaded.path.name
    path = loaded.root / tests.path
    inline = [
        _inline_case(case, index, config_name, tests.timeout_ms) for index, case in enumerate(tests.cases)
    ]
    explicit = "path" in tests.model_fields_set
    if path.exists() or explicit or not inline:
        found = read_tests_file(
            path,
            shown=tests.path,
            default_timeout_ms=tests.timeout_ms,
            missing_hint="check tests.path in rpdeploy.yaml",
        )
    else:
        found = CaseSet(cases=[])
    names = {case.name: case.source for case in found.cases}
    for case in inline:
        if case.name in names:
            raise CasesError(f"{case.source} ({case.name!r}): the name is already used by {names[case.name]}")
    sources = [*found.sources, f"{config_name}: tests.cases"] if inline else found.sources
    return require_cases(
        CaseSet(found.cases + inline, found.warnings, sources, found.config, loaded.masker), tests.path
    )


def require_cases(found: CaseSet, shown: str) -> CaseSet:
    """``found``, or CasesError when it has no case: validating nothing proves nothing."""
    if not found.cases:
        raise CasesError(
            f"{shown}: no validation cases",
            hint="add tests to the file (RunPod Hub's .runpod/tests.json form) or under tests.cases",
        )
    return found


def _inline_case(case: CaseConfig, index: int, config_name: str, default_timeout_ms: int) -> Case:
    source = f"{config_name}: tests.cases[{index}]"
    expect = case.expect
    if isinstance(expect.output, str | dict | list):
        expect = expect.model_copy(update={"output": typed(expect.output)})
    return Case(
        name=case.name,
        payload=typed(case.input),
        timeout_ms=case.timeout_ms or default_timeout_ms,
        mode=case.mode,
        expect=expect,
        source=source,
    )


_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")


def typed(value: Any) -> Any:
    """A job input or output written in rpdeploy.yaml, with JSON's types back.

    The config loader keeps every YAML scalar as the text typed (so that a version stays
    "3.10"); a job input needs numbers and booleans. A string holding a JSON object or array
    is that JSON (exact: write the input as JSON text when a string must look like a number);
    otherwise scalars are read by YAML 1.2's core rules (``true``, ``5``, ``0.5``).
    """
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in ("{", "["):
            try:
                return json.loads(stripped)
            except json.JSONDecodeError:
                return value
        return _scalar(value)
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    return value


def _scalar(text: str) -> Any:
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


# -- Hub hub.json -------------------------------------------------------------------------


@dataclass(frozen=True)
class HubSettings:
    """The endpoint settings a Hub ``hub.json`` gives (for `rpdeploy init`)."""

    title: str | None = None
    runs_on: str | None = None
    endpoint_type: str = "QUEUE"
    container_disk_gb: int | None = None
    cpu_flavor: str | None = None
    gpu_count: int | None = None
    #: Pools and GPU names; a ``-`` prefix excludes one. A comma string or a list in the file.
    gpu_ids: list[str] = field(default_factory=list)
    allowed_cuda_versions: list[str] = field(default_factory=list)
    #: Static values and the defaults of user inputs (None: no default).
    env: dict[str, Any] = field(default_factory=dict)
    presets: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def read_hub(path: Path, *, shown: str | None = None) -> HubSettings:
    """The endpoint settings of a hub.json; files not in the Hub's schema give warnings, not errors."""
    shown = shown or str(path)
    data, warnings = read_json(path, shown)
    if not isinstance(data, dict):
        raise CasesError(f"{shown}: the top level must be an object")
    config = data.get("config")
    if not isinstance(config, dict):
        warnings.append(
            f"{shown}: no 'config' object: not the Hub's hub.json schema, no endpoint settings read"
        )
        config = {}
    env, env_warnings = _hub_env(config.get("env"), shown)
    presets = config.get("presets")
    return HubSettings(
        title=_text(data.get("title") or data.get("name")),
        runs_on=_text(config.get("runsOn")),
        endpoint_type="LOAD_BALANCER" if config.get("endpointType") == "LB" else "QUEUE",
        container_disk_gb=_int(config.get("containerDiskInGb")),
        cpu_flavor=_text(config.get("cpuFlavor")),
        gpu_count=_int(config.get("gpuCount")),
        gpu_ids=_id_list(config.get("gpuIds")),
        allowed_cuda_versions=[
            str(v) for v in config.get("allowedCudaVersions") or [] if isinstance(v, str | int | float)
        ],
        env=env,
        presets=[p for p in presets if isinstance(p, dict)] if isinstance(presets, list) else [],
        warnings=warnings + env_warnings,
    )


def _hub_env(entries: Any, shown: str) -> tuple[dict[str, Any], list[str]]:
    env: dict[str, Any] = {}
    warnings: list[str] = []
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        key = entry.get("key") if isinstance(entry, dict) else None
        if not isinstance(key, str):
            warnings.append(f"{shown}: config.env[{index}]: no 'key': ignored")
            continue
        if "value" in entry:
            env[key] = entry["value"]
        else:
            spec = entry.get("input")
            env[key] = spec.get("default") if isinstance(spec, dict) else None
    return env, warnings


def _id_list(value: Any) -> list[str]:
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else []
    return [str(item).strip() for item in items if str(item).strip()]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
