"""`rpdeploy push`: push what `rpdeploy build` recorded (or build first with --build)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import click
from rich.console import Console

from deploy.ci import secret_values, write_github_output
from deploy.cli.build_cmd import build_options, build_with_progress
from deploy.cli.options import config_option, env_option
from deploy.cli.output import Context, cli_command
from deploy.cli.progress import PushProgress
from deploy.config import LoadedConfig, load_config
from deploy.errors import ExitCode, UsageError
from deploy.image.build import BuildRecord
from deploy.image.engine import connect
from deploy.image.push import PushResult, push_image
from deploy.image.push_record import write_push_record
from deploy.image.record import read_record
from deploy.image.size import format_bytes


@dataclass(frozen=True)
class PushCommandResult:
    result: PushResult
    exit_code: ExitCode = ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return self.result.to_json()

    def print_text(self, console: Console) -> None:
        result = self.result
        size = result.size
        unc = f", {format_bytes(size.uncompressed_bytes)} uncompressed" if size.uncompressed_bytes else ""
        console.print(f"pushed {result.image}", markup=False)
        console.print(f"tags: {', '.join(result.tags)}", markup=False)
        console.print(f"size: {format_bytes(size.compressed_bytes)} compressed{unc}", markup=False)


def push_built(ctx: Context, loaded: LoadedConfig, record: BuildRecord) -> PushResult:
    """Push ``record``'s tags, write the push record, then the CI outputs (`push` and `release`)."""
    client = connect()
    ctx.log(f"push: {record.repository} ({', '.join(record.tags)})")
    with PushProgress(ctx) as progress:
        result = push_image(client, record, os.environ, progress)
    # Before the CI outputs: what a later `plan`/`apply` deploys is on disk first.
    write_push_record(loaded, result)
    secret_vars = [s.from_env or s.name for s in loaded.config.secrets]
    write_github_output(
        {"image": result.image, "digest": result.digest},
        os.environ,
        secrets=secret_values(secret_vars, os.environ),
    )
    return result


@click.command()
@config_option
@env_option
@click.option(
    "--build", "build_first", is_flag=True, default=False, help="Build first (as `rpdeploy build`)."
)
@build_options
@cli_command
def push(
    ctx: Context,
    config_path: str,
    environment: str | None,
    build_first: bool,
    builder: str | None,
    tags: tuple[str, ...],
    no_cache: bool,
) -> PushCommandResult:
    """Push every tag of the last build; print image@digest and sizes.

    Reads build/rpdeploy/<env>/build.json written by `rpdeploy build` (or builds
    first with --build). The immutable sha tag goes first; the registry's digest is
    checked against the push; the compressed size (sum of the manifest's layers) is
    checked against image.max_compressed_mb before the moving tags (branch, semver,
    latest) are pushed. Writes build/rpdeploy/<env>/push.json (image@digest, tags,
    size, time): the image `rpdeploy plan`/`apply` deploy unless --image is given.
    Credentials: REGISTRY_USERNAME/REGISTRY_PASSWORD, else the
    Docker config. In GitHub Actions, image= and digest= go to $GITHUB_OUTPUT.

    \b
    Examples:
      rpdeploy push
      rpdeploy push --build --output json
      rpdeploy push --env staging

    Exit codes: 0 pushed, 1 over the size budget (largest layers listed),
    2 no build recorded or bad config, 3 registry or engine unreachable or the local
    disk refused a read or write (full, read-only, permission).
    """
    loaded = load_config(config_path, environment)
    if build_first:
        record = build_with_progress(ctx, loaded, builder=builder, no_cache=no_cache, tags=tags)
    else:
        if tags or no_cache or builder:
            raise UsageError("--tag, --no-cache and --builder apply to a build: add --build")
        record = read_record(loaded)
    result = push_built(ctx, loaded, record)
    return PushCommandResult(result)
