"""The pydantic schema of ``rpdeploy.yaml``.

rpdeploy's own sections use snake_case. The ``endpoint`` section uses RunPod REST v2
vocabulary and spelling (``idleTimeout``, ``allowedCudaVersions``, …) so that values
can be copied from RunPod's docs unchanged. Structural rules (types, patterns,
unknown keys) live here; rules that relate several fields live in
`deploy.config.rules`, where each problem can name its exact path.
"""

from __future__ import annotations

import re
import shlex
from functools import partial
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from deploy.config.patterns import (
    RELATIVE_PATH,
    AptPackage,
    ContainerPath,
    CudaVersion,
    EndpointName,
    EnvName,
    ImageRef,
    Name,
    Port,
    PyModule,
    RegistryHost,
    RelativePath,
    Repository,
    SecretName,
    SingleLine,
    shown,
)
from deploy.config.runtime_bounds import MOST_MB


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo must never be silently ignored."""

    # allow_inf_nan: `.inf`/`nan` are not JSON and no RunPod setting means them.
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False, allow_inf_nan=False)


class RunPodModel(StrictModel):
    """Models spelled like RunPod's REST v2 JSON (camelCase keys)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=False, allow_inf_nan=False
    )


# --- image ---------------------------------------------------------------------------


class RegistryAuth(StrictModel):
    """Where a private registry's credentials come from at deploy time (GitHub secrets in CI)."""

    username_env: EnvName = Field(description="Process variable holding the registry user name.")
    password_env: EnvName = Field(description="Process variable holding the registry password or token.")


class ImageConfig(StrictModel):
    registry: RegistryHost = Field(description="Registry host the image is pushed to, e.g. ghcr.io.")
    repository: Repository = Field(description="Repository path inside the registry, e.g. acme/echo-worker.")
    base: ImageRef = Field(description="Base image. Must already contain Python 3.11.")
    strategy: Literal["slim", "baked"] = Field(
        default="slim",
        description="slim: the image holds Python, the bootstrap and the handler; dependencies are "
        "provisioned at cold start. baked: dependencies are installed into the image.",
    )
    system_packages: list[AptPackage] = Field(
        default_factory=list, description="Debian packages (needs a base image with apt)."
    )
    max_compressed_mb: float | None = Field(
        default=None, gt=0, description="Fail the push when the compressed image is larger."
    )
    builder: Literal["auto", "docker", "buildx"] = "auto"
    latest: bool = Field(default=False, description="Also tag `latest`. Deploys never use it.")
    workdir: ContainerPath = Field(default="/app", description="Where the handler code lives in the image.")
    registry_auth: RegistryAuth | None = Field(
        default=None,
        description="Credentials RunPod's workers pull the image with (a private registry): the names of "
        "the process variables holding them at deploy time, never the values.",
    )


# --- runtime -------------------------------------------------------------------------


#: Longest URL a setting may hold: Apache httpd's default LimitRequestLine (8190 bytes), so a
#: request for it fits the request line of common servers; far below the 128 KiB a process
#: takes for one env entry (`deploy.runpod.text.ENV_ENTRY_MAX_BYTES`), which render would
#: otherwise report under endpoint.env instead of here.
MAX_URL: Final = 8190
#: S3 object keys are at most 1024 bytes (AWS S3 docs, "Naming Amazon S3 objects"); the archive's
#: key is the prefix plus a 64-hex environment key and ``.tar.gz``.
MAX_S3_PREFIX: Final = 1024 - 64 - len(".tar.gz")


def _text_rule(pattern: re.Pattern[str], what: str, most: int, value: str, info: ValidationInfo) -> str:
    # Not the length itself: a value interpolated from a secret would tell the secret's length.
    if len(value) > most:
        raise ValueError(f"{shown(value, info)} is too long: at most {most} characters")
    if not pattern.fullmatch(value):
        raise ValueError(f"{shown(value, info)} is not {what}")
    return value


def _text(pattern: str, what: str, most: int) -> AfterValidator:
    """A text rule with its own message (pydantic's would print the regex)."""
    # ASCII, so that a class such as \w or \d never takes in other scripts' letters or digits.
    compiled = re.compile(pattern, re.ASCII)  # pragma: no mutate - runs once, at import
    return AfterValidator(partial(_text_rule, compiled, what, most))  # pragma: no mutate


