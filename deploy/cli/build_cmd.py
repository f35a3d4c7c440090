"""`rpdeploy build`: render, build the image through the Docker engine, tag it from git."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import click
from rich.console import Console

from deploy.cli.options import config_option, env_option
from deploy.cli.output import Context, cli_command
from deploy.cli.progress import BuildProgress
from deploy.config import LoadedConfig, load_config
from deploy.errors import ExitCode
from deploy.image.build import BuildRecord, build_project, record_path
from deploy.image.size import format_bytes


@dataclass(frozen=True)
class BuildResult:
    record: BuildRecord
    record_file: str
    exit_code: ExitCode = ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {**self.record.to_json(), "record": self.record_file}

    def print_text(self, console: Console) -> None:
        record = self.record
        rebuilt = [s for s in record.steps if not s.cached]
        console.print(f"built {record.image} ({record.id[:19]}) in {record.seconds:.1f} s", markup=False)
        console.print(f"tags: {', '.join(record.tags)}", markup=False)
        console.print(
            f"context: {format_bytes(record.context_bytes)}, {record.context_files} files; "
            f"steps rebuilt: {len(rebuilt)}/{len(record.steps)}",
            markup=False,
        )
        if record.dirty:
            console.print(
                "dirty tree: only the -dirty- tag was given (no branch/semver/latest)", markup=False
            )
        console.print(f"recorded in {self.record_file}; next: rpdeploy push", markup=False)


def build_with_progress(
    ctx: Context, loaded: LoadedConfig, *, builder: str | None, no_cache: bool, tags: tuple[str, ...]
) -> BuildRecord:
    """`deploy.image.build.build_project` with progress on stderr (`build` and `push --build`)."""
    with BuildProgress(ctx) as progress:
        return build_project(
            loaded, os.environ, progress, builder=builder, no_cache=no_cache, tags=tags, log=ctx.log
        )


def builder_option(func: Any) -> Any:
    return click.option(
        "--builder",
        type=click.Choice(["auto", "docker", "buildx"]),
        default=None,
        help="Override image.builder (auto = the docker SDK's legacy builder).",
    )(func)


def build_options(func: Any) -> Any:
    func = click.option("--no-cache", is_flag=True, default=False, help="Build every step again.")(func)
    func = click.option(
        "--tag", "tags", multiple=True, metavar="TAG", help="An extra tag (repeatable), e.g. a release name."
    )(func)
    return builder_option(func)


@click.command()
@config_option
@env_option
@build_options
@cli_command
def build(
    ctx: Context,
    config_path: str,
    environment: str | None,
    builder: str | None,
    tags: tuple[str, ...],
    no_cache: bool,
) -> BuildResult:
    """Render and build the image; tag it from git (docker/metadata-action rules).

    Tags: sha-<7> always; X.Y.Z and X.Y for a vX.Y.Z tag on HEAD; the branch name,
    or pr-<N> in pull-request CI; latest when image.latest is true. A dirty tree
    gets only sha-<7>-dirty-<context hash>. The result goes to
    build/rpdeploy/<env>/build.json, which `rpdeploy push` reads.

    \b
    Examples:
      rpdeploy build
      rpdeploy build --env staging --output json
      SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) rpdeploy build   # reproducible labels

    Exit codes: 0 built, 1 build failed (failing step and its last output lines),
    2 bad config or usage, 3 Docker engine unreachable or the local disk refused a
    read or write (full, read-only, permission).
    """
    loaded = load_config(config_path, environment)
    record = build_with_progress(ctx, loaded, builder=builder, no_cache=no_cache, tags=tags)
    return BuildResult(record, str(record_path(loaded)))
