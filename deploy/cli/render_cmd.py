"""`rpdeploy render`: templates + config → Dockerfile, .dockerignore, endpoint specs."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from deploy.cli.options import config_option, env_option
from deploy.cli.output import Context, cli_command
from deploy.config import load_config
from deploy.config.patterns import IMAGE_REF, describe
from deploy.errors import ExitCode, UsageError
from deploy.image.tags import default_image
from deploy.render import check_drift, render_project, write_files


@dataclass(frozen=True)
class RenderCommandResult:
    image: str
    files: list[str]
    drift: dict[str, str] = field(default_factory=dict)
    checked: bool = False
    seconds: float = 0.0

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.FAILED if self.drift else ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"image": self.image, "files": self.files, "seconds": round(self.seconds, 4)}
        if self.checked:
            data["drift"] = self.drift
        return data

    def print_text(self, console: Console) -> None:
        if self.checked:
            for name, diff in self.drift.items():
                console.print(f"{name} differs from what the templates render:", markup=False)
                console.print(diff, markup=False, highlight=False, end="")
            if self.drift:
                console.print("run `rpdeploy render` and commit the result", markup=False)
            else:
                console.print(f"up to date: {', '.join(self.files)}", markup=False)
            return
        for name in self.files:
            console.print(f"rendered {name}", markup=False)
        console.print(f"image: {self.image}", markup=False)


@click.command()
@config_option
@env_option
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write every rendered file into this directory instead of the project.",
)
@click.option(
    "--check",
    is_flag=True,
    default=False,
    help="Write nothing; exit 1 with a diff if committed rendered files are out of date.",
)
@click.option(
    "--image",
    default=None,
    metavar="REF",
    help="Image the endpoint spec deploys. Default: <registry>/<repository>:sha-<commit>.",
)
@cli_command
def render(
    ctx: Context,
    config_path: str,
    environment: str | None,
    out: Path | None,
    check: bool,
    image: str | None,
) -> RenderCommandResult:
    """Render Dockerfile.<strategy>, .dockerignore and the RunPod endpoint specs.

    The Dockerfile and .dockerignore go to the project root (commit them); the
    REST v2 create/update bodies go to build/rpdeploy/<env>/.

    \b
    Examples:
      rpdeploy render
      rpdeploy render --check            # CI: fail if Dockerfile.slim is stale
      rpdeploy render --env staging --out build/staging

    Exit codes: 0 rendered / up to date, 1 drift found by --check, 2 bad config or
    a value that cannot be rendered safely, 3 the local disk refused a read or write
    (full, read-only, permission).
    """
    if check and out is not None:
        raise UsageError("--check compares against the project; it cannot be combined with --out")
    if image is not None and not IMAGE_REF.fullmatch(image):
        raise UsageError(f"--image: {describe(image)!r} is not a valid image reference")
    started = time.perf_counter()
    loaded = load_config(config_path, environment)
    result = render_project(loaded, image or default_image(loaded))
    elapsed = time.perf_counter() - started
    if check:
        return RenderCommandResult(
            result.image,
            list(result.committed),
            check_drift(result, loaded.root),
            checked=True,
            seconds=elapsed,
        )
    # Absolute: `write_files` joins names onto it, and a relative folder would be joined twice.
    paths = write_files(result, loaded.root, out.absolute() if out is not None else None)
    shown = [str(p.relative_to(Path.cwd())) if p.is_relative_to(Path.cwd()) else str(p) for p in paths]
    return RenderCommandResult(result.image, shown, seconds=elapsed)
