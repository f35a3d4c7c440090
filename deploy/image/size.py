"""Image sizes: compressed (registry manifest) and uncompressed (engine), per layer, and the budget.

Compressed size is not in the Engine API: it is the sum of ``layers[].size`` in the
registry manifest. Each layer's instruction comes from the image config's history
(entries without ``empty_layer`` line up with the manifest's layers). Uncompressed
sizes come from the engine's history, when the engine has the image.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.filesize import decimal

from deploy.errors import BudgetExceeded

if TYPE_CHECKING:  # the registry client pulls in requests and docker: only `image_size` needs one
    from deploy.image.registry import RegistryClient

#: Budgets are in MB = 10^6 bytes (what `docker images` and registries' UIs show).
MB = 1_000_000


def format_bytes(count: int | None) -> str:
    """``37.85 MB``, ``1.10 kB``, ``98 bytes`` (decimal units, like the budget; rich's own
    formatting); ``?`` when unknown."""
    return "?" if count is None else decimal(count, precision=2)


@dataclass(frozen=True)
class Layer:
    digest: str
    compressed_bytes: int
    uncompressed_bytes: int | None
    instruction: str


@dataclass(frozen=True)
class ImageSize:
    compressed_bytes: int
    uncompressed_bytes: int | None
    layers: list[Layer]

    def largest(self, count: int = 5) -> list[Layer]:
        return sorted(self.layers, key=lambda layer: layer.compressed_bytes, reverse=True)[:count]

    def to_json(self) -> dict[str, Any]:
        return {
            "compressed_bytes": self.compressed_bytes,
            "uncompressed_bytes": self.uncompressed_bytes,
            "layers": [layer.__dict__ for layer in self.layers],
        }


def instruction_of(entry: Mapping[str, Any]) -> str:
    """The Dockerfile instruction of an image-history entry, as a person would write it."""
    text = str(entry.get("created_by") or entry.get("CreatedBy") or "").strip()
    if not text:
        comment = str(entry.get("comment") or entry.get("Comment") or "").strip()
        return f"({comment or 'no history'})"
    text = re.sub(r"^\|\d+ (?:\S+=\S* )*", "", text)  # build args the legacy builder prepends
    text = text.removesuffix("# buildkit").strip()
    # COPY/ADD record a 64-hex content hash of the source: 12 are enough to tell layers apart.
    text = re.sub(r"\b(dir|file|multi):([0-9a-f]{12})[0-9a-f]{52}\b", r"\1:\2", text)
    if text.startswith("/bin/sh -c #(nop)"):
        return text.removeprefix("/bin/sh -c #(nop)").strip()
    if text.startswith("/bin/sh -c "):
        return "RUN " + text.removeprefix("/bin/sh -c ")
    return text


def image_size(
    registry: RegistryClient,
    repository: str,
    reference: str,
    engine_history: list[dict[str, Any]] | None = None,
    uncompressed_total: int | None = None,
) -> tuple[str, ImageSize]:
    """Digest and sizes of an image in the registry; uncompressed figures from the engine if given."""
    digest, manifest = registry.manifest(repository, reference)
    config = registry.blob_json(repository, manifest["config"]["digest"])
    history = config.get("history") or []
    built = [entry for entry in history if not entry.get("empty_layer")]
    # The engine lists the same history newest-first, with each layer's uncompressed size;
    # its sizes are used only when both histories line up entry for entry with the layers.
    engine = list(reversed(engine_history)) if engine_history else []
    aligned = len(engine) == len(history) and len(built) == len(manifest["layers"])
    engine_sizes = (
        [int(engine[i].get("Size", 0)) for i, h in enumerate(history) if not h.get("empty_layer")]
        if aligned
        else []
    )
    layers = []
    for index, blob in enumerate(manifest["layers"]):
        entry = built[index] if len(built) == len(manifest["layers"]) else {}
        layers.append(
            Layer(
                digest=str(blob["digest"]),
                compressed_bytes=int(blob["size"]),
                uncompressed_bytes=engine_sizes[index] if aligned else None,
                instruction=instruction_of(entry),
            )
        )
    compressed = sum(layer.compressed_bytes for layer in layers)
    return digest, ImageSize(compressed, uncompressed_total, layers)


def layer_table(layers: list[Layer], width: int = 70) -> list[str]:
    """Plain lines: compressed, uncompressed, instruction (cut to ``width``)."""
    lines = [f"{'compressed':>11} {'uncompressed':>13}  instruction"]
    for layer in layers:
        text = layer.instruction if len(layer.instruction) <= width else layer.instruction[: width - 1] + "…"
        lines.append(
            f"{format_bytes(layer.compressed_bytes):>11} {format_bytes(layer.uncompressed_bytes):>13}  {text}"
        )
    return lines


def within_budget(compressed_bytes: int, max_mb: float | None) -> bool:
    """The budget is inclusive: an image of exactly ``max_mb`` MB is within it."""
    return max_mb is None or compressed_bytes <= max_mb * MB


def check_budget(size: ImageSize, max_mb: float | None, image: str) -> None:
    """`BudgetExceeded` (with the largest layers) when ``size`` is over ``max_mb`` MB compressed."""
    if within_budget(size.compressed_bytes, max_mb):
        return
    lines = [
        f"{image} is {format_bytes(size.compressed_bytes)} compressed, over the "
        f"image.max_compressed_mb budget of {max_mb:g} MB; largest layers:",
        *("  " + line for line in layer_table(size.largest())),
    ]
    raise BudgetExceeded(
        "\n".join(lines),
        hint="move dependencies out of the image (strategy: slim) or raise image.max_compressed_mb",
    )
