"""`rpdeploy env build [--push]`: the slim runtime's environment archive, built ahead of time."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import click
from rich.console import Console

from deploy.cli.options import config_option, env_option
from deploy.cli.output import Context, cli_command
from deploy.config import load_config
from deploy.errors import ExitCode, UsageError
from deploy.image.envbuild import EnvArchive, build_env


@click.group("env")
def env_group() -> None:
    """The slim runtime's dependency environment (docs/runtime.md)."""


@dataclass(frozen=True)
class EnvBuildResult:
    built: EnvArchive
    exit_code: ExitCode = ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return self.built.to_json()

    def print_text(self, console: Console) -> None:
        built = self.built
        console.print(f"{built.summary} in {built.seconds:.1f} s", markup=False)
        console.print(f"key: {built.key} ({built.interpreter})", markup=False)
        if built.sha256:
            console.print(f"sha256: {built.sha256}", markup=False)
        if built.archive is not None:
            console.print(f"archive: {built.archive}", markup=False)


@env_group.command("build")
@config_option
@env_option
@click.option(
    "--push",
    is_flag=True,
    default=False,
    help="Upload the archive to runtime.s3 (credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), "
    "unless it is there already.",
)
@click.option(
    "--force",
    is_flag=True,
    default=False,
    help="With --push: build and replace the archive even when one is stored under the key.",
)
@cli_command
def build(ctx: Context, config_path: str, environment: str | None, push: bool, force: bool) -> EnvBuildResult:
    """Build the environment archive a slim worker provisions, inside the base image.

    The bootstrap itself runs in a container of image.base (the workers' interpreter), so
    the archive has the key and format a cold start looks for: a worker with an empty
    volume then downloads it instead of installing. The archive is written to
    build/rpdeploy/envs/<key>.tar.gz. With --push it goes to
    s3://<runtime.s3.bucket>/<runtime.s3.prefix><key>.tar.gz (endpoint: runtime.s3.endpoint_url,
    else AWS_ENDPOINT_URL); when that object exists already and its size and metadata
    (sha256, unpacked-bytes) are an archive's, nothing is built; otherwise, or with
    --force, it is built and replaced.

    \b
    Examples:
      rpdeploy env build
      rpdeploy env build --push --output json
      rpdeploy env build --push --force

    Exit codes: 0 built (or already in S3), 1 the install failed, 2 bad config or usage
    (a baked image, --push without runtime.s3 or credentials), 3 Docker engine or S3
    unreachable or refusing (credentials, missing bucket), or a disk full.
    """
    if force and not push:
        raise UsageError("--force replaces the archive in S3: it needs --push")
    loaded = load_config(config_path, environment)
    return EnvBuildResult(build_env(loaded, os.environ, push=push, log=ctx.log, force=force))