#: pip's and uv's ``--index-url``: an http(s) or file URL, or an absolute local folder (pip docs:
#: "a repository compliant with PEP 503 ... or a local directory laid out in the same format").
#: Empty is "no index" (`RuntimeConfig._empty_is_none`).
IndexUrl = Annotated[
    SingleLine,
    _text(r"(?:(?:https?|file)://[!-~]+|/[!-~]*)?", "an http(s) or file URL or an absolute folder", MAX_URL),
]
EndpointUrl = Annotated[SingleLine, _text(r"https?://[!-~]+", "an http(s) URL", MAX_URL)]
#: A region is one field of SigV4's ``date/region/s3/aws4_request`` scope: a ``/`` or a space
#: would break the scope or the ``Authorization`` header (us-east-1, us-west-004, auto, fr-par).
Region = Annotated[
    SingleLine,
    _text(r"[A-Za-z0-9][A-Za-z0-9._-]*", "a region name (letters, digits, '.', '_', '-': us-east-1)", 63),
]
#: Shaped like a relative path (no leading ``/``, no ``..``), but an S3 key, not a file: no
#: NAME_MAX per part, the key's own limit instead.
S3Prefix = Annotated[str, _text(RELATIVE_PATH.pattern, "a relative key prefix (no '..')", MAX_S3_PREFIX)]


class S3Archive(StrictModel):
    """A prebuilt dependency archive on S3-compatible storage (e.g. Backblaze B2)."""

    bucket: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
    prefix: S3Prefix = "rpdeploy/envs/"
    endpoint_url: EndpointUrl | None = None
    region: Region | None = None


class DiskThresholds(StrictModel):
    """Free-space floors checked at cold start, so failures are explained, not cryptic.

    MB, 0 to `MOST_MB`: the bootstrap's own bounds for the variables they become
    (RPDEPLOY_MIN_FREE_OS_MB, RPDEPLOY_MIN_FREE_VOLUME_MB; `deploy.config.runtime_bounds`)."""

    min_free_os_mb: int = Field(default=512, ge=0, le=MOST_MB)
    min_free_volume_mb: int = Field(default=2048, ge=0, le=MOST_MB)


class RuntimeConfig(StrictModel):
    requirements: RelativePath = Field(description="Requirements or lock file of the worker's dependencies.")
    installer: Literal["pip", "uv"] = "pip"
    index_url: IndexUrl | None = Field(
        default=None,
        description="Package index for installs (baked builds and cold-start provisioning): an http(s) "
        "or file URL, or an absolute folder.",
    )
    volume_path: ContainerPath = Field(
        default="/runpod-volume", description="Where the network volume mounts."
    )
    s3: S3Archive | None = None
    disk: DiskThresholds = Field(default_factory=DiskThresholds)

    @field_validator("index_url")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        # `${RPDEPLOY_INDEX_URL:-}` interpolates to "" when unset: that means "no index".
        return value or None


# --- handler -------------------------------------------------------------------------


class HandlerConfig(StrictModel):
    path: RelativePath = Field(default="worker", description="Directory copied into the image.")
    file: RelativePath = Field(default="handler.py", description="Handler file, relative to `path`.")
    module: PyModule | None = Field(default=None, description="Import path, if started with `python -m`.")
    command: SingleLine | None = Field(
        default=None, description="Start command. Default: python -u <workdir>/<file>."
    )

    @field_validator("command")
    @classmethod
    def _splittable(cls, value: str | None) -> str | None:
        # Render splits the command into the exec-form CMD; fail here, with the file line.
        if value is None:
            return None
        try:
            words = shlex.split(value)
        except ValueError as exc:
            raise ValueError(
                f"cannot be split into arguments ({exc}): check quotes and a trailing '\\'"
            ) from None
        if not words:
            raise ValueError("is empty (omit it to use the default start command)")
        found = shell_syntax(value)
        if found:
            raise ValueError(
                f"uses shell syntax ({found}), but the image's CMD is exec form and no shell runs it:"
                " write plain arguments, or run a shell yourself"
                """ (command: "sh -c 'cd app && python3 -u handler.py'") or a wrapper script"""
            )
        return value


