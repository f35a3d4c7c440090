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
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from deploy.config import LoadedConfig
from deploy.config.patterns import TAG
from deploy.errors import UsageError
from deploy.image.builders import BuildListener, choose_builder, get_builder
from deploy.image.plan import BuildPlan, plan_build
from deploy.image.record import BuildRecord, BuildStep, read_record, record_path, write_record
from deploy.image.tags import default_image

if TYPE_CHECKING:
    from docker import DockerClient

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


def run_build(
    client: DockerClient,
    loaded: LoadedConfig,
    plan: BuildPlan,
    listener: BuildListener,
    *,
    builder: str,
    no_cache: bool = False,
) -> BuildRecord:
    """Build ``plan`` with ``builder``, tag every tag, write build.json and return the record."""
    started = time.perf_counter()
    ref = f"{plan.repository}:{plan.tags.immutable}"
    image_id, steps = get_builder(builder, client).build(plan, ref, listener, no_cache=no_cache)
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
    log: Callable[[str], None] | None = None,
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
