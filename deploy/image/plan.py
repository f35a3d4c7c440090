"""Planning a build: everything decided before the engine is asked.

Render, tar the context, compute tags and labels, build args. Needs git and the
project, never the engine, so it is what the non-Docker tests exercise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from deploy.config import LoadedConfig
from deploy.errors import UsageError
from deploy.gitinfo import untracked_files
from deploy.image.context import BuildContext, build_context
from deploy.image.labels import image_labels
from deploy.image.tags import TagSet, compute_tags, require_git
from deploy.render import render_project


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
        extra=rendered.context_files,
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