#: Characters a shell treats as operators when they are not quoted.
_SHELL_OPERATORS = frozenset("|&;<>()`")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def shell_syntax(command: str) -> str | None:
    """The first piece of ``command`` a shell would act on (``&&``, ``| tee``, ``> f``,
    ``$HOME``, `` `x` ``, ``# c``, ``~/x``, a leading ``A=1``), as exec form would pass it
    literally; None when there is none. Quoted text stays literal in both, so
    ``sh -c 'a && b'`` is fine. Single quotes hide everything, double quotes all but
    ``$`` and backticks, and a backslash its next character (POSIX quoting).
    """
    if _ASSIGNMENT.match(command.lstrip()):
        return f"the variable assignment {command.partition('=')[0].strip()!r}="
    quote, escaped, word_start = "", False, True
    for char in command:
        if escaped:
            escaped, word_start = False, False
            continue
        if quote and char == quote:
            quote = ""  # pragma: no mutate (None would do: quote is only tested for truth and equality)
        elif quote == "'":
            pass  # single quotes hide everything, a backslash too
        elif char == "\\":
            escaped = True
        elif char in "$`":
            return f"{char!r}"
        elif quote:
            pass  # double quotes hide all but `$`, backticks and a backslash
        elif char in "'\"":
            quote = char
        elif char in _SHELL_OPERATORS or (word_start and char in "#~"):
            return f"{char!r}"
        word_start = char in " \t"
    return None


# --- endpoint (RunPod REST v2 vocabulary) ---------------------------------------------


class GpuConfig(RunPodModel):
    pools: Annotated[list[Annotated[str, Field(pattern=r"^[A-Z0-9_]+$")]], Field(min_length=1)]
    excluded_types: list[SingleLine] = Field(default_factory=list)
    count: int = Field(default=1, ge=1)
    allowed_cuda_versions: list[CudaVersion] | None = None
    min_cuda_version: CudaVersion | None = None


class CpuConfig(RunPodModel):
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
    vcpu_count: int = Field(ge=2)

    @field_validator("vcpu_count")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value & (value - 1):
            raise ValueError(f"must be a power of two, got {value}")
        return value


class WorkersConfig(RunPodModel):
    min: int = Field(default=0, ge=0)
    max: int = Field(default=3, ge=0)
    idle_timeout: int = Field(default=5, ge=1, le=3600)


class ScalingConfig(RunPodModel):
    type: Literal["QUEUE_DELAY", "REQUEST_COUNT"] = "QUEUE_DELAY"
    queue_delay: float | None = Field(default=None, ge=0.5)
    request_count: int | None = Field(default=None, ge=1)


FlashBoot = Literal["OFF", "FLASHBOOT", "PRIORITY_FLASHBOOT"]


class NetworkVolumeConfig(RunPodModel):
    """A network volume rpdeploy creates when missing (`POST /v2/network-volumes`) and attaches by id.

    RunPod names are not unique, so rpdeploy looks it up as ``<project>/<name>``: two
    projects never share a volume by accident.
    """

    name: Name = Field(description="Volume name inside the project (RunPod sees <project>/<name>).")
    size: int = Field(ge=10, le=4096, description="GB. RunPod can grow a volume, never shrink it.")
    data_center: Annotated[str, Field(pattern=r"^[A-Za-z0-9-]+$")] = Field(
        description="Data center, e.g. EU-RO-1: workers using the volume run only there."
    )
    type: Literal["STANDARD", "HIGH_PERFORMANCE"] | None = None


#: Tags of the union members below; they appear in pydantic's error locations, which the
#: loader drops (an error names ``networkVolumes[0].size``, not a member of a union).
UNION_TAGS: frozenset[str] = frozenset({"by-id", "by-name"})


def _volume_kind(value: Any) -> str:
    # A mapping is a volume by name; anything else is checked as an id (and fails as one).
    return "by-name" if isinstance(value, dict | NetworkVolumeConfig) else "by-id"


