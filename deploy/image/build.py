"""`rpdeploy build`: render, tar the context, build with the engine, tag, record the result.

Builders (``image.builder``):

- ``docker`` — the docker SDK, which drives the engine's legacy builder. Rendered
  Dockerfiles never use BuildKit-only syntax, so it builds every rpdeploy image.
- ``buildx`` — ``docker buildx build`` through a subprocess (BuildKit; the digest comes
  from ``--metadata-file``). Needs the buildx CLI plugin (local-stack.md §6).
- ``auto`` (default) — ``docker``: one code path, on every engine, with per-step cache
  reporting; choose ``buildx`` explicitly to get BuildKit.

Every build runs on the host network, so a package index on loopback (scripts/stack.sh)
is reachable from ``RUN pip install``. The result is written to
``build/rpdeploy/<env>/build.json``, which `rpdeploy push` reads.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import docker.errors
import requests

from deploy.config import LoadedConfig
from deploy.errors import BuildError, EngineError, UsageError
from deploy.gitinfo import read_git, untracked_files
from deploy.image.context import BuildContext, build_context
from deploy.image.engine import first_line
from deploy.image.labels import image_labels
from deploy.image.tags import TagSet, compute_tags
from deploy.render import render_project
from deploy.render.project import SPEC_DIR

#: How many lines of a failing step's output the error shows.
TAIL_LINES = 15
_STEP = re.compile(r"^Step (?P<n>\d+)/(?P<total>\d+) : (?P<instruction>.*)$")
#: The legacy builder colours a step's stderr; the colour codes are noise in an error message.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: Builder bookkeeping lines, not a step's output.
_BOOKKEEPING = ("---> ", "Removing intermediate container", "Successfully built", "Successfully tagged")
RECORD_NAME = "build.json"


class BuildListener(Protocol):
    """Progress of a build, for the CLI to show (rich in a terminal, plain lines in CI)."""

    def step(self, number: int, total: int, instruction: str) -> None: ...

    def cached(self, number: int) -> None: ...

    def output(self, line: str) -> None: ...


@dataclass(frozen=True)
class BuildStep:
    number: int
    instruction: str
    cached: bool


@dataclass(frozen=True)
class BuildRecord:
    """What a build produced; `rpdeploy push` reads it back from build.json."""

    #: ``<registry>/<repository>``.
    repository: str
    #: Engine image id (``sha256:`` of the image config).
    id: str
    #: Tag names, highest priority first; ``immutable`` is among them.
    tags: list[str]
    immutable: str
    #: org.opencontainers.image.version (not "version": JSON results use that key for their schema).
    oci_version: str
    dirty: bool
    labels: dict[str, str]
    builder: str
    dockerfile: str
    context_bytes: int
    context_files: int
    context_digest: str
    steps: list[BuildStep]
    seconds: float
    environment: str | None
    max_compressed_mb: float | None
    created: float = field(default_factory=time.time)

    @property
    def image(self) -> str:
        """The immutable reference (what deploys use until push adds the digest)."""
        return f"{self.repository}:{self.immutable}"

    @property
    def refs(self) -> list[str]:
        return [f"{self.repository}:{tag}" for tag in self.tags]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["image"] = self.image
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BuildRecord:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["steps"] = [BuildStep(**s) for s in data.get("steps", [])]
        return cls(**fields)


def record_path(loaded: LoadedConfig) -> Path:
    return loaded.root / SPEC_DIR / (loaded.environment or "default") / RECORD_NAME


def read_record(loaded: LoadedConfig) -> BuildRecord:
    path = record_path(loaded)
    try:
        return BuildRecord.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise UsageError(
            f"{path}: no build recorded for this project/environment",
            hint="run `rpdeploy build` first, or `rpdeploy push --build`",
        ) from None
    except (OSError, ValueError, TypeError) as exc:
        raise UsageError(f"{path}: unreadable build record ({exc}); run `rpdeploy build` again") from None


def write_record(loaded: LoadedConfig, record: BuildRecord) -> Path:
    path = record_path(loaded)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record.to_json(), indent=2) + "\n", encoding="utf-8")
    return path


@dataclass(frozen=True)
class BuildPlan:
    """Everything decided before the engine is asked: context, tags, labels, build args."""

    context: BuildContext
    tags: TagSet
    labels: dict[str, str]
    buildargs: dict[str, str]
    repository: str


def plan_build(loaded: LoadedConfig, environ: Mapping[str, str], extra_tags: Iterable[str] = ()) -> BuildPlan:
    """Render, tar the context and compute tags and labels (no engine needed)."""
    config = loaded.config
    git = read_git(loaded.root)
    if git is None:
        raise UsageError(
            f"{loaded.root}: not a git checkout, so there is no commit to tag and label the image with",
            hint="run `git init && git commit` in the project (tags come from git)",
        )
    repository = f"{config.image.registry}/{config.image.repository}"
    # The endpoint spec is rendered too but not needed here; the Dockerfile does not depend on the image.
    rendered = render_project(loaded, f"{repository}:sha-{git.short}")
    epoch = environ.get("SOURCE_DATE_EPOCH", "").strip()
    context = build_context(
        loaded.root,
        dockerfile_name=rendered.dockerfile,
        dockerfile=rendered.files[rendered.dockerfile],
        dockerignore=rendered.files[".dockerignore"],
        mtime=int(epoch) if epoch.isdigit() else 0,
    )
    dirty = git.dirty or bool(untracked_files(loaded.root, list(context.files)))
    tags = compute_tags(git, environ, dirty=dirty, context_digest=context.digest, latest=config.image.latest)
    if extra_tags:
        tags = TagSet(
            tags=tuple(dict.fromkeys([*tags.tags, *extra_tags])),
            immutable=tags.immutable,
            version=tags.version,
            dirty=tags.dirty,
        )
    labels = image_labels(
        title=config.project,
        version=tags.version,
        git=git,
        dirty=dirty,
        config_hash=loaded.config_hash,
        lock_hash=loaded.lock_hash,
        strategy=config.image.strategy,
        environ=environ,
    )
    return BuildPlan(context, tags, labels, _buildargs(loaded), repository)


def _buildargs(loaded: LoadedConfig) -> dict[str, str]:
    config = loaded.config
    if config.image.strategy != "baked" or not config.runtime.index_url:
        return {}
    url = config.runtime.index_url
    if urlsplit(url).password or urlsplit(url).username:
        # Build args of a RUN step are recorded in the image history, readable by anyone who pulls.
        raise UsageError(
            "runtime.index_url carries credentials, which a build would record in the image history",
            hint="use an index without credentials (e.g. the loopback index of scripts/stack.sh)",
        )
    return {"PIP_INDEX_URL": url}


def choose_builder(configured: str, override: str | None) -> str:
    builder = override or configured
    return "docker" if builder == "auto" else builder


def run_build(
    client: Any,
    loaded: LoadedConfig,
    plan: BuildPlan,
    listener: BuildListener,
    *,
    builder: str,
    no_cache: bool = False,
) -> BuildRecord:
    """Build ``plan`` with ``builder``, tag every tag, write build.json and return the record."""
    started = time.perf_counter()
    first_ref = f"{plan.repository}:{plan.tags.immutable}"
    if builder == "buildx":
        image_id, steps = build_with_buildx(plan, first_ref, listener, no_cache=no_cache)
    else:
        image_id, steps = build_with_docker(client, plan, first_ref, listener, no_cache=no_cache)
    for tag in plan.tags.tags:
        client.api.tag(image_id, plan.repository, tag)
    record = BuildRecord(
        repository=plan.repository,
        id=image_id,
        tags=list(plan.tags.tags),
        immutable=plan.tags.immutable,
        oci_version=plan.tags.version,
        dirty=plan.tags.dirty,
        labels=plan.labels,
        builder=builder,
        dockerfile=plan.context.dockerfile,
        context_bytes=plan.context.size,
        context_files=len(plan.context.files),
        context_digest=plan.context.digest,
        steps=steps,
        seconds=round(time.perf_counter() - started, 3),
        environment=loaded.environment,
        max_compressed_mb=loaded.config.image.max_compressed_mb,
    )
    write_record(loaded, record)
    return record


# ---- the docker SDK (legacy builder)


class _StepTracker:
    """Follows the legacy builder's stream: steps, cache hits and the tail of the output."""

    def __init__(self, listener: BuildListener) -> None:
        self.listener = listener
        self.steps: list[BuildStep] = []
        self.current: tuple[int, int, str] | None = None
        self.cached = False
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)

    def feed(self, text: str) -> None:
        for line in _ANSI.sub("", text).splitlines():
            match = _STEP.match(line.strip())
            if match:
                self._close()
                self.current = (int(match["n"]), int(match["total"]), match["instruction"])
                self.tail.clear()
                self.listener.step(*self.current)
            elif line.strip() == "---> Using cache":
                self.cached = True
                if self.current:
                    self.listener.cached(self.current[0])
            elif line.strip() and not line.strip().startswith(_BOOKKEEPING):
                self.tail.append(line.rstrip())
                self.listener.output(line.rstrip())

    def _close(self) -> None:
        if self.current:
            self.steps.append(BuildStep(self.current[0], self.current[2], self.cached))
        self.cached = False

    def finish(self) -> list[BuildStep]:
        self._close()
        self.current = None
        return self.steps

    def failure(self, message: str) -> BuildError:
        return step_failure(self.current, message, self.tail)


