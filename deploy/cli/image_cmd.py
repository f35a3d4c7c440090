"""`rpdeploy image`: inspect images in a registry (layer sizes and the instruction behind each)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import click
import docker.errors
from rich.console import Console
from rich.table import Table

from deploy.cli.output import Context, cli_command
from deploy.errors import EngineError, ExitCode
from deploy.image.engine import connect
from deploy.image.registry import Reference, RegistryClient, credentials_for
from deploy.image.size import ImageSize, format_bytes, image_size


@click.group()
def image() -> None:
    """Inspect built images."""


@dataclass(frozen=True)
class ReportResult:
    image: str
    digest: str
    size: ImageSize
    exit_code: ExitCode = ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {"image": self.image, "digest": self.digest, "size": self.size.to_json()}

    def print_text(self, console: Console) -> None:
        console.print(f"{self.image} ({self.digest})", markup=False)
        table = Table()
        table.add_column("#", justify="right")
        table.add_column("compressed", justify="right")
        table.add_column("uncompressed", justify="right")
        table.add_column("instruction", overflow="fold")
        for number, layer in enumerate(self.size.layers, start=1):
            table.add_row(
                str(number),
                format_bytes(layer.compressed_bytes),
                format_bytes(layer.uncompressed_bytes),
                layer.instruction,
            )
        console.print(table)
        unc_total = self.size.uncompressed_bytes
        shown = format_bytes(unc_total) if unc_total is not None else "? (image not in the local engine)"
        console.print(
            f"total: {format_bytes(self.size.compressed_bytes)} compressed, {shown} uncompressed",
            markup=False,
        )


def _engine_sizes(ref: str) -> tuple[list[dict[str, Any]] | None, int | None]:
    """Per-layer uncompressed sizes from the local engine, when it has the image."""
    try:
        found = connect().images.get(ref)
        return found.history(), int(found.attrs.get("Size", 0))
    except (EngineError, docker.errors.APIError):
        return None, None


@image.command("report")
@click.argument("ref", metavar="IMAGE")
@cli_command
def report(ctx: Context, ref: str) -> ReportResult:
    """Print IMAGE's layers (compressed and uncompressed) and the instruction of each.

    Compressed sizes come from the registry manifest; uncompressed ones from the
    local engine when it has the image.

    \b
    Examples:
      rpdeploy image report 127.0.0.1:5000/rpdeploy/echo-worker:sha-1a2b3c4
      rpdeploy image report 127.0.0.1:5000/python:3.11-slim-local --output json

    Exit codes: 0 reported, 2 not an image reference, 3 registry unreachable or the
    image is not in it.
    """
    parsed = Reference.parse(ref)
    registry = RegistryClient(parsed.registry, credentials_for(parsed.registry, os.environ))
    history, uncompressed = _engine_sizes(ref)
    digest, size = image_size(registry, parsed.repository, parsed.reference, history, uncompressed)
    return ReportResult(ref, digest, size)