#: A network volume: the id of one that exists (created elsewhere), or one rpdeploy manages by name.
VolumeEntry = Annotated[
    Annotated[Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$")], Tag("by-id")]
    | Annotated[NetworkVolumeConfig, Tag("by-name")],
    Discriminator(_volume_kind),
]


class EndpointConfig(RunPodModel):
    name: EndpointName | None = Field(
        default=None, description="Endpoint name. Default: the project name (plus -<environment>)."
    )
    type: Literal["QUEUE", "LOAD_BALANCER"] = "QUEUE"
    gpu: GpuConfig | None = None
    cpu: Annotated[list[CpuConfig], Field(min_length=1)] | None = None
    workers: WorkersConfig = Field(default_factory=WorkersConfig)
    scaling: ScalingConfig = Field(default_factory=lambda: ScalingConfig(type="QUEUE_DELAY", queueDelay=4))
    timeout: int = Field(default=300000, ge=1000, description="Per-request execution timeout, ms.")
    flashboot: FlashBoot = "OFF"
    network_volumes: list[VolumeEntry] = Field(
        default_factory=list,
        description="Volume ids, or volumes by name, size and dataCenter (created when missing).",
    )
    data_center_ids: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9-]+$")]] = Field(default_factory=list)
    disk: int | None = Field(default=None, ge=1, description="Container disk, GB.")
    env: dict[EnvName, str] = Field(default_factory=dict)
    ports: list[Port] = Field(default_factory=list)
    registry: SingleLine | None = Field(default=None, description="RunPod registry credential id.")

    def volume_ids(self) -> list[str]:
        """The volumes given by id; those given by name get theirs at deploy time."""
        return [volume for volume in self.network_volumes if isinstance(volume, str)]

    def named_volumes(self) -> list[NetworkVolumeConfig]:
        return [volume for volume in self.network_volumes if isinstance(volume, NetworkVolumeConfig)]


# --- secrets -------------------------------------------------------------------------


class SecretConfig(StrictModel):
    """One environment variable whose value is a secret (e.g. AWS_SECRET_ACCESS_KEY)."""

    name: EnvName = Field(description="Environment variable the worker reads, e.g. AWS_ACCESS_KEY_ID.")
    mode: Literal["runpod-secret", "inline"] = Field(
        default="runpod-secret",
        description="runpod-secret: env holds {{ RUNPOD_SECRET_<secret> }}, resolved by RunPod at start. "
        "inline: the value is sent in the endpoint env (visible to anyone who can read the endpoint).",
    )
    secret: SecretName | None = Field(
        default=None, description="RunPod secret name. Default: <project>_<name>."
    )
    from_env: EnvName | None = Field(
        default=None, description="Process variable holding the value at deploy time. Default: `name`."
    )


# --- tests ---------------------------------------------------------------------------


JobState = Literal["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"]


