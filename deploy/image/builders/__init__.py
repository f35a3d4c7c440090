"""Builders: one small protocol, one module per way of building (BentoML's builder modules).

- ``docker`` (`deploy.image.builders.docker_sdk`) — the docker SDK, which drives the
  engine's legacy builder. Rendered Dockerfiles never use BuildKit-only syntax, so it
  builds every rpdeploy image.
- ``buildx`` (`deploy.image.builders.buildx`) — ``docker buildx build`` through a
  subprocess (BuildKit; the digest comes from ``--metadata-file``). Needs the buildx
  CLI plugin.
- ``auto`` — ``docker``: one code path on every engine, with per-step cache reporting.

Every build runs on the host network, so a package index on loopback
(scripts/stack.sh) is reachable from ``RUN pip install``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from deploy.errors import BuildError
from deploy.image.record import BuildStep

if TYPE_CHECKING:
    from docker import DockerClient

if TYPE_CHECKING:
    from deploy.image.plan import BuildPlan

#: How many lines of a failing step's output the error shows.
TAIL_LINES = 15
#: The builders colour a step's output; the colour codes are noise in an error message.
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class BuildListener(Protocol):
    """Progress of a build, for the CLI to show (rich in a terminal, plain lines in CI)."""

    def step(self, number: int, total: int, instruction: str) -> None: ...

    def cached(self, number: int) -> None: ...

    def output(self, line: str) -> None: ...


class Builder(Protocol):
    """Builds ``plan`` (context, labels, build args) into an image tagged ``ref``.

    Returns (image id, steps); ``no_cache`` rebuilds every step.

    Raises `BuildError` for a failing step (its instruction and output tail),
    `EngineError` when the engine stops answering, `UsageError` when unavailable.
    """

    name: str

    def build(
        self, plan: BuildPlan, ref: str, listener: BuildListener, *, no_cache: bool
    ) -> tuple[str, list[BuildStep]]: ...


def choose_builder(configured: str, override: str | None) -> str:
    """The builder name to use: the CLI's override, else the config's; ``auto`` is ``docker``."""
    builder = override or configured
    return "docker" if builder == "auto" else builder


def get_builder(name: str, client: DockerClient) -> Builder:
    """The builder called ``name`` (``docker`` or ``buildx``), imported only when used."""
    if name == "buildx":
        from deploy.image.builders.buildx import BuildxBuilder  # noqa: PLC0415 - only the one used

        return BuildxBuilder()
    from deploy.image.builders.docker_sdk import DockerSdkBuilder  # noqa: PLC0415 - only the one used

    return DockerSdkBuilder(client)


def step_failure(current: tuple[int, int, str] | None, message: str, tail: Iterable[str]) -> BuildError:
    """The failing instruction, the builder's message and the last lines of the step's output."""
    where = f"step {current[0]}/{current[1]} `{' '.join(current[2].split())}`" if current else "start"
    lines = [f"build failed at {where}: {message.strip()}"]
    shown = [f"  {line}" for line in tail]
    if shown:
        lines += ["last output lines:", *shown]
    return BuildError("\n".join(lines))
