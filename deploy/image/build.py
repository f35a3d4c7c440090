"""Building the project: plan (render, context, tags, labels), build with a builder, record.

`plan_build` decides everything without the engine; `run_build` hands the plan to a
builder (`deploy.image.builders`), tags the result and writes the build record
(`deploy.image.record`); `build_project` is the whole flow that `rpdeploy build` and
`rpdeploy push --build` run. Builds are reproducible: the same commit and config give
the same context bytes, labels (``created`` is the commit time or SOURCE_DATE_EPOCH)
and therefore the same image id, every step served from the cache.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from deploy.config import LoadedConfig
from deploy.config.patterns import TAG
from deploy.errors import UsageError
from deploy.gitinfo import untracked_files
from deploy.image.builders import BuildListener, BuildRequest, choose_builder, get_builder
from deploy.image.context import BuildContext, build_context
from deploy.image.labels import image_labels
from deploy.image.record import BuildRecord, BuildStep, read_record, record_path, write_record
from deploy.image.tags import TagSet, compute_tags, default_image, require_git
from deploy.render import render_project

__all__ = [
    "BuildPlan",
    "BuildRecord",
    "BuildStep",
    "build_project",
    "choose_builder",
    "default_image",
    "plan_build",
    "read_record",
    "record_path",
    "run_build",
    "write_record",
]


@dataclass(frozen=True)
class BuildPlan:
    """Everything decided before the engine is asked: context, tags, labels, build args."""

    context: BuildContext
    tags: TagSet
    labels: dict[str, str]
    buildargs: dict[str, str]
    repository: str


def plan_build(loaded: LoadedConfig, environ: Mapping[str, str], extra_tags: Iterable[str] = ()) -> BuildPlan:
    """Render, tar the context and compute tags and labels (no engine needed).

    Dirty when tracked files changed or an untracked (not ignored) file is inside
    the context: either way the image holds code no commit names.
    """
    config = loaded.config
    git = require_git(loaded, "run `git init && git commit` in the project (tags come from git)")
    repository = f"{config.image.registry}/{config.image.repository}"
    # The endpoint spec is rendered too but not needed here; the Dockerfile does not depend on the image.
    rendered = render_project(loaded, f"{repository}:sha-{git.short}")
    context = build_context(
        loaded.root,
        dockerfile_name=rendered.dockerfile,
        dockerfile=rendered.files[rendered.dockerfile],
        dockerignore=rendered.files[".dockerignore"],
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
    request = BuildRequest(
        context=plan.context,
        ref=f"{plan.repository}:{plan.tags.immutable}",
        labels=plan.labels,
        buildargs=plan.buildargs,
        no_cache=no_cache,
    )
    image_id, steps = get_builder(builder, client).build(request, listener)
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


def build_project(
    loaded: LoadedConfig,
    environ: Mapping[str, str],
    listener: BuildListener,
    *,
    builder: str | None = None,
    no_cache: bool = False,
    tags: Iterable[str] = (),
    log: Any = None,
) -> BuildRecord:
    """Plan, connect, build and record: `rpdeploy build` and `push --build` in one call.

    ``tags`` are extra tags (validated as Docker tags: `UsageError` otherwise);
    ``log`` (a one-argument callable) receives one summary line before the build.
    Raises what `plan_build`, `connect` and the builder raise.
    """
    # The docker SDK costs ~0.1 s to import: only a build that reaches the engine pays it.
    from deploy.image.engine import connect  # noqa: PLC0415

    extra = list(tags)
    for tag in extra:
        if not TAG.fullmatch(tag):
            raise UsageError(f"--tag {tag!r} is not a valid Docker tag")
    plan = plan_build(loaded, environ, extra)
    chosen = choose_builder(loaded.config.image.builder, builder)
    if log is not None:
        log(
            f"build: {plan.repository}:{plan.tags.immutable} with {chosen} "
            f"(context {plan.context.size / 1000:.1f} kB, {len(plan.context.files)} files)"
        )
    client = connect()
    return run_build(client, loaded, plan, listener, builder=chosen, no_cache=no_cache)