def _regex(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
    return value


class OutputCheck(StrictModel):
    """One assertion on the value at ``path`` in the output (dotted keys and list indexes;
    empty: the whole output). Exactly one of ``regex``, ``number`` or ``text``."""

    path: SingleLine = ""
    regex: str | None = Field(
        default=None, description="Python regex searched in the value (JSON text if not a string)."
    )
    number: float | None = Field(
        default=None, description="Expected number; `tolerance` is the allowed absolute error."
    )
    tolerance: float = Field(default=0.0, ge=0)
    text: str | None = Field(default=None, description="Expected free text (speech, OCR, LLM output).")
    max_wer: float | None = Field(default=None, ge=0, description="Highest word error rate against `text`.")
    min_similarity: float | None = Field(
        default=None, ge=0, le=1, description="Lowest character similarity (0..1) to `text`."
    )

    @field_validator("regex")
    @classmethod
    def _check_regex(cls, value: str | None) -> str | None:
        return _regex(value)

    @model_validator(mode="after")
    def _one_kind(self) -> OutputCheck:
        kinds = [name for name in ("regex", "number", "text") if getattr(self, name) is not None]
        if len(kinds) != 1:
            raise ValueError("give exactly one of regex, number or text")
        if self.text is not None and self.max_wer is None and self.min_similarity is None:
            raise ValueError("text needs max_wer or min_similarity")
        return self


class CaseExpect(StrictModel):
    """What a validation case requires of its job."""

    status: JobState = Field(default="COMPLETED", description="Final job status; FAILED for negative cases.")
    error: str | None = Field(
        default=None,
        description="Regex the job's error must match (a FAILED job, or an `error` key in the output).",
    )
    output: Any = Field(default=None, description="JSON subset the output must contain.")
    output_keys: list[SingleLine] = Field(
        default_factory=list, description="Keys the output object must have."
    )
    checks: list[OutputCheck] = Field(default_factory=list)
    max_execution_ms: int | None = Field(default=None, ge=0)
    max_delay_ms: int | None = Field(default=None, ge=0)
    max_latency_ms: int | None = Field(
        default=None, ge=0, description="Submit to final status, as seen here."
    )
    min_stream_chunks: int | None = Field(
        default=None, ge=1, description="For generator handlers (read /stream)."
    )

    @field_validator("error")
    @classmethod
    def _check_error(cls, value: str | None) -> str | None:
        return _regex(value)


class CaseConfig(StrictModel):
    """An extended validation case written in rpdeploy.yaml."""

    name: SingleLine
    input: Any = Field(description="The job input (a JSON text or a mapping).")
    timeout_ms: int | None = Field(default=None, ge=1000, description="Default: tests.timeout_ms.")
    mode: Literal["run", "runsync"] = Field(default="run", description="`run` + poll /status, or `runsync`.")
    expect: CaseExpect = Field(default_factory=CaseExpect)

    @model_validator(mode="after")
    def _stream_needs_run(self) -> CaseConfig:
        if self.mode == "runsync" and self.expect.min_stream_chunks is not None:
            raise ValueError("min_stream_chunks reads /stream, which needs mode: run")
        return self


class TestsConfig(StrictModel):
    path: RelativePath = Field(
        default=".runpod/tests.json",
        description="Validation cases: a Hub tests.json, whose tests may also carry `expect` and `mode`.",
    )
    timeout_ms: int = Field(default=300000, ge=1000, description="A case's timeout when it gives none.")
    cases: list[CaseConfig] = Field(default_factory=list, description="Extended cases, run after the file's.")


# --- whole file ----------------------------------------------------------------------


class OverridableSections(StrictModel):
    """The sections an environment may override (not ``version``, ``project`` or
    ``environments``); within them, what shapes the image may not differ (`IMAGE_SHAPING_KEYS`)."""

    image: ImageConfig
    runtime: RuntimeConfig
    handler: HandlerConfig = Field(default_factory=HandlerConfig)
    endpoint: EndpointConfig = Field(default_factory=EndpointConfig)
    secrets: list[SecretConfig] = Field(default_factory=list)
    tests: TestsConfig = Field(default_factory=TestsConfig)


class Config(OverridableSections):
    version: Literal[1] = 1

    @field_validator("version", mode="before")
    @classmethod
    def _version_number(cls, value: Any) -> Any:
        # Plain scalars arrive as the text typed (deploy.config.yaml_source).
        return (
            int(value)
            if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 10
            else value
        )

    project: Name
    environments: dict[Name, dict[str, Any]] = Field(
        default_factory=dict, description="Per-environment overrides of the sections above."
    )

    def runtime_env(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        """The slim bootstrap's run-time settings as endpoint env: ``{variable: (value, config path)}``.

        Every ``runtime:`` setting an environment may change reaches the worker this way, never
        through the image: render puts them into the endpoint env, so the committed Dockerfile
        is the same for every environment of one build (one image, one tag), and ``runtime:`` is
        their one source (an ``endpoint.env`` value or secret that disagrees is a config error,
        `deploy.config.rules`). Values the file leaves out are their defaults, which are the
        bootstrap's own (deploy/runtime/settings.py), so spelling them changes nothing but makes
        the endpoint say what its workers run with. A baked image has no bootstrap: nothing. The
        variables are the ones deploy/runtime/settings.py reads (docs/runtime.md, "Settings").
        """
        if self.image.strategy != "slim":
            return {}
        runtime = self.runtime
        found: dict[str, tuple[str, tuple[str, ...]]] = {
            "RPDEPLOY_VOLUME_PATH": (runtime.volume_path, ("runtime", "volume_path")),
            "RPDEPLOY_INSTALLER": (runtime.installer, ("runtime", "installer")),
            "RPDEPLOY_MIN_FREE_VOLUME_MB": (
                str(runtime.disk.min_free_volume_mb),
                ("runtime", "disk", "min_free_volume_mb"),
            ),
            "RPDEPLOY_MIN_FREE_OS_MB": (
                str(runtime.disk.min_free_os_mb),
                ("runtime", "disk", "min_free_os_mb"),
            ),
        }
        if runtime.index_url:
            found["RPDEPLOY_INDEX_URL"] = (runtime.index_url, ("runtime", "index_url"))
        s3 = runtime.s3
        if s3 is not None:
            found["RPDEPLOY_S3_BUCKET"] = (s3.bucket, ("runtime", "s3", "bucket"))
            found["RPDEPLOY_S3_PREFIX"] = (s3.prefix, ("runtime", "s3", "prefix"))
            if s3.endpoint_url:
                found["AWS_ENDPOINT_URL"] = (s3.endpoint_url, ("runtime", "s3", "endpoint_url"))
            if s3.region:
                found["RPDEPLOY_S3_REGION"] = (s3.region, ("runtime", "s3", "region"))
        return found

    def endpoint_name(self, environment: str | None) -> str:
        if self.endpoint.name:
            return self.endpoint.name
        return f"{self.project}-{environment}" if environment else self.project

    def secret_name(self, secret: SecretConfig) -> str:
        return secret.secret or f"{self.project}_{secret.name}".lower().replace("-", "_")

    def volume_name(self, volume: NetworkVolumeConfig) -> str:
        """The volume's RunPod name: ``<project>/<name>``. Neither part can hold a ``/``, so
        two projects never collide (``a-b`` + ``c`` and ``a`` + ``b-c`` would, joined by ``-``)."""
        return f"{self.project}/{volume.name}"


#: Variables the slim bootstrap reads *before* one that `Config.runtime_env` sets, so that an
#: endpoint.env value or secret of that name would silently win over ``runtime:``
#: (deploy/runtime/settings.py, `s3_settings`: AWS_REGION, then AWS_DEFAULT_REGION, then
#: RPDEPLOY_S3_REGION). Config validation treats them as the setting itself.
RUNTIME_ENV_SHADOWS: Final[dict[str, tuple[str, ...]]] = {
    "RPDEPLOY_S3_REGION": ("AWS_REGION", "AWS_DEFAULT_REGION"),
}

#: The keys that shape the image itself, ``{strategy: {section: keys}}``: the base, its system
#: packages and workdir, the strategy, the handler's files and start command (CMD), the
#: requirements file the Dockerfile COPYs, and for a baked image the installer and the index it
#: installs with at build time (a build argument). Every environment deploys the image of one
#: build under one tag per commit (`rpdeploy release` promotes the same digest), so an
#: environment may not change them (`deploy.config.rules.image_override_problems`): its image
#: would replace another's under the same tag, or it would silently run the other's settings.
#: What only says where the image goes or how it is checked (registry, repository, latest,
#: builder, size budget, pull credentials) stays overridable.
_IMAGE_KEYS: Final = frozenset({"base", "strategy", "system_packages", "workdir"})
IMAGE_SHAPING_KEYS: Final[dict[str, dict[str, frozenset[str]]]] = {
    "slim": {
        "image": _IMAGE_KEYS,
        "handler": frozenset(HandlerConfig.model_fields),
        "runtime": frozenset({"requirements"}),
    },
    "baked": {
        "image": _IMAGE_KEYS,
        "handler": frozenset(HandlerConfig.model_fields),
        "runtime": frozenset({"requirements", "installer", "index_url"}),
    },
}

#: Top-level keys an `environments.<name>` block may set.
OVERRIDABLE: frozenset[str] = frozenset(OverridableSections.model_fields)