def step_failure(current: tuple[int, int, str] | None, message: str, tail: Iterable[str]) -> BuildError:
    """The failing instruction, the builder's message and the last lines of the step's output."""
    where = f"step {current[0]}/{current[1]} `{' '.join(current[2].split())}`" if current else "start"
    lines = [f"build failed at {where}: {message.strip()}"]
    shown = [f"  {line}" for line in tail]
    if shown:
        lines += ["last output lines:", *shown]
    return BuildError("\n".join(lines))


def build_with_docker(
    client: Any, plan: BuildPlan, ref: str, listener: BuildListener, *, no_cache: bool
) -> tuple[str, list[BuildStep]]:
    tracker = _StepTracker(listener)
    image_id: str | None = None
    try:
        stream = client.api.build(
            fileobj=io.BytesIO(plan.context.data),
            custom_context=True,
            dockerfile=plan.context.dockerfile,
            tag=ref,
            labels=plan.labels,
            buildargs=plan.buildargs,
            network_mode="host",
            pull=False,
            nocache=no_cache,
            rm=True,
            forcerm=True,
            decode=True,
        )
        for chunk in stream:
            if "error" in chunk:
                raise tracker.failure(str(chunk.get("error")))
            if "stream" in chunk:
                tracker.feed(str(chunk["stream"]))
            aux = chunk.get("aux")
            if isinstance(aux, dict) and "ID" in aux:
                image_id = str(aux["ID"])
    except docker.errors.APIError as exc:
        # A Dockerfile the engine rejects before any step (parse error, unknown option).
        raise tracker.failure(str(exc.explanation or exc)) from None
    except requests.RequestException as exc:
        raise EngineError(
            f"the Docker engine stopped answering during the build: {first_line(exc)}"
        ) from None
    if image_id is None:
        raise tracker.failure("the engine reported no image id")
    return image_id, tracker.finish()


# ---- buildx (BuildKit) through the CLI plugin


def buildx_env() -> dict[str, str]:
    """The environment for `docker buildx`: RPDEPLOY_DOCKER_CONFIG points at a plugin folder (§6)."""
    env = dict(os.environ)
    if env.get("RPDEPLOY_DOCKER_CONFIG"):
        env["DOCKER_CONFIG"] = env["RPDEPLOY_DOCKER_CONFIG"]
    return env


def buildx_available() -> bool:
    try:
        done = subprocess.run(
            ["docker", "buildx", "version"], capture_output=True, env=buildx_env(), timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def build_with_buildx(
    plan: BuildPlan, ref: str, listener: BuildListener, *, no_cache: bool
) -> tuple[str, list[BuildStep]]:
    if not buildx_available():
        raise UsageError(
            "image.builder is buildx but `docker buildx` is not available",
            hint="install the buildx CLI plugin (local-stack.md §6; scripts/stack.sh sets "
            "RPDEPLOY_DOCKER_CONFIG) or use builder: docker",
        )
    with tempfile.TemporaryDirectory(prefix="rpdeploy-buildx-") as tmp:
        metadata = Path(tmp) / "metadata.json"
        args = ["docker", "buildx", "build", "--progress", "plain", "--network", "host"]
        args += ["--metadata-file", str(metadata), "-f", plan.context.dockerfile, "-t", ref]
        args += [f"--label={k}={v}" for k, v in plan.labels.items()]
        args += [f"--build-arg={k}={v}" for k, v in plan.buildargs.items()]
        args += ["--no-cache"] if no_cache else []
        # "-": the context is our tar on stdin, exactly what the docker SDK path sends.
        proc = subprocess.Popen(
            [*args, "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=buildx_env(),
        )
        steps, error = _follow_buildx(proc, plan.context.data, listener)
        if error is not None:
            raise error
        try:
            meta = json.loads(metadata.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BuildError(f"buildx wrote no usable metadata file: {exc}") from None
    image_id = meta.get("containerimage.config.digest") or meta.get("containerimage.digest")
    if not image_id:
        raise BuildError("buildx metadata has no image digest")
    return str(image_id), steps


_BUILDX_STEP = re.compile(r"^#(?P<id>\d+) \[(?:[\w-]+ )?(?P<n>\d+)/(?P<total>\d+)\] (?P<instruction>.*)$")
_BUILDX_CACHED = re.compile(r"^#(?P<id>\d+) CACHED$")
#: A vertex's output line: "#5 0.053 text", or "#5 ERROR: …" / "#5 DONE 0.1s".
_BUILDX_LINE = re.compile(r"^#(?P<id>\d+) (?:\d+\.\d+ )?(?P<text>.*)$")


def _follow_buildx(
    proc: subprocess.Popen[bytes], data: bytes, listener: BuildListener
) -> tuple[list[BuildStep], BuildError | None]:
    """Feed the context and parse BuildKit's plain progress: steps, CACHED marks, a failing step."""
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(data)
    proc.stdin.close()
    steps: dict[str, tuple[int, int, str]] = {}  # BuildKit vertex id -> (n, total, instruction)
    cached_ids: set[str] = set()
    outputs: dict[str, deque[str]] = {}
    error: BuildError | None = None
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    for raw in proc.stdout:
        line = _ANSI.sub("", raw.decode("utf-8", "replace")).rstrip()
        tail.append(line)
        step, cached, vertex = _BUILDX_STEP.match(line), _BUILDX_CACHED.match(line), _BUILDX_LINE.match(line)
        if step:
            steps[step["id"]] = (int(step["n"]), int(step["total"]), step["instruction"])
            listener.step(*steps[step["id"]])
        elif cached and cached["id"] in steps:
            cached_ids.add(cached["id"])
            listener.cached(steps[cached["id"]][0])
        elif vertex and vertex["id"] in steps:
            text = vertex["text"]
            if text.startswith("ERROR: "):
                error = step_failure(
                    steps[vertex["id"]], text.removeprefix("ERROR: "), outputs.get(vertex["id"], [])
                )
            elif not text.startswith("DONE "):
                outputs.setdefault(vertex["id"], deque(maxlen=TAIL_LINES)).append(text)
                listener.output(text)
    proc.wait()
    if proc.returncode != 0 and error is None:
        error = step_failure(None, "buildx build failed", tail)
    ordered = sorted(steps.items(), key=lambda item: item[1][0])
    return [BuildStep(n, instruction, vid in cached_ids) for vid, (n, _, instruction) in ordered], error
